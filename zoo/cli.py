"""The `kdbench` command: history, comparison, promotion, leaderboards, trends, analysis and export.

    kdbench init [DIR]                     make DIR a kdbench project: settings, example rows, bench/, CI workflow
    kdbench rows [PATTERN ...]             the rows: ids, tiers, teachers, markers, opt-in options
    kdbench history [PAIR]                 sessions (or one row's runs) and the drift found over them
    kdbench history --rebuild              make the history store anew from the JSON records
    kdbench compare A B                    per-metric deltas and verdicts of run set A against B
    kdbench promote RUN --reason TEXT      RUN's records become the baselines (a diff to review and commit)
    kdbench leaderboard                    markdown leaderboards from the history (or a folder)
    kdbench trend                          trend PNGs from the history
    kdbench export [RUN] [--to T]          Bencher Metric Format JSON, or one MLflow / TensorBoard run per seed
    kdbench site --out DIR                 a static dashboard of the history store (index, rows, regressions)
    kdbench evidence aa|sensitivity ...    A/A reruns and injected regressions judged against the baselines
                                           (sensitivity also: the drop each gated quick row detects)
    kdbench evidence paired DIR            paired A/B runs under DIR/CANDIDATE/CONDITION/RUN: alarms and spread
    kdbench analyze                        dark-knowledge report from the test logits stored with each run
    kdbench run ROW --seed S --out DIR     one (row, seed, tier) job, resumable from its epoch checkpoints
    kdbench launch [PATTERN ...] --out DIR rows x seeds (seed counts from power) run here or submitted to Slurm
    kdbench gather --out DIR               a launch's complete rows judged; rows missing seeds are INCOMPLETE
    kdbench speed --base REF [BLOCK ...]   the working tree timed against REF, block by block, paired (AB/BA)

A run set (A, B, RUN) is a session id from `kdbench history`, `latest` (the newest session),
`baselines` (the committed baselines) or a folder of result records. The history store is
`--db`, else `$KDBENCH_HISTORY`, else results/history.sqlite.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from zoo.errors import KdbenchInputError
from zoo.project.settings import Settings, add_arguments
from zoo.records.history import History, default_path
from zoo.records.io import write_json
from zoo.records.record import Record
from zoo.records.store import RecordStore

# The verdict, report and training modules (scipy, pandas, torch) are imported by the commands that use them, so
# that `kdbench --help` and a usage error answer at once.


class UsageError(KdbenchInputError, ValueError):
    """A bad argument; the message says which and what would work."""


WRITE_REPORTS = "allow --out inside the committed reports/ (regenerating them on purpose)"


def output_folder(args) -> Path:
    """`--out`, refused inside the committed reports/ unless `--write-reports` says that is meant: they are
    generated from the committed baselines only (tests/reports/test_reports.py regenerates them), never from a session."""
    out = args.out
    path, committed = Path(out).resolve(), (args.settings.project / "reports").resolve()
    if path.is_relative_to(committed) and not args.write_reports:
        raise UsageError(f"--out {out} is inside the committed {committed}: pass --write-reports to regenerate them "
                         f"on purpose (from --from baselines; review with `git diff -- reports`), or choose another "
                         f"--out (default results/reports)")
    return Path(out)


# ------------------------------------------------------------------------------------------ run sets
def records_in(folder: Path) -> list[Record]:
    """Every record under a folder (reports skipped); damaged ones are an error naming each file."""
    return RecordStore(folder).listing.complete().records


def run_set(name: str, history: History, baselines: Path) -> tuple[list[dict], str]:
    """The records a run-set name stands for, and a label for it."""
    if name == "baselines":
        if not baselines.is_dir():
            raise UsageError(f"no baselines folder at {baselines}; pass --baselines DIR")
        return records_in(baselines), f"baselines ({baselines})"
    if Path(name).is_dir():
        return records_in(Path(name)), name
    sessions = history.sessions()
    if name == "latest":
        if not sessions:
            raise UsageError(f"the history store {history.path} holds no session yet")
        name = sessions[-1]
    if name not in sessions:
        recent = ", ".join(sessions[-5:]) or "none"
        raise UsageError(f"{name!r} is neither a session in {history.path} (recent: {recent}), 'latest', "
                         f"'baselines', nor a folder of result records")
    return history.records(session=name), f"session {name}"


def _table(rows: list[dict], fmt: str) -> str:
    """Rows of a command's table as text: terminal (aligned), markdown (GitHub), json (a list) or csv."""
    if fmt == "json":
        return json.dumps(rows, indent=1)
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    from zoo.reports.evidence import table

    return table(rows, "github" if fmt == "markdown" else "simple")


