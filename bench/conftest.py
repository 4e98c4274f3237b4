"""The benchmark harness: parametrizes rows of the pair table, gates results, writes leaderboards."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch

from zoo.baselines import BaselineRefusedError, BaselineStore, Verdict
from zoo.data import default_cache_dir
from zoo.engine import TrainOptions
from zoo.gates import LOUD
from zoo.history import History, HistoryInputError
from zoo.leaderboard import LeaderboardSourceError, write_leaderboards
from zoo.pairs import OPT_IN_MARKERS, Pair, pairs_for
from zoo.results import REPO, record_path, session_results_dir, write_record
from zoo.runner import Session


def tier_of(config) -> str:
    tier = config.getoption("--tier")
    if config.getoption("--full"):
        if tier not in (None, "full"):
            raise pytest.UsageError(f"--full contradicts --tier {tier}")
        return "full"
    return tier or "quick"


def parse_seeds(text: str | None, default: int) -> list[int]:
    """'3' -> [0, 1, 2]; '0,4' -> [0, 4]; None -> range(default). Anything else is a usage error."""
    if text is None:
        return list(range(default))
    usage = f"--seeds takes a count >= 1 (3) or a list of distinct seeds >= 0 (0,1,2), got {text!r}"
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts):  # rejects '', '3,', ',', '-1', '1.5'
        raise pytest.UsageError(usage)
    numbers = [int(p) for p in parts]
    if len(numbers) == 1:
        if numbers[0] < 1:
            raise pytest.UsageError(usage)
        return list(range(numbers[0]))
    if len(set(numbers)) != len(numbers):
        raise pytest.UsageError(f"{usage}: a repeated seed repeats one run and fakes a zero spread")
    return numbers


DEVICE_CHOICES = "auto, cpu, cuda, cuda:N"


def resolve_device(text: str) -> torch.device:
    """The --device choice as a torch device; a usage error names the valid choices."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    index = text.removeprefix("cuda").removeprefix(":")
    if text.startswith("cuda") and (index == "" and text == "cuda" or index.isdigit()):
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index and int(index) >= available or not available:
            raise pytest.UsageError(f"--device {text}: this machine has {available} CUDA device(s); "
                                    f"choose from {DEVICE_CHOICES} (e.g. --device cpu)")
        return torch.device(text)
    raise pytest.UsageError(f"--device {text!r} is not supported; choose from {DEVICE_CHOICES}")


def reports_dir(config) -> Path:
    """Where a session's leaderboards go: --reports-dir, else <results-dir>/reports (never the committed reports/)."""
    return Path(config.getoption("--reports-dir") or Path(config.getoption("--results-dir")) / "reports")


def strict_baselines(config) -> bool:
    """--strict-baselines, on by default in CI (env CI set): a row without a baseline fails instead of NEW."""
    return config.getoption("--strict-baselines") or os.environ.get("CI", "").lower() in ("1", "true", "yes")


def baselines_problem(config, tier: str) -> str | None:
    """Why the baselines folder cannot gate this tier (missing, or holding no record of it), else None."""
    root = Path(config.getoption("--baselines-dir"))
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
        return parse_seeds(self.config.getoption("--seeds"), pair.recipes[self.tier].seeds)

    def finish(self, record: dict, remeasure: Callable[[], dict] | None = None, min_seeds: int = 0) -> Verdict:
        """Write the record, judge it against its baseline (or store it), and fail/skip the calling test.

        A row failing on wall-clock metrics alone is measured once more with `remeasure`, and fails only
        if the rerun fails too. With --update-baselines the record is stored if it is fit to be a
        baseline (`min_seeds`: the row recipe's baseline seeds), else the test fails saying why.
        """
        path = record_path(self.results_dir, record)
        write_record(path, record)
        if self.config.getoption("--update-baselines"):
            try:
                verdict = self.store.update(record, min_seeds, self.config.getoption("--baseline-reason"))
            except BaselineRefusedError as err:
                self.verdicts[record["id"]] = Verdict("fail", baseline_file=self.store.path(record), notes=[str(err)])
                pytest.fail(str(err), pytrace=False)
        else:
            verdict = self.store.judge(record, path, remeasure)
            if verdict.record is not record:  # a confirming rerun: keep both attempts in the results
                write_record(path, verdict.record)
        self.verdicts[record["id"]] = verdict
        for finding in verdict.findings:
            if finding.status in LOUD or finding.timing and finding.status == "ok":  # a passed speed check says how
                self.session.opts.log(f"{finding.status.upper()} {finding.message()}")
        if verdict.status == "fail":
            pytest.fail(verdict.summary(), pytrace=False)
        if verdict.status == "new":
            if strict_baselines(self.config):
                pytest.fail(f"NEW {record['id']} under --strict-baselines: {verdict.summary()}", pytrace=False)
            pytest.skip(f"NEW {record['id']}: {verdict.summary()}")
        return verdict


