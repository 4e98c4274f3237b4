"""kdbench's pytest plugin (entry point pytest11 `kdbench`): options, markers, rows, verdicts, summaries.

Installed with the package, so `pytest bench/` works in any folder holding bench/ and baselines/. The
harness acts on sessions that collect kdbench rows (tests using the `bench` fixture); others only see its
options and markers. Folders default to the project's (zoo.records.results.project_root: the nearest
folder at or above the current directory holding baselines/), never to the installed package's.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from zoo.catalog.pairs import OPT_IN_MARKERS, Pair
from zoo.errors import KdbenchInputError
from zoo.measure.costs import SESSION_PID_ENV
from zoo.project.settings import Settings, add_pytest_options
from zoo.records.history import History, HistoryInputError
from zoo.records.record import Record
from zoo.records.results import record_path, session_results_dir, write_record
from zoo.reports.leaderboard import LeaderboardSourceError, write_leaderboards
from zoo.runs.session import Session
from zoo.training.engine import TrainingDiverged
from zoo.training.forward import TrainOptions
from zoo.verdicts.baselines import BaselineRefusedError, BaselineStore, Verdict
from zoo.verdicts.status import RowStatus, Status


def _pin_gpu_for_xdist_worker() -> None:
    """One GPU per pytest-xdist worker: set before torch initialises CUDA (workers are gw0, gw1, ...)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or "CUDA_VISIBLE_DEVICES" in os.environ or not shutil.which("nvidia-smi"):
        return
    gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.count("GPU ")
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(int(worker.removeprefix("gw")) % gpus)


_pin_gpu_for_xdist_worker()


def pytest_addoption(parser):
    group = parser.getgroup("kdbench")
    add_pytest_options(group)  # the session's options, declared once (zoo.project.settings), as kdbench's commands take them
    group.addoption("--update-baselines", action="store_true",
                    help="store this run's results as the baselines instead of gating on them (refused for a "
                         "failing run or fewer seeds than the row's recipe needs)")
    group.addoption("--baseline-reason", default=None,
                    help="with --update-baselines: store baselines with fewer seeds than required, for this reason "
                         "(kept in the record)")
    group.addoption("--strict-baselines", action="store_true",
                    help="a row without a baseline fails instead of being reported NEW (on when env CI is set)")
    group.addoption("--results-dir", default=None,
                    help="results root, one folder per session (default: results/ beside the project's baselines/)")
    group.addoption("--reports-dir", default=None,
                    help="where a session's leaderboards go (default <results-dir>/reports); the committed "
                         "reports/ are regenerated from baselines/ by --update-baselines")
    group.addoption("--history", default=os.environ.get("KDBENCH_HISTORY"),
                    help="history store the session's results are added to (env KDBENCH_HISTORY; default "
                         "<results-dir>/history.sqlite)")
    group.addoption("--speed-base", default=None, metavar="REF",
                    help="also time this tree against the git ref REF, block by block, paired (zoo.paired): the rows "
                         "marked `paired`, judged on any machine (.ci/run: HEAD~1; a pull request: its merge-base)")
    group.addoption("--speed-base-python", default=None, metavar="PYTHON",
                    help="the paired base's interpreter (another venv, e.g. another torch); without --speed-base: "
                         "this tree under that interpreter")
    group.addoption("--amp", action="store_true", help="bf16 autocast (GPU)")
    group.addoption("--channels-last", action="store_true", help="channels_last memory format")
    group.addoption("--compile", action="store_true", help="torch.compile the student")


SERIAL_MARKERS = ("speed", "paired")
"""Timing benchmarks: they run serially, alone on the machine, so a pytest-xdist worker skips them."""


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    """A timing benchmark (marked speed or paired) is skipped in a pytest-xdist worker, before its fixtures run."""
    if os.environ.get("PYTEST_XDIST_WORKER") and any(item.get_closest_marker(m) for m in SERIAL_MARKERS):
        pytest.skip("timing benchmarks run serially, never under xdist")