# ------------------------------------------------------------------------------------------ commands
def cmd_history(args, history: History) -> int:
    if args.rebuild:
        roots = [Path(r) for r in args.results]
        missing = [str(r) for r in roots if not r.is_dir()]
        if missing:
            raise UsageError(f"--results {', '.join(missing)}: no such folder")
        print(f"rebuilt {history.path} from {', '.join(map(str, roots))}: {history.rebuild(roots)} records")
        return 0
    for folder in args.ingest:
        print(f"ingested {history.ingest(Path(folder))} new records from {folder} into {history.path}")
    if args.pair:
        return _row_history(args, history)
    rows = history.session_summaries()
    print(_table([{"session": r["session"], "date": r["date"], "commit": (r["commit_sha"] or "?")[:10],
                   "tier": r["tiers"], "machine": r["machines"], "records": r["records"],
                   "busy timings": r["busy"]} for r in rows], args.format))
    print()
    print(drift_report(history, args.format, args.settings.baselines_dir))
    return 0


def _row_history(args, history: History) -> int:
    from zoo.verdicts.stats import mean_sd_text

    records = history.records(bench_id=args.pair)
    if not records:
        raise UsageError(f"no run of {args.pair!r} in {history.path}")
    rows = []
    for r in records:
        m = r.metrics
        rows.append({"session": r.provenance.get("date", "?")[:19], "commit": (r.provenance.get("commit") or "?")[:10],
                     "tier": r.tier, "machine": r.provenance.get("device_name", "?"),
                     "busy": "yes" if r.load.get("busy") else "",
                     "seeds": len(r.seeds or []),
                     "accuracy %": mean_sd_text(m.get("test_accuracy") or []),
                     "teacher KL": mean_sd_text(m.get("teacher_kl") or [], 5),
                     "train img/s": mean_sd_text(m.get("train_images_per_s") or [], 0)})
    print(_table(rows, args.format))
    print()
    print(drift_report(history, args.format, args.settings.baselines_dir,
                       only=args.pair))
    return 0


def drift_report(history: History, fmt: str, baselines: Path, only: str | None = None) -> str:
    """Change points over every row's sessions (accuracy, KL, training throughput per machine), as a table."""
    from zoo.verdicts.drift import history_drift

    found = [{"row": bench_id, "metric": metric, "machine": machine, "from session": step.session,
              "commit": (step.commit or "?")[:10], "before": f"{step.before:.4g} ({step.nights_before} sessions)",
              "after": f"{step.after:.4g} ({step.nights_after} sessions)", "change": f"{step.change:+.3g}"}
             for bench_id, metric, machine, step in history_drift(history, RecordStore(baselines), only)]
    head = (f"Drift over sessions (zoo.verdicts.drift: PELT change points, penalty in units of the noise of a session "
            f"mean; a step needs >= 2 sessions on each side): {len(found)} found")
    return head + ("\n" + _table(found, fmt) if found else "")


