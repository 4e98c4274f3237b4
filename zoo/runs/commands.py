"""The `kdbench` commands of jobs and launches: run (one job), launch (plan and run or submit), gather (judge).

    kdbench run ROW --seed S --tier full --out DIR     one (row, seed, tier) job, resumable
    kdbench launch [PATTERN ...] --tier full --out DIR [--executor local|slurm]
                                                       plan rows x seeds (from power), run or submit them
    kdbench gather DIR                                 every complete row judged against the baselines;
                                                       rows with missing seeds are INCOMPLETE and fail
"""
from __future__ import annotations

import dataclasses
import fnmatch
import functools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.catalog.pairs import OPT_IN_MARKERS
from zoo.project.settings import SettingsError, add_arguments

if TYPE_CHECKING:  # the commands' work imports torch and scipy; their parsers (kdbench --help) do not
    from zoo.project.settings import Settings
    from zoo.records.history import History
    from zoo.runs.jobs import JobSettings
    from zoo.verdicts.baselines import BaselineStore


def add_parsers(sub, common) -> None:
    jobs = argparse_parent()
    r = sub.add_parser("run", parents=[common, jobs], help="one (row, seed, tier) job into a results folder (resumable)")
    r.add_argument("row", nargs="?", help="row id, e.g. mnist-mlp800-kd-lr0.01")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--bench", default="", help="a timing job instead: this bench/ file under pytest")
    r.set_defaults(handler=cmd_run)

    la = sub.add_parser("launch", parents=[common, jobs],
                        help="plan rows x seeds (seed counts from power) and run them here or submit them to Slurm")
    la.add_argument("patterns", nargs="*", metavar="PATTERN", help="row ids or shell patterns (default: every row "
                    "of the tier but the opt-in sweep and distiller rows)")
    add_arguments(la, ("seeds", "sweeps", "distillers"))
    la.add_argument("--executor", choices=("local", "slurm"), default="local")
    la.add_argument("--slots", type=int, default=None,
                    help="local: jobs at once (default: the GPUs, else 1 per 2 CPU cores)")
    la.add_argument("--max-seeds", type=int, default=None, help="cap the power-planned seed count of a row")
    la.add_argument("--budget", type=float, default=None, metavar="HOURS",
                    help="device-hours the plan may cost (default: [tool.kdbench.launch] budget_hours, 24); "
                         "a plan over it, or of unknown cost, is refused")
    la.add_argument("--over-budget", action="store_true", help="run a plan over the budget or of unknown cost anyway")
    la.add_argument("--timing", action="store_true", help="also the timing benchmarks, each an exclusive job")
    la.add_argument("--partition", default=None, help="slurm: partition (default: the cluster's default)")
    la.add_argument("--timeout-min", type=int, default=24 * 60, help="slurm: time limit per job (requeued at it)")
    la.add_argument("--cpus-per-task", type=int, default=1, help="slurm: CPUs per job")
    la.add_argument("--gpus-per-job", type=int, default=None, help="slurm: GPUs per job (default 1 on cuda, else 0)")
    la.add_argument("--wait", action="store_true", help="slurm: wait for every job, then gather")
    la.add_argument("--bootstrap", action="store_true",
                    help="with the gather: a device without baselines is recorded and reported, not failed")
    la.add_argument("--no-strict", action="store_true", help="with the gather: a row without a baseline is NEW, not a failure")
    la.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    la.set_defaults(handler=cmd_launch)

    g = sub.add_parser("gather", parents=[common, jobs], help="judge every complete row of a launch's folder")
    g.add_argument("--bootstrap", action="store_true",
                   help="a device without baselines: record and report (how to promote) instead of failing")
    g.add_argument("--no-strict", action="store_true", help="a row without a baseline is NEW, not a failure")
    g.set_defaults(handler=cmd_gather)


def argparse_parent():
    """The options every job command takes: the session's own (zoo.project.settings), and the job's folder and threads."""
    import argparse

    jobs = argparse.ArgumentParser(add_help=False)
    add_arguments(jobs, ("tier", "full", "device", "data_root", "cache_dir"))
    jobs.add_argument("--out", required=True, help="the launch's results folder (shared storage on a cluster)")
    jobs.add_argument("--threads", type=int, default=None,
                      help="torch CPU threads per job (default: torch's; on a CPU, results differ with it)")
    return jobs


def settings_of(args, runs_here: bool = False) -> JobSettings:
    """The job settings of the command's settings; `runs_here`: the jobs run on this machine, whose device must
    exist. A job's GPU is the one Slurm or the local executor gives it, so jobs name no GPU index."""
    from zoo.runs.jobs import JobSettings

    settings = args.settings
    if ":" in settings.device:
        raise SettingsError(f"--device {settings.device}: a job's GPU is the one Slurm or the local executor gives it; "
                            f"use --device cuda")
    device = settings.torch_device().type if runs_here or settings.device == "auto" else settings.device
    return JobSettings(Path(args.out).resolve(), settings.data_root.resolve() if settings.data_root else None,
                       settings.cache_dir.resolve(), device, settings.baselines_dir.resolve(), args.threads)


