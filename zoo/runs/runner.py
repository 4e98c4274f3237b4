"""Run a row of the pair table for some seeds in this process: each seed trained (a teacher row through the
cache, re-evaluated now if it came from there), measured, and the row's result record built from the seeds.
"""
from __future__ import annotations

from pathlib import Path

from zoo.catalog.pairs import Pair
from zoo.measure.costs import count_gmacs, count_params, peak_memory_mib, reset_peak_memory
from zoo.records.logits import TEST_LOGITS
from zoo.records.record import Record
from zoo.runs.row_records import SeedResult, pair_record
from zoo.runs.session import Session, cached_train_seed, reevaluate, run_key, train_seed
from zoo.training.engine import TrainingDiverged
from zoo.training.forward import test_indices


def run_seed(pair: Pair, tier: str, seed: int, session: Session, checkpoint: Path | None = None) -> SeedResult:
    """Run one seed of `pair`: a teacher row through the cache (re-evaluated now if it came from there), any
    other row trained now (checkpointed to `checkpoint` if given)."""
    device = session.opts.device
    reset_peak_memory(device)
    try:
        if pair.is_teacher_row:
            model, report = cached_train_seed(pair, tier, seed, session)
            if report["from_cache"]:
                report = reevaluate(model, pair, tier, report, session)
        else:
            model, report = train_seed(pair, tier, seed, session, checkpoint)
    except TrainingDiverged as err:  # named here: the engine knows the epoch, not the row
        err.row, err.seed = pair.id, seed
        raise
    gmacs, unsupported = count_gmacs(model, session.dataset(pair.dataset).input_shape)
    costs = {"params": count_params(model), "gmacs": round(gmacs, 9), "unsupported_ops": unsupported,
             "peak_memory_mib": peak_memory_mib(device)}
    logits = report.pop(TEST_LOGITS).float().cpu()
    data = session.dataset(pair.dataset)
    return SeedResult(report, logits, costs, session.provenance(), session.probe.describe(),
                      run_key(pair, tier, seed, session), device.type, data.fingerprint, data.source, session.switches)


def run_pair(pair: Pair, tier: str, seeds: list[int], session: Session) -> Record:
    """Run `pair` for `seeds` in this process and return its result record."""
    if not seeds:
        raise ValueError(f"{pair.id}: no seeds to run")
    results = [run_seed(pair, tier, seed, session) for seed in seeds]
    return pair_record(pair, tier, results, row_test_labels(pair, tier, session), session.provenance(), session.outputs_dir)


def row_test_labels(pair: Pair, tier: str, session: Session):
    """The labels of the row's test set (the recipe's subset), stored with its seeds' logits."""
    data = session.dataset(pair.dataset)
    return data.test_y[test_indices(data, pair.recipes[tier])]