def settings(config) -> Settings:
    """The session's settings (zoo.project.settings), built once in pytest_configure."""
    return config.stash[_SETTINGS]


_SETTINGS = pytest.StashKey[Settings]()


def tier_of(config) -> str:
    return settings(config).tier


def project_dir(config) -> Path:
    """The benchmark project this session runs in (the nearest folder at or above pytest's start holding baselines/)."""
    return settings(config).project


def baselines_dir(config) -> Path:
    return settings(config).baselines_dir


def results_dir(config) -> Path:
    return Path(config.getoption("--results-dir") or project_dir(config) / "results")


def reports_dir(config) -> Path:
    """Where a session's leaderboards go: --reports-dir, else <results-dir>/reports (never the committed reports/)."""
    return Path(config.getoption("--reports-dir") or results_dir(config) / "reports")


def strict_baselines(config) -> bool:
    """--strict-baselines, on by default in CI (env CI set): a row without a baseline fails instead of NEW."""
    return config.getoption("--strict-baselines") or os.environ.get("CI", "").lower() in ("1", "true", "yes")


def baselines_problem(config, tier: str) -> str | None:
    """Why the baselines folder cannot gate this tier (missing, or holding no record of it), else None."""
    root = baselines_dir(config)
    if not root.is_dir():
        return f"--baselines-dir {root} does not exist"
    if not any((root / tier).rglob("*.json")):
        return f"--baselines-dir {root} holds no baseline of the {tier!r} tier"
    return None


@dataclass
class Bench:
    """One benchmark session: its tier, options, shared training session and verdicts."""

    config: pytest.Config
    tier: str
    session: Session
    store: BaselineStore
    results_dir: Path
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    def seeds(self, pair: Pair) -> list[int]:
        return settings(self.config).seeds_for(pair.recipes[self.tier].seeds)

    def finish(self, record: Record, remeasure: Callable[[], Record] | None = None, min_seeds: int = 0) -> Verdict:
        """Write the record, judge it against its baseline (or store it), and fail/skip the calling test.

        A row failing on wall-clock metrics alone is measured once more with `remeasure`, and fails only
        if the rerun fails too. With --update-baselines the record is stored if it is fit to be a
        baseline (`min_seeds`: the row recipe's baseline seeds), else the test fails saying why.
        """
        path = record_path(self.results_dir, record.key)
        write_record(path, record)
        if self.config.getoption("--update-baselines"):
            try:
                verdict = self.store.update(record, min_seeds, self.config.getoption("--baseline-reason"))
            except BaselineRefusedError as err:
                self.verdicts[record.id] = Verdict(RowStatus.FAIL, baseline_file=self.store.path(record), notes=[str(err)])
                pytest.fail(str(err), pytrace=False)
        else:
            verdict = self.store.judge(record, path, remeasure)
            if verdict.record is not record:  # a confirming rerun: keep both attempts in the results
                write_record(path, verdict.record)
        self.verdicts[record.id] = verdict
        for finding in verdict.findings:
            if Status(finding.status).loud or (finding.timing or finding.interval) and finding.status == Status.OK:  # says how
                self.session.opts.log(f"{finding.status.upper()} {finding.message()}")
        if verdict.status.fails(strict_baselines(self.config)):
            if verdict.status == RowStatus.NEW:
                pytest.fail(f"NEW {record.id} under --strict-baselines: {verdict.summary()}", pytrace=False)
            pytest.fail(verdict.summary(), pytrace=False)
        if verdict.status == RowStatus.NEW:
            pytest.skip(f"NEW {record.id}: {verdict.summary()}")
        return verdict