def cmd_compare(args, history: History) -> int:
    from zoo.reports.verdict_table import change, markdown_report, number, public
    from zoo.verdicts.baselines import compare_sets
    from zoo.verdicts.status import RowStatus, Status

    baselines = args.settings.baselines_dir
    runs, a_label = run_set(args.a, history, baselines)
    bases, b_label = run_set(args.b, history, baselines)
    if not runs:
        raise UsageError(f"{a_label} holds no record")
    results = compare_sets(runs, bases, b_label, args.settings.thresholds)
    counts = {s.value: sum(c.status == s for c in results) for s in RowStatus}
    if args.format == "markdown":
        links = dict(link.split("=", 1) for link in args.link)
        print(markdown_report(results, a_label, b_label, links, args.site_url), end="")
        return 1 if args.check and counts["fail"] else 0
    rows = []
    for c in results:
        if args.only_failed and not c.status.fails():
            continue
        if c.problem:
            rows.append({"row": c.record.id, "metric": "", "A": "", "B": "", "change": "", "p": "",
                         "detectable": "", "verdict": c.status.upper() + ": " + c.problem.split(";")[0][:120],
                         "_rank": Status.NOT_GATED.rank, "_p": 1.0})
        for f in c.findings:
            if (args.only_changed or args.only_failed) and f.status == Status.OK or args.only_failed and not f.failing:
                continue
            reason = f": {f.tolerance[:100]}" if f.status in (Status.NOT_GATED, Status.INVALID) else ""
            rows.append({"row": c.record.id, "metric": f.metric, "A": number(f.measured), "B": number(f.baseline),
                         "change": change(f), "p": "" if f.p_value is None else f"{f.p_value:.2g}",
                         "detectable": "" if f.detectable is None else f"{f.detectable:.3g}",
                         "verdict": f.status.upper() + reason, "_rank": Status(f.status).rank,
                         "_p": 1.0 if f.p_value is None else f.p_value})
    order = {"row": lambda r: (r["row"], r["metric"]), "verdict": lambda r: (r["_rank"], r["row"], r["metric"]),
             "p": lambda r: (r["_p"], r["row"], r["metric"])}[args.sort]
    rows = [{k: v for k, v in row.items() if not k.startswith("_")} for row in sorted(rows, key=order)]
    if args.format in ("terminal", "markdown"):
        print(f"{public(a_label)} against {public(b_label)}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
        print()
    print(_table(rows, args.format))
    return 1 if args.check and counts["fail"] else 0


def cmd_promote(args, history: History) -> int:
    from zoo.reports.leaderboard import write_leaderboards
    from zoo.verdicts.baselines import BaselineRefusedError, BaselineStore

    baselines = args.settings.baselines_dir
    records, label = run_set(args.run, history, baselines)
    if not records:
        raise UsageError(f"{label} holds no record to promote")
    store = BaselineStore(baselines)
    try:
        replaced = store.promote(records, args.reason, label)
    except BaselineRefusedError as err:
        print(f"nothing promoted; refused:\n{err}", file=sys.stderr)
        return 1
    changes = [{"record": str(store.path(record).relative_to(baselines)), "metric": metric,
                "before": _summary(old.values(metric) if old else None), "after": _summary(record.values(metric))}
               for record, old in replaced for metric in record.metrics]
    print(f"promoted {len(records)} records of {label} to {baselines} (reason: {args.reason})")
    print(_table(changes, args.format))
    if baselines.resolve() == (args.settings.project / "baselines").resolve():
        written, _ = write_leaderboards(baselines, args.settings.project / "reports")
        print(f"regenerated {len(written)} committed reports; review with `git diff -- baselines reports`")
    return 0


def _summary(values: list | None) -> str:
    from zoo.verdicts.stats import mean_sd_text

    if values is None:
        return "(new)"
    return mean_sd_text([float(v) for v in values], 4) + f" (n={len(values)})"


def cmd_leaderboard(args, history: History) -> int:
    from zoo.reports.leaderboard import LeaderboardSourceError, write_leaderboards

    source = Path(args.source) if args.source else history.path
    baselines = args.settings.baselines_dir
    try:
        written, skipped = write_leaderboards(source, output_folder(args), args.tier,
                                              baselines)
    except LeaderboardSourceError as err:
        raise UsageError(str(err)) from err
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    for path in written:
        print(path)
    return 0


def cmd_trend(args, history: History) -> int:
    from zoo.reports.trend import write_trends

    baselines = args.settings.baselines_dir
    written = write_trends(history, output_folder(args), baselines if baselines.is_dir() else None)
    if not written:
        raise UsageError(f"{history.path} holds no run with a gated accuracy to plot")
    for path in written:
        print(path)
    return 0


def cmd_export(args, history: History) -> int:
    from zoo.records.bencher import to_bmf

    baselines = args.settings.baselines_dir
    records, label = run_set(args.run, history, baselines)
    if args.to != "bencher":
        return export_to_tracker(args, records, label, baselines)
    report = to_bmf(records)
    if args.out:
        write_json(Path(args.out), report)
        print(f"{len(report)} benchmarks of {label} written to {args.out} (Bencher Metric Format)")
    else:
        print(json.dumps(report, indent=2, sort_keys=True))
    return 0


def export_to_tracker(args, records: list[Record], label: str, baselines: Path) -> int:
    """One MLflow or TensorBoard run per (row, seed) of the run set, tagged with the gate's verdict."""
    from zoo.reports.trackers import seed_runs, to_mlflow, to_tensorboard
    from zoo.verdicts.baselines import compare_sets

    if not records:
        raise UsageError(f"{label} holds no record to export")
    bases = records_in(baselines) if baselines.is_dir() else []
    verdicts = {c.record.key: c.status for c in compare_sets(records, bases, "baselines", args.settings.thresholds)}
    runs = [run for record in records for run in seed_runs(record, verdicts[record.key])]
    if args.to == "mlflow":
        written, skipped = to_mlflow(runs, args.tracking_uri, args.experiment)
        print(f"{written} MLflow runs of {label} written to {args.tracking_uri} (experiment {args.experiment!r})"
              + (f"; {skipped} were there already" if skipped else ""))
    else:
        folder = Path(args.out or "results/tensorboard")
        print(f"{to_tensorboard(runs, folder)} TensorBoard runs of {label} written under {folder}")
    return 0


def cmd_site(args, history: History) -> int:
    from zoo.reports.site import build_site

    pages = build_site(history, args.settings.baselines_dir, Path(args.out))
    print(f"{len(pages)} pages written to {args.out}; open {Path(args.out) / 'index.html'}")
    return 0


def cmd_evidence(args, history: History) -> int:
    from zoo.reports.evidence import aa_report, detectable_report, paired_report, sensitivity_report

    if args.kind == "paired":
        if len(args.sets) != 1 or not Path(args.sets[0]).is_dir():
            raise UsageError(f"paired takes one folder holding CANDIDATE/CONDITION/RUN/ result folders, got {args.sets}")
        runs: dict[tuple[str, str], list[list[Record]]] = {}
        for run in sorted(Path(args.sets[0]).glob("*/*/*")):
            runs.setdefault((run.parent.parent.name, run.parent.name), []).append(records_in(run))
        return _emit(paired_report(runs), args.out)
    baselines = args.settings.baselines_dir
    base, _ = run_set("baselines", history, baselines)
    if args.kind == "aa":
        runs = {name: run_set(name, history, baselines)[0] for name in args.sets}
        loads = {name: _load_line(records) for name, records in runs.items()}
        text = aa_report(runs, base, loads)
    else:
        pairs = [s.partition("=") for s in args.sets]
        bad = [s for s, eq, _ in pairs if not eq]
        if bad:
            raise UsageError(f"sensitivity takes NAME=RUNSET arguments, got {', '.join(bad)}")
        text = detectable_report(base) + "\n" + sensitivity_report(
            {name: run_set(where, history, baselines)[0] for name, _, where in pairs}, base)
    return _emit(text, args.out)


def _emit(text: str, out: str | None) -> int:
    if out:
        from zoo.records.io import write_text

        write_text(Path(out), text)
        print(f"written to {out}")
    else:
        print(text)
    return 0


def cmd_analyze(args, history: History) -> int:
    from zoo.reports.analysis.report import write_analysis

    root = Path(args.results)
    if not root.is_dir():
        raise UsageError(f"--results {root} is not a folder; point it at the results root or one session's folder")
    path, left_out = write_analysis(root, output_folder(args), args.tier, args.device,
                                    args.pair or None)
    for line in left_out:
        print(f"left out: {line}", file=sys.stderr)
    print(path)
    return 0


def _load_line(records: list[dict]) -> str:
    """How loaded and how fast the machine was over a session: other processes, busy timings, the probe's rate."""
    cores = [r.load["others_cores"] for r in records if (r.load or {}).get("others_cores") is not None]
    busy = sum(bool(r.load.get("busy")) for r in records if r.load)
    rates = [rate for r in records for values in (r.machine_probe or {}).get("per_s", {}).values()
             for rate in values]
    probe = f"; machine probe {statistics.median(rates):.2f}/s (median)" if rates else ""
    throttled = [r.load["throttled"] for r in records if (r.load or {}).get("throttled") is not None]
    quota = f"; CPU quota held it back up to {max(throttled):.0%} of a timing" if throttled and max(throttled) else ""
    return (f"other processes: up to {max(cores):.2f} cores; {busy} of {len(records)} timings busy{quota}{probe}"
            if cores else "?")


def cmd_rows(args, history: History) -> int:
    """Every row of the catalogue (or those matching the patterns): its tiers, teacher, markers and how to select it."""
    import fnmatch

    from zoo.catalog.pairs import OPT_IN_MARKERS, PAIRS

    chosen = [p for p in PAIRS if args.settings.rows.selects(p) and (args.tier is None or args.tier in p.recipes)
              and (not args.patterns or any(fnmatch.fnmatchcase(p.id, pattern) for pattern in args.patterns))]
    if not chosen:
        raise UsageError(f"no row matches {' '.join(args.patterns) or 'the tier'}"
                         f"{f' in tier {args.tier}' if args.tier else ''}; `kdbench rows` lists them all")
    print(_table([{"row": p.id, "dataset": p.dataset, "student": str(p.student), "tiers": ",".join(p.recipes),
                   "teacher": ",".join(sorted(set(p.teacher.values()))) or "-",
                   "markers": ",".join(p.markers) or "-",
                   "opt-in": " ".join(OPT_IN_MARKERS[m] for m in p.markers if m in OPT_IN_MARKERS) or "-"}
                  for p in chosen], args.format))
    print(f"\n{len(chosen)} rows. Select with `pytest bench/ -k ID` (a substring), `kdbench launch PATTERN`; a row "
          f"with an opt-in marker runs only with its option.")
    return 0


def cmd_init(args, history: History) -> int:
    from zoo.project.scaffold import init_project

    print(init_project(Path(args.folder), args.name).describe())
    return 0


# ------------------------------------------------------------------------------------------ parser
def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=None, help="history store (default $KDBENCH_HISTORY, else results/history.sqlite)")
    add_arguments(common, ("baselines_dir",))
    common.add_argument("--format", choices=("terminal", "markdown", "json", "csv"), default="terminal",
                        help="table format (compare --format markdown: the pull-request comment)")
    top = argparse.ArgumentParser(prog="kdbench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    i = sub.add_parser("init", help="make a folder a kdbench project: [tool.kdbench] settings, an example row module, "
                                    "bench/, baselines/ and a CI workflow with the PR comment (existing files kept)")
    i.add_argument("folder", nargs="?", default=".", help="the project folder (default: the current one)")
    i.add_argument("--name", default=None, help="row-id prefix of the example rows (default: from the folder's name)")
    i.set_defaults(handler=cmd_init)

    r = sub.add_parser("rows", parents=[common], help="the rows: ids, tiers, teachers, markers and opt-in options")
    r.add_argument("patterns", nargs="*", metavar="PATTERN", help="row ids or shell patterns (default: every row)")
    r.add_argument("--tier", default=None, choices=("quick", "full", "fast"), help="only rows with this tier")
    r.set_defaults(handler=cmd_rows)

    h = sub.add_parser("history", parents=[common], help="sessions, or one row's runs, and drift over them")
    h.add_argument("pair", nargs="?", help="a row id, e.g. mnist-mlp800-kd-lr0.01")
    h.add_argument("--rebuild", action="store_true", help="make the store anew from the JSON records under --results")
    h.add_argument("--results", action="append", default=None, help="results folder(s) for --rebuild (default results)")
    h.add_argument("--ingest", action="append", default=[], metavar="DIR", help="add the records under DIR first")
    h.set_defaults(handler=cmd_history)

    c = sub.add_parser("compare", parents=[common], help="run set A against run set B: per-metric deltas and verdicts")
    c.add_argument("a")
    c.add_argument("b", nargs="?", default="baselines")
    c.add_argument("--check", action="store_true", help="exit 1 when a row fails")
    c.add_argument("--only-failed", action="store_true", help="only failing rows, and only their failing metrics")
    c.add_argument("--only-changed", action="store_true", help="only metrics that are not ok (changed, not gated)")
    c.add_argument("--sort", choices=("row", "verdict", "p"), default="row",
                   help="row (default), verdict (failing first) or p (smallest first)")
    c.add_argument("--link", action="append", default=[], metavar="NAME=URL",
                   help="markdown: a link under the table, e.g. artifacts=https://... (repeatable)")
    c.add_argument("--site-url", default=None, metavar="URL",
                   help="markdown: where `kdbench site` is published; each row links to its page there")
    c.set_defaults(handler=cmd_compare)

    p = sub.add_parser("promote", parents=[common], help="make a run set's records the baselines, with a reason")
    p.add_argument("run")
    p.add_argument("--reason", required=True, help="why these results become the reference (stored in each record)")
    p.set_defaults(handler=cmd_promote)

    lb = sub.add_parser("leaderboard", parents=[common], help="markdown leaderboards (from the history store by default)")
    lb.add_argument("--from", dest="source", default=None, help="history store, results or baselines folder")
    lb.add_argument("--out", default="results/reports", help="output folder (default results/reports)")
    lb.add_argument("--tier", default=None)
    lb.add_argument("--write-reports", action="store_true", help=WRITE_REPORTS)
    lb.set_defaults(handler=cmd_leaderboard)

    t = sub.add_parser("trend", parents=[common], help="trend PNGs from the history store")
    t.add_argument("--out", default="results/reports/trends", help="output folder (default results/reports/trends)")
    t.add_argument("--write-reports", action="store_true", help=WRITE_REPORTS)
    t.set_defaults(handler=cmd_trend)

    ev = sub.add_parser("evidence", parents=[common], help="A/A and injected-regression reports (markdown)")
    ev.add_argument("kind", choices=("aa", "sensitivity", "paired"))
    ev.add_argument("sets", nargs="+", help="aa: run sets; sensitivity: NAME=RUNSET; paired: one folder of A/B runs")
    ev.add_argument("--out", default=None, help="file (default: standard output)")
    ev.set_defaults(handler=cmd_evidence)

    an = sub.add_parser("analyze", parents=[common], help="dark-knowledge report (markdown + PNGs) from stored test logits")
    an.add_argument("--results", default="results", help="results root or one session's folder (default results)")
    an.add_argument("--out", default="results/analysis", help="output folder (default results/analysis)")
    an.add_argument("--tier", default="quick")
    an.add_argument("--device", default="cpu")
    an.add_argument("--pair", action="append", default=[], metavar="ID",
                    help="a distilled row to analyse (repeatable; default: every one whose control and teacher ran)")
    an.add_argument("--write-reports", action="store_true", help=WRITE_REPORTS)
    an.set_defaults(handler=cmd_analyze)

    e = sub.add_parser("export", parents=[common],
                       help="a run set to Bencher Metric Format JSON, MLflow or TensorBoard (one run per row and seed)")
    e.add_argument("run", nargs="?", default="latest")
    e.add_argument("--to", choices=("bencher", "mlflow", "tensorboard"), default="bencher")
    e.add_argument("--out", default=None, help="bencher: file (default: standard output); tensorboard: log folder "
                                               "(default results/tensorboard)")
    e.add_argument("--tracking-uri", default="sqlite:///results/mlflow.db",
                   help="mlflow: the tracking store (default sqlite:///results/mlflow.db; a server's http:// URI works)")
    e.add_argument("--experiment", default="kdbench", help="mlflow: the experiment's name")
    e.set_defaults(handler=cmd_export)

    si = sub.add_parser("site", parents=[common], help="a static dashboard of the history store (no server, no CDN)")
    si.add_argument("--out", default="results/site", help="output folder")
    si.set_defaults(handler=cmd_site)

    from zoo.paired.command import add_parser as add_speed_parser
    from zoo.runs.commands import add_parsers

    add_parsers(sub, common)
    add_speed_parser(sub, common)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "results", None) is None and args.command == "history":
        args.results = ["results"]
    history = History(getattr(args, "db", None) or default_path())
    try:
        if args.command != "init":  # init makes the project the settings are read from
            args.settings = Settings.build(args)
        return args.handler(args, history)
    except KdbenchInputError as err:  # a usage error or bad input, each naming what to change; a bug is a traceback
        print(f"kdbench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:  # an optional extra (kdbench[mlflow], [site], [slurm]) that is not installed
        print(f"kdbench {args.command}: error: {err}; install the extra that provides it (README)", file=sys.stderr)
        return 2
    except FloatingPointError as err:  # zoo.training.engine.TrainingDiverged: a result that fails, not a usage error
        print(f"kdbench {args.command}: {err}", file=sys.stderr)
        return 1

if __name__ == "__main__":
    sys.exit(main())