def pytest_configure(config):
    """Bad options are usage errors (exit 4) before anything runs."""
    tier = tier_of(config)
    parse_seeds(config.getoption("--seeds"), 1)
    resolve_device(config.getoption("--device"))
    reason = config.getoption("--baseline-reason")
    if reason is not None and (not reason.strip() or not config.getoption("--update-baselines")):
        raise pytest.UsageError("--baseline-reason takes a non-empty reason and goes with --update-baselines")
    problem = baselines_problem(config, tier)
    if problem and strict_baselines(config) and not config.getoption("--update-baselines"):
        raise pytest.UsageError(f"{problem}: under --strict-baselines (on when CI is set) every row needs a "
                                f"baseline; point --baselines-dir at the baselines folder")


def pytest_report_header(config):
    tier = tier_of(config)
    lines = [f"kdbench: tier {tier}, baselines {config.getoption('--baselines-dir')}"
             f"{' (strict)' if strict_baselines(config) else ''}"]
    if problem := baselines_problem(config, tier):
        lines.append(f"WARNING: {problem}: every row will be NEW, nothing is gated")
    return lines


def pytest_generate_tests(metafunc):
    if "pair" in metafunc.fixturenames:
        tier = tier_of(metafunc.config)
        params = [pytest.param(p, id=p.id, marks=_marks(p, tier)) for p in pairs_for(tier)]
        metafunc.parametrize("pair", params)
    if "model_case" in metafunc.fixturenames:
        tier = tier_of(metafunc.config)
        cases: dict[tuple, list[Pair]] = {}
        for p in pairs_for(tier):
            cases.setdefault((p.dataset, p.student), []).append(p)
        params = []
        for case, rows in cases.items():  # a model case carries the markers all of its rows share
            shared = set.intersection(*(set(r.markers) for r in rows))
            marks = [getattr(pytest.mark, m) for m in (_dataset_mark(rows[0]), *sorted(shared))]
            params.append(pytest.param(case, id=f"{case[0]}-{case[1].slug}", marks=marks))
        metafunc.parametrize("model_case", params)


def pytest_collection_modifyitems(config, items):
    """Rows of an opt-in marker (`sweep`, `distillers`) run only with its option: the default keeps its budget."""
    for marker, option in OPT_IN_MARKERS.items():
        if not config.getoption(option):
            left_out = [item for item in items if item.get_closest_marker(marker)]
            if left_out:
                config.hook.pytest_deselected(items=left_out)
                items[:] = [item for item in items if not item.get_closest_marker(marker)]


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
    tier = tier_of(config)
    cache = Path(config.getoption("--cache-dir") or default_cache_dir())
    data_root = config.getoption("--data-root")
    opts = TrainOptions(device=resolve_device(config.getoption("--device")), amp=config.getoption("--amp"),
                        channels_last=config.getoption("--channels-last"), compile=config.getoption("--compile"),
                        log=_live_log(config))
    results = session_results_dir(Path(config.getoption("--results-dir")), tier)
    session = Session(Path(data_root) if data_root else None, cache, opts, outputs_dir=results)
    config.stash[_BENCH] = instance = Bench(config, tier, session, BaselineStore(config.getoption("--baselines-dir")),
                                            results)
    return instance


_BENCH = pytest.StashKey[Bench]()


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
        paths, skipped = write_leaderboards(Path(config.getoption("--results-dir")),
                                            reports_dir(config), tier=instance.tier)
        if any(v.status == "updated" for v in instance.verdicts.values()):
            if Path(config.getoption("--baselines-dir")).resolve() == (REPO / "baselines").resolve():
                committed, more = write_leaderboards(REPO / "baselines", REPO / "reports", tier=instance.tier)
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
    return Path(config.getoption("--history") or Path(config.getoption("--results-dir")) / "history.sqlite")


def _record_history(config, write) -> None:
    """Add every result record under --results-dir to the history store (records already there are skipped)."""
    results = Path(config.getoption("--results-dir"))
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
    for status in ("fail", "warn", "new", "updated", "pass"):
        ids = [i for i, v in instance.verdicts.items() if v.status == status]
        if ids:
            write(f"{status.upper():8} {len(ids):3}  {', '.join(ids)}")
    for verdict in instance.verdicts.values():
        for finding in verdict.findings:
            if finding.status in LOUD:
                write(f"{finding.status.upper()} {finding.message()}", yellow=finding.status == "warn")
        for note in verdict.notes:
            write(f"NOTE {note}")
    write(f"results: {instance.results_dir}")