def cmd_run(args, history: History) -> int:
    from zoo.runs.jobs import Job, run_job

    if bool(args.row) == bool(args.bench):
        raise SettingsError("kdbench run takes a ROW (with --seed) or --bench FILE, not both or neither")
    print(run_job(Job(args.settings.tier, args.row or "", args.seed, args.bench), settings_of(args, runs_here=True)),
          flush=True)
    return 0


def selected_rows(patterns: list[str], settings: Settings) -> list:
    """The project's rows of the tier matching `patterns` (all without), leaving out rows of an opt-in marker
    (sweep, distillers) whose option is off, as `pytest bench/` does."""
    from zoo.runs.plan import PlanError

    rows = [p for p in settings.pairs() if not (set(p.markers) & set(OPT_IN_MARKERS)) - settings.opted_in]
    if not patterns:
        return rows
    chosen = [p for p in rows if any(fnmatch.fnmatchcase(p.id, pattern) for pattern in patterns)]
    unmatched = [pattern for pattern in patterns if not any(fnmatch.fnmatchcase(p.id, pattern) for p in rows)]
    if unmatched:
        raise PlanError(f"no {settings.tier!r} row matches {', '.join(unmatched)} (rows marked sweep or distillers "
                        f"need --sweeps or --distillers)")
    return chosen


def cmd_launch(args, history: History) -> int:
    import torch

    from zoo.runs.plan import make_plan, measure_rate
    from zoo.verdicts.baselines import BaselineStore

    settings = settings_of(args, runs_here=args.executor == "local" and not args.dry_run)
    store = BaselineStore(args.settings.baselines_dir, args.settings.thresholds)
    seeds = None if args.settings.seeds is None else args.settings.seeds_for(0)
    rows = selected_rows(args.patterns, args.settings)
    here = settings.device == "cpu" or torch.cuda.is_available()
    measure = functools.cache(lambda: measure_rate(settings.device, settings.data_root, settings.cache_dir)) \
        if here else None
    plan = make_plan(rows, args.settings.tier, settings.device, store, seeds, args.max_seeds, args.timing, measure)
    print(plan.describe(), flush=True)
    check_budget(plan, rows, store, args, measure)
    if args.dry_run:
        return 0
    settings.out.mkdir(parents=True, exist_ok=True)
    plan.save(settings.out)
    if args.executor == "slurm":
        from zoo.runs.executors import SlurmExecutor

        gpus = args.gpus_per_job if args.gpus_per_job is not None else int(settings.device == "cuda")
        settings = dataclasses.replace(settings, threads=settings.threads or args.cpus_per_task)
        executor = SlurmExecutor(settings, args.partition, args.timeout_min, args.cpus_per_task, gpus)
        executor.submit(plan)
        if not args.wait:
            print(f"submitted; when the jobs are done: kdbench gather --out {settings.out} --tier {args.settings.tier}")
            return 0
        wait_for_slurm(list(executor.job_ids.values()))
    else:
        from zoo.runs.executors import LocalExecutor

        slots = args.slots or (torch.cuda.device_count() if settings.device == "cuda" else max(1, (os.cpu_count() or 2) // 2))
        LocalExecutor(settings, slots).run(plan)
    return cmd_gather(args, history)


def check_budget(plan, rows, store: BaselineStore, args, measure) -> None:
    """Print the plan's budget verdict; refuse (PlanError) a plan over the budget or of unknown cost unless the
    user said --over-budget, naming what would fit."""
    from zoo.runs.plan import PlanError, fitting_max_seeds

    if args.budget is not None and not args.budget > 0:
        raise PlanError(f"--budget {args.budget:g}: give the device-hours the plan may cost, a number above 0")
    budget = args.budget if args.budget is not None else \
        store.thresholds.project_wide()["launch.budget_hours"].value
    problem = plan.over_budget(budget)
    if not problem:
        print(f"budget: {plan.device_hours():,.2f} of {budget:g} {plan.device}-hours", flush=True)
        return
    if args.over_budget:
        print(f"budget: over, run anyway (--over-budget): {problem}", flush=True)
        return
    advice = ""
    if plan.device_hours() is not None and args.settings.seeds is None:
        fit = fitting_max_seeds(rows, args.settings.tier, plan.device, store, budget, measure)
        advice = (f"--max-seeds {fit} fits" if fit is not None else
                  "no --max-seeds fits: select fewer rows (PATTERN ...)") + "; "
    raise PlanError(f"refused: {problem}. {advice}raise --budget HOURS, or run it anyway with --over-budget")


def wait_for_slurm(job_ids: list[str], poll_s: float = 5.0) -> None:
    """Until none of the jobs (array tasks included, requeued ones too) is pending or running."""
    arrays = {job_id.split("_")[0] for job_id in job_ids}
    while True:
        listed = subprocess.run(["squeue", "-h", "-o", "%i %T", "-j", ",".join(sorted(arrays))],
                                capture_output=True, text=True)
        if listed.returncode == 0 and not listed.stdout.strip():
            return
        time.sleep(poll_s)


def cmd_gather(args, history: History) -> int:
    from zoo.runs.gather import gather, report
    from zoo.verdicts.baselines import BaselineStore

    settings = settings_of(args)
    store = BaselineStore(args.settings.baselines_dir, args.settings.thresholds)
    gathered = gather(settings, store, history, args.bootstrap, strict=not args.no_strict)
    report(gathered, settings.out)
    sys.stdout.flush()
    return 1 if gathered.failed else 0