def pytest_configure(config):
    """Register the markers; bad options are usage errors (exit 4) before anything runs."""
    for name, text in [
        ("mnist", "rows on MNIST"),
        ("cifar10", "rows on CIFAR-10"),
        ("kd", "rows that distill from a teacher"),
        ("teacher", "rows whose model teaches other rows"),
        ("deep", "deep CIFAR rows (ResNet-18 and its teachers)"),
        ("resnet", "the study's ResNet-18 section: ResNet-18, its teachers, and the CNN distilled from it"),
        ("speed", "inference throughput and latency benchmarks (never under xdist)"),
        ("sweep", "rows of the dark-knowledge schemes: deselected unless --sweeps is given"),
        ("distillers", "rows of distillers other than Hinton KD: deselected unless --distillers is given"),
        ("paired", "blocks timed against --speed-base REF (zoo.paired): deselected unless --speed-base is given"),
    ]:
        config.addinivalue_line("markers", f"{name}: {text}")
    config.pluginmanager.register(_RowReports(config), "kdbench-row-reports")
    os.environ.setdefault(SESSION_PID_ENV, str(os.getpid()))  # xdist workers inherit it: siblings are not load
    try:  # the rows of installed packages and of the project's row modules join the catalogue before collection
        config.stash[_SETTINGS] = built = Settings.build(config, config.invocation_params.dir)
        built.torch_device()
    except KdbenchInputError as err:
        raise pytest.UsageError(str(err)) from err
    _check_speed_base(config)
    reason = config.getoption("--baseline-reason")
    if reason is not None and (not reason.strip() or not config.getoption("--update-baselines")):
        raise pytest.UsageError("--baseline-reason takes a non-empty reason and goes with --update-baselines")


def _check_speed_base(config) -> None:
    """--speed-base must name a commit of the project's repository; --speed-base-python an interpreter."""
    ref, python = config.getoption("--speed-base"), config.getoption("--speed-base-python")
    if ref is not None:
        done = subprocess.run(["git", "-C", str(project_dir(config)), "rev-parse", "--verify", "--quiet",
                               f"{ref}^{{commit}}"], capture_output=True, text=True)
        if done.returncode:
            raise pytest.UsageError(f"--speed-base {ref!r} is not a commit of the repository at {project_dir(config)}; "
                                    f"name a branch, tag or commit (a shallow clone lacks history: fetch-depth 0)")
    if python is not None and not shutil.which(python):
        raise pytest.UsageError(f"--speed-base-python {python!r} is not an executable; give a venv's bin/python")


def pytest_report_header(config):
    return [f"kdbench: tier {tier_of(config)}, baselines {baselines_dir(config)}"
            f"{' (strict)' if strict_baselines(config) else ''}"]


def runs_rows(config) -> bool:
    """Whether this session collected kdbench rows (tests using the `bench` fixture), here or in an xdist worker."""
    return config.stash.get(_RUNS_ROWS, False)


_RUNS_ROWS = pytest.StashKey[bool]()
_ROW_PROPERTY = ("kdbench", "row")


def pytest_generate_tests(metafunc):
    if "pair" in metafunc.fixturenames:
        tier = tier_of(metafunc.config)
        params = [pytest.param(p, id=p.id, marks=_marks(p, tier)) for p in settings(metafunc.config).pairs()]
        metafunc.parametrize("pair", params)
    if "paired_block" in metafunc.fixturenames:
        from zoo.paired.names import DEFAULT_BLOCKS

        metafunc.parametrize("paired_block", list(DEFAULT_BLOCKS), ids=list(DEFAULT_BLOCKS))
    if "model_case" in metafunc.fixturenames:
        tier = tier_of(metafunc.config)
        cases: dict[tuple, list[Pair]] = {}
        for p in settings(metafunc.config).pairs():
            cases.setdefault((p.dataset, p.student), []).append(p)
        params = []
        for case, rows in cases.items():  # a model case carries the markers all of its rows share
            shared = set.intersection(*(set(r.markers) for r in rows))
            marks = [getattr(pytest.mark, m) for m in (_dataset_mark(rows[0]), *sorted(shared))]
            params.append(pytest.param(case, id=f"{case[0]}-{case[1].slug}", marks=marks))
        metafunc.parametrize("model_case", params)


