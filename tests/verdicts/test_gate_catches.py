"""The gate works: an unchanged rerun passes; a broken KD loss, a changed architecture and a dropped
KD term each fail it; a cached teacher is measured again, not copied. Every case trains real (tiny)
MNIST pairs. Nothing here depends on wall-clock speed: timing gates are tested on records in
test_gates.py, and the real slow-downs are demonstrated with `zoo.harness.faults` (README)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import zoo.catalog.pairs
import zoo.records.io
import zoo.runs.session
import zoo.training.distill.hinton
import zoo.training.engine
import zoo.training.losses
import zoo.training.registry
from zoo.catalog.pairs import Pair
from zoo.catalog.recipes import Distill, ModelSpec, Recipe
from zoo.records.record import Record
from zoo.runs.runner import run_pair
from zoo.runs.session import Session
from zoo.training.forward import TrainOptions
from zoo.training.models import MLP
from zoo.verdicts.baselines import BaselineStore

_RECIPE = Recipe(epochs=2, batch_size=64, optimizer="sgd", lr=0.05, schedule="cosine", train_subset=0.03, test_subset=0.2)
TEACHER = Pair("tiny-teacher", "mnist", ModelSpec.of("mlp1200", dropout=0.0),
               {"quick": _RECIPE.replace(epochs=3, train_subset=0.1)})
STUDENT = Pair("tiny-kd", "mnist", ModelSpec.of("mlp800"),
               {"quick": _RECIPE.replace(distill=Distill(alpha=0.9, temperature=4))},
               teacher={"quick": "tiny-teacher"})
SEEDS = [0, 1, 2, 3, 4]  # df 8 pooled over the two rows: power at the gate's p < 0.001


@pytest.fixture(scope="module")
def tiny_session(mnist_root, tmp_path_factory) -> Session:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zoo.catalog.pairs, "PAIRS", zoo.catalog.pairs.PAIRS + [TEACHER, STUDENT])
        yield Session(mnist_root, tmp_path_factory.mktemp("cache"), TrainOptions(log=lambda line: None))


@pytest.fixture(scope="module")
def store(tiny_session, tmp_path_factory) -> BaselineStore:
    """Baselines recorded from the unmodified code, like `--update-baselines` does."""
    store = BaselineStore(tmp_path_factory.mktemp("baselines"))
    for pair in (TEACHER, STUDENT):
        store.update(without_timings(run_pair(pair, "quick", SEEDS, tiny_session)), min_seeds=3)
    return store


TIMINGS = ("train_images_per_s",)


def without_timings(record: Record) -> Record:
    """The record without wall-clock metrics: unit tests never depend on speed (test_gates.py gates timings)."""
    return record.replace(metrics={k: v for k, v in record.metrics.items() if k not in TIMINGS})


def rerun(store, session) -> set[str]:
    verdict = store.judge(without_timings(run_pair(STUDENT, "quick", SEEDS, session)))
    return {f.metric for f in verdict.regressions}


def test_unchanged_rerun_passes(store, tiny_session):
    verdict = store.judge(without_timings(run_pair(STUDENT, "quick", SEEDS, tiny_session)))
    assert {f.metric for f in verdict.regressions} == set()
    assert {f.metric for f in verdict.findings if f.status == "ok"} >= {"params", "gmacs", "test_accuracy", "teacher_kl"}


def test_broken_kd_loss_fails(store, tiny_session, monkeypatch):
    def without_t_squared(student, teacher, temperature, *args):
        # a classic bug: Hinton's T^2 factor is forgotten, so the soft term's gradients shrink as 1/T^2
        return F.kl_div(F.log_softmax(student / temperature, 1), F.log_softmax(teacher / temperature, 1),
                        reduction="batchmean", log_target=True)

    monkeypatch.setattr(zoo.training.distill.hinton, "soft_term", without_t_squared)
    assert {"test_accuracy", "teacher_kl"} & rerun(store, tiny_session)


def test_dropped_kd_term_fails(store, tiny_session, monkeypatch):
    monkeypatch.setattr(zoo.training.distill.hinton, "soft_term", lambda student, *args: 0.0 * student.sum())
    assert "teacher_kl" in rerun(store, tiny_session)


def test_changed_architecture_fails(store, tiny_session, monkeypatch):
    monkeypatch.setitem(zoo.training.registry._MODELS, "mlp800", lambda num_classes=10, dropout=0.0: MLP((800, 700), dropout))
    assert {"params", "gmacs"} <= rerun(store, tiny_session)


def _cache_entry(session, seed=0):
    (folder,) = [p for p in (session.cache_dir / "models").iterdir() if p.is_dir() and p.name.startswith(
        f"tiny-teacher-quick-seed{seed}-")]
    return folder


def test_cached_teacher_is_reevaluated_and_says_what_it_carried(store, tiny_session):
    record = run_pair(TEACHER, "quick", SEEDS, tiny_session)  # every seed comes from the cache now
    assert all(r["from_cache"] for r in record.runs)
    assert record.runs[0]["test_accuracy"] == record.runs[0]["cached_test_accuracy"]
    assert "train_images_per_s" not in record.metrics and "train_images_per_s" in record.carried_from_cache
    verdict = store.judge(record)
    assert verdict.status == "pass" and "train_images_per_s" not in record.metrics


def test_zeroed_cached_teacher_weights_are_caught(store, tiny_session):
    folder = _cache_entry(tiny_session)
    weights = folder / "weights.pt"
    original = weights.read_bytes()
    zoo.records.io.save_tensors(weights, {k: torch.zeros_like(v) for k, v in zoo.records.io.load_tensors(weights).items()})
    logged = []
    tiny_session.opts.log = logged.append
    try:
        record = run_pair(TEACHER, "quick", [0], tiny_session)
        assert any("does not match the SHA-256" in line for line in logged)  # retrained, not trusted
        assert not record.runs[0]["from_cache"]
        # with a forged checksum the weights load, and the re-evaluation exposes them
        report_file = folder / "report.json"
        zoo.records.io.save_tensors(weights, {k: torch.zeros_like(v) for k, v in zoo.records.io.load_tensors(weights).items()})
        report = zoo.records.io.read_json(report_file)
        zoo.records.io.write_json(report_file, report | {"weights_sha256": zoo.records.io.sha256_file(weights)})
        record = run_pair(TEACHER, "quick", [0], tiny_session)
        assert record.runs[0]["from_cache"] and record.metrics["test_accuracy"][0] < 20
    finally:
        weights.write_bytes(original)
        zoo.records.io.write_json(folder / "report.json", zoo.records.io.read_json(folder / "report.json") | {
            "weights_sha256": zoo.records.io.sha256_file(weights)})
        tiny_session.opts.log = lambda line: None


def test_damaged_cache_report_is_retrained_not_a_crash(store, tiny_session):
    folder = _cache_entry(tiny_session, seed=1)
    saved = (folder / "report.json").read_text()
    (folder / "report.json").write_text("[]")
    try:
        record = run_pair(TEACHER, "quick", [1], tiny_session)
        assert not record.runs[0]["from_cache"]
    finally:
        (folder / "report.json").write_text(saved)


def test_cache_key_covers_torch_version_and_run_switches(tiny_session, monkeypatch):
    key = zoo.runs.session.run_key(TEACHER, "quick", 0, tiny_session)
    monkeypatch.setattr(tiny_session.opts, "channels_last", True)
    assert zoo.runs.session.run_key(TEACHER, "quick", 0, tiny_session) != key
    monkeypatch.setattr(tiny_session.opts, "channels_last", False)
    monkeypatch.setattr(zoo.runs.session.torch, "__version__", "9.9.9")
    assert zoo.runs.session.run_key(TEACHER, "quick", 0, tiny_session) != key
