"""The benchmark harness: parametrizes rows of the pair table, gates results, writes leaderboards."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from zoo.baselines import BaselineStore, Verdict
from zoo.data import default_cache_dir
from zoo.engine import TrainOptions
from zoo.leaderboard import write_leaderboards
from zoo.pairs import Pair, pairs_for
from zoo.results import record_path, session_results_dir, write_record
from zoo.runner import Session


def tier_of(config) -> str:
    tier = config.getoption("--tier")
    if config.getoption("--full"):
        if tier not in (None, "full"):
            raise pytest.UsageError(f"--full contradicts --tier {tier}")
        return "full"
    return tier or "quick"


def parse_seeds(text: str | None, default: int) -> list[int]:
    """'3' -> [0, 1, 2]; '0,4' -> [0, 4]; None -> range(default)."""
    if text is None:
        return list(range(default))
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        return list(range(int(text)))
    except ValueError:
        raise pytest.UsageError(f"--seeds takes a count (3) or a list (0,1,2), got {text!r}") from None


def resolve_device(text: str) -> torch.device:
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(text)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device {text}: no CUDA device is available here; use --device cpu")
    return device


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

    def finish(self, record: dict) -> Verdict:
        """Write the record, judge it against its baseline, and fail/skip the calling test accordingly."""
        write_record(record_path(self.results_dir, record), record)
        verdict = self.store.judge(record, update=self.config.getoption("--update-baselines"))
        self.verdicts[record["id"]] = verdict
        for finding in verdict.findings:
            if finding.status == "improved":
                print(f"IMPROVED {finding.message()}")
        if verdict.status == "fail":
            pytest.fail(verdict.summary(), pytrace=False)
        if verdict.status == "new":
            pytest.skip(f"NEW {record['id']}: {verdict.summary()}")
        return verdict


def pytest_configure(config):
    tier_of(config), parse_seeds(config.getoption("--seeds"), 1)  # bad options fail before anything runs


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
    session = Session(Path(data_root) if data_root else None, cache, opts)
    results = session_results_dir(Path(config.getoption("--results-dir")), tier)
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
    if instance is not None and instance.verdicts:
        _summarise(instance, terminalreporter)
    if not os.environ.get("PYTEST_XDIST_WORKER") and not config.option.collectonly:  # the controller aggregates
        for path in write_leaderboards(Path(config.getoption("--results-dir")), Path(config.getoption("--reports-dir")),
                                       tier=tier_of(config)):
            write(f"leaderboard: {path}")


def _summarise(instance: Bench, terminalreporter) -> None:
    write = terminalreporter.write_line
    terminalreporter.section(f"kdbench {instance.tier} tier")
    for status in ("fail", "new", "updated", "pass"):
        ids = [i for i, v in instance.verdicts.items() if v.status == status]
        if ids:
            write(f"{status.upper():8} {len(ids):3}  {', '.join(ids)}")
    improved = [f for v in instance.verdicts.values() for f in v.findings if f.status == "improved"]
    for finding in improved:
        write(f"IMPROVED {finding.message()}")
    write(f"results: {instance.results_dir}")