def pytest_collection_modifyitems(config, items):
    """Rows of an opt-in marker (`sweep`, `distillers`) run only with its option: the default keeps its budget.

    A session with kdbench rows and no baselines to gate them warns, or is a usage error under
    --strict-baselines (on when CI is set), before anything runs.
    """
    rows = [item for item in items if "bench" in getattr(item, "fixturenames", ())]
    for item in rows:
        item.user_properties.append(_ROW_PROPERTY)  # reaches an xdist controller with the item's reports
    if rows:
        config.stash[_RUNS_ROWS] = True
        _check_baselines(config)
    for marker, option in {**OPT_IN_MARKERS, "paired": "--speed-base"}.items():
        if not config.getoption(option) and not (marker == "paired" and config.getoption("--speed-base-python")):
            left_out = [item for item in items if item.get_closest_marker(marker)]
            if left_out:
                config.hook.pytest_deselected(items=left_out)
                items[:] = [item for item in items if not item.get_closest_marker(marker)]


def pytest_collection_finish(session) -> None:
    """A -k that leaves no test says where the row ids are listed (pytest alone says "no tests collected")."""
    keyword = session.config.getoption("keyword")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if keyword and not session.items and reporter is not None:
        reporter.write_line(f"no row matches -k {keyword!r}: `kdbench rows` lists the row ids with their tiers and "
                            f"markers (rows marked sweep or distillers need --sweeps or --distillers)", yellow=True)


def _check_baselines(config) -> None:
    problem = baselines_problem(config, tier_of(config))
    if not problem:
        return
    if strict_baselines(config) and not config.getoption("--update-baselines"):
        raise pytest.UsageError(f"{problem}: under --strict-baselines (on when CI is set) every row needs a "
                                f"baseline; point --baselines-dir at the baselines folder")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"WARNING: {problem}: every row will be NEW, nothing is gated", red=True, bold=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A row whose training diverged fails with one line naming the row, seed and epoch (and is counted in the
    session summary), not with the engine's traceback."""
    try:
        return (yield)
    except TrainingDiverged as err:
        instance = item.config.stash.get(_BENCH, None)
        if instance is not None:
            instance.verdicts[err.row] = Verdict(RowStatus.FAIL, notes=[err.verdict()])
        pytest.fail(err.verdict(), pytrace=False)


class _RowReports:
    """Notes, on an xdist controller (which collects nothing), that a worker ran kdbench rows."""

    def __init__(self, config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report) -> None:
        if any(tuple(prop) == _ROW_PROPERTY for prop in report.user_properties):  # xdist sends lists
            self.config.stash[_RUNS_ROWS] = True


def _dataset_mark(pair: Pair) -> str:
    return "mnist" if pair.dataset == "mnist" else "cifar10"


def _marks(pair: Pair, tier: str) -> list:
    names = [_dataset_mark(pair), *pair.markers]
    if pair.recipes[tier].distill:
        names.append("kd")
    if pair.is_teacher_row:
        names.append("teacher")
    return [getattr(pytest.mark, n) for n in dict.fromkeys(names)]


@pytest.fixture(scope="session")
def bench(request) -> Bench:
    config = request.config
    given = settings(config)
    opts = TrainOptions(device=given.torch_device(), amp=config.getoption("--amp"),
                        channels_last=config.getoption("--channels-last"), compile=config.getoption("--compile"),
                        log=_live_log(config))
    results = session_results_dir(results_dir(config), given.tier)
    session = Session(given.data_root, given.cache_dir, opts, outputs_dir=results)
    config.stash[_BENCH] = instance = Bench(config, given.tier, session,
                                            BaselineStore(given.baselines_dir, given.thresholds), results)
    return instance


_BENCH = pytest.StashKey[Bench]()


