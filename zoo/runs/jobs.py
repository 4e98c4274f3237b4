"""One job = one (row, seed, tier): it trains the seed, resumably, and writes one seed result into a results folder.

A results folder of jobs (`kdbench run`, `kdbench launch`) is laid out as

    <out>/plan.json                                          the jobs launched into it (zoo.runs.plan)
    <out>/seeds/<tier>/<dataset>/<device>/<row>/seed<S>.pt   a finished seed (SeedResult), written atomically
    <out>/checkpoints/<tier>/<device>/<row>-seed<S>.pt       an unfinished seed's last epoch
    <out>/timing/<job>/                                      a timing job's pytest results folder
    <out>/logs/<job>.log                                     each job's output (local executor)
    <out>/records/                                           the gathered row records (zoo.runs.gather)

A finished seed is never run again (unless its result is of another run: other code, data or switches); an
unfinished one resumes from its checkpoint. A timing job runs one
timing benchmark file of bench/ under pytest, alone on its machine.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from zoo.catalog.pairs import get_pair
from zoo.records.io import CorruptFileError, load_tensors, save_tensors
from zoo.records.results import default_cache_dir
from zoo.runs.row_records import SeedResult
from zoo.runs.runner import run_seed
from zoo.runs.session import Session, run_key
from zoo.training.forward import TrainOptions


@dataclass(frozen=True)
class Job:
    """One unit of work: a (row, seed) of a tier, or a timing benchmark file (`bench`) run exclusively."""

    tier: str
    row: str = ""
    seed: int = 0
    bench: str = ""  # a timing job: the bench/ file it runs

    @property
    def name(self) -> str:
        return f"timing-{Path(self.bench).stem}" if self.bench else f"{self.row}-seed{self.seed}"

    @property
    def is_timing(self) -> bool:
        return bool(self.bench)

    def as_dict(self) -> dict:
        return {"tier": self.tier, "row": self.row, "seed": self.seed, "bench": self.bench}


@dataclass(frozen=True)
class JobSettings:
    """How a job runs: where its data, cache and results are, and on which device."""

    out: Path
    data_root: Path | None = None
    cache_dir: Path | None = None
    device: str = "cpu"
    baselines: Path | None = None  # for timing jobs (their pytest session gates against it too)
    threads: int | None = None  # torch's CPU threads (results on a CPU differ with the thread count)

    def session(self) -> Session:
        """This process's session for these settings: made once, so a worker running job after job loads each
        dataset once."""
        return _session(self)


@functools.cache
def _session(settings: JobSettings) -> Session:
    opts = TrainOptions(device=torch.device(settings.device), log=lambda line: print(line, flush=True))
    return Session(settings.data_root, settings.cache_dir or default_cache_dir(), opts)


def seed_result_path(out: Path, tier: str, dataset: str, device: str, row: str, seed: int) -> Path:
    return Path(out) / "seeds" / tier / dataset / device / row / f"seed{seed}.pt"


def checkpoint_path(out: Path, tier: str, device: str, row: str, seed: int) -> Path:
    return Path(out) / "checkpoints" / tier / device / f"{row}-seed{seed}.pt"


def timing_dir(out: Path, job: Job) -> Path:
    return Path(out) / "timing" / job.name


def read_seed_result(path: Path) -> SeedResult:
    """A finished seed's result; a damaged file raises CorruptFileError naming it (delete it to rerun the seed)."""
    state = load_tensors(path)
    try:
        return SeedResult.from_file(state)
    except TypeError as err:
        raise CorruptFileError(f"{path} is not a kdbench seed result ({err}); delete it to rerun the seed") from err


def run_job(job: Job, settings: JobSettings) -> str:
    """Run `job` unless it has finished before; what happened, in a line."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if job.is_timing:
        return run_timing_job(job, settings)
    pair = get_pair(job.row)
    if job.tier not in pair.recipes:
        raise ValueError(f"row {job.row!r} has no {job.tier!r} recipe (it has {', '.join(pair.recipes)})")
    device = torch.device(settings.device).type
    path = seed_result_path(settings.out, job.tier, pair.dataset, device, pair.id, job.seed)
    session = settings.session()
    if path.exists():
        key = run_key(pair, job.tier, job.seed, session)
        try:
            found = read_seed_result(path).key
        except CorruptFileError as err:
            found = f"unreadable: {err}"
        if found == key:
            return f"{job.name}: finished before ({path}); not run again"
        print(f"{job.name}: the result at {path} is of another run ({found}; this run {key}): rerunning", flush=True)
    result = run_seed(pair, job.tier, job.seed, session,
                      checkpoint=checkpoint_path(settings.out, job.tier, device, pair.id, job.seed))
    save_tensors(path, result.to_file())
    return f"{job.name}: test accuracy {result.report['test_accuracy']:.2f}% -> {path}"


def run_timing_job(job: Job, settings: JobSettings) -> str:
    """A timing benchmark file of bench/ under pytest, into its own results folder (gathered and gated later)."""
    results = timing_dir(settings.out, job)
    command = [sys.executable, "-m", "pytest", job.bench, "-p", "no:cacheprovider", "--tier", job.tier,
               "--device", settings.device, "--results-dir", str(results), "-q"]
    if settings.baselines:
        command += ["--baselines-dir", str(settings.baselines)]
    if settings.data_root:
        command += ["--data-root", str(settings.data_root)]
    if settings.cache_dir:
        command += ["--cache-dir", str(settings.cache_dir)]
    env = os.environ | {"CI": ""}  # the gather judges; a timing row without a baseline is reported there
    sys.stdout.flush()
    code = subprocess.run(command, env=env, stdout=sys.stdout, stderr=subprocess.STDOUT).returncode  # into the job's log
    return f"{job.name}: pytest exit {code}, results in {results}"