@pytest.fixture(scope="session")
def paired_ab(request, bench) -> dict:
    """The paired A/B of every collected `paired_block` against --speed-base, run once, in one window, on first
    use: its records by block name (zoo.paired.ab)."""
    import sys

    from zoo.paired.ab import ABRequest, run_ab

    config = request.config
    blocks = [item.callspec.params["paired_block"] for item in request.session.items
              if "paired_block" in getattr(getattr(item, "callspec", None), "params", {})]
    ab = ABRequest(project=project_dir(config), base_ref=config.getoption("--speed-base"),
                   base_python=config.getoption("--speed-base-python"), blocks=tuple(blocks))
    records = run_ab(ab, settings(config).thresholds, sys.executable, bench.session.cache_dir, log=bench.session.opts.log)
    return {record.summary["block"]: record for record in records}


def _live_log(config):
    """Per-epoch progress straight to the terminal, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return lambda line: print(line, flush=True)

    def write(line: str) -> None:
        reporter.ensure_newline()
        reporter.write_line(line)

    return write


def pytest_terminal_summary(terminalreporter, config):
    if not runs_rows(config):
        return  # a session without kdbench rows (unit tests, -k matching no row): nothing is recorded or reported
    instance = config.stash.get(_BENCH, None)
    write = terminalreporter.write_line
    if problem := baselines_problem(config, tier_of(config)):
        write(f"WARNING: {problem}: nothing was gated", red=True, bold=True)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller records, ingests and writes leaderboards
    _record_history(config, write)
    if instance is None or not instance.verdicts:
        return  # nothing ran here (-k matched nothing, --collect-only, xdist's controller): no report is touched
    _summarise(instance, terminalreporter)
    try:  # every row's newest result in any session, so a partial session drops no row
        paths, skipped = write_leaderboards(results_dir(config), reports_dir(config), tier=instance.tier,
                                            baselines=baselines_dir(config))
        if any(v.status == RowStatus.UPDATED for v in instance.verdicts.values()):
            project = project_dir(config)
            if baselines_dir(config).resolve() == (project / "baselines").resolve():
                committed, more = write_leaderboards(project / "baselines", project / "reports", tier=instance.tier)
                paths, skipped = paths + committed, skipped + more
            else:
                write("baselines written outside the repository: regenerate their leaderboards with "
                      "`kdbench leaderboard --from <baselines-dir> --out <dir>`")
    except LeaderboardSourceError as err:
        write(f"leaderboard not written: {err}", red=True)
        return
    for path in paths:
        write(f"leaderboard: {path}")
    for line in skipped:
        write(f"leaderboard skipped {line}", yellow=True)


def history_path(config) -> Path:
    return Path(config.getoption("--history") or results_dir(config) / "history.sqlite")


def _record_history(config, write) -> None:
    """Add every result record under --results-dir to the history store (records already there are skipped)."""
    results = results_dir(config)
    if not results.is_dir():
        return
    history = History(history_path(config))
    try:
        added = history.ingest(results)
    except HistoryInputError as err:
        write(f"history store {history.path} NOT updated: {err}", red=True, bold=True)
        return
    write(f"history: {added} new records in {history.path} (kdbench history, kdbench compare latest baselines)")


def _summarise(instance: Bench, terminalreporter) -> None:
    write = terminalreporter.write_line
    terminalreporter.section(f"kdbench {instance.tier} tier")
    for status in RowStatus:
        ids = [i for i, v in instance.verdicts.items() if v.status == status]
        if ids:
            write(f"{status.label:8} {len(ids):3}  {', '.join(ids)}")
    for verdict in instance.verdicts.values():
        for finding in verdict.findings:
            if Status(finding.status).loud:
                write(f"{finding.status.upper()} {finding.message()}", yellow=finding.status == Status.WARN)
        for note in verdict.notes:
            write(f"NOTE {note}")
    write(f"results: {instance.results_dir}")
