"""The gate works: an unchanged rerun passes; a broken KD loss, a changed architecture, a slowed
training loop and a dropped KD term each fail it. Every case trains real (tiny) MNIST pairs."""
from __future__ import annotations

import time

import pytest
import torch.nn.functional as F

import zoo.engine
import zoo.losses
import zoo.pairs
import zoo.registry
from zoo.baselines import BaselineStore
from zoo.models import MLP
from zoo.pairs import Pair
from zoo.recipes import Distill, ModelSpec, Recipe
from zoo.engine import TrainOptions
from zoo.runner import Session, run_pair

_RECIPE = Recipe(epochs=2, batch_size=64, optimizer="sgd", lr=0.05, train_subset=0.03, test_subset=0.2)
TEACHER = Pair("tiny-teacher", "mnist", ModelSpec.of("mlp1200", dropout=0.0),
               {"quick": _RECIPE.replace(epochs=3, train_subset=0.1)})
STUDENT = Pair("tiny-kd", "mnist", ModelSpec.of("mlp800"),
               {"quick": _RECIPE.replace(distill=Distill(alpha=0.9, temperature=4))},
               teacher={"quick": "tiny-teacher"})
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def tiny_session(mnist_root, tmp_path_factory) -> Session:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zoo.pairs, "PAIRS", zoo.pairs.PAIRS + [TEACHER, STUDENT])
        yield Session(mnist_root, tmp_path_factory.mktemp("cache"), TrainOptions(log=lambda line: None))


@pytest.fixture(scope="module")
def store(tiny_session, tmp_path_factory) -> BaselineStore:
    """Baselines recorded from the unmodified code, like `--update-baselines` does."""
    store = BaselineStore(tmp_path_factory.mktemp("baselines"))
    for pair in (TEACHER, STUDENT):
        store.judge(run_pair(pair, "quick", SEEDS, tiny_session), update=True)
    return store


def rerun(store, session) -> set[str]:
    verdict = store.judge(run_pair(STUDENT, "quick", SEEDS, session))
    return {f.metric for f in verdict.regressions}


def test_unchanged_rerun_passes(store, tiny_session):
    assert rerun(store, tiny_session) == set()


def test_broken_kd_loss_fails(store, tiny_session, monkeypatch):
    def without_t_squared(student, teacher, labels, alpha, temperature, *args):
        # a classic bug: Hinton's T^2 factor is forgotten, so the soft term's gradients shrink as 1/T^2
        soft = F.kl_div(F.log_softmax(student / temperature, 1), F.log_softmax(teacher / temperature, 1),
                        reduction="batchmean", log_target=True)
        return alpha * soft + (1 - alpha) * F.cross_entropy(student, labels)

    monkeypatch.setattr(zoo.engine, "kd_loss", without_t_squared)
    assert {"test_accuracy", "teacher_kl"} & rerun(store, tiny_session)


def test_dropped_kd_term_fails(store, tiny_session, monkeypatch):
    def hard_term_only(student, teacher, labels, alpha, temperature, *args):
        return (1 - alpha) * F.cross_entropy(student, labels)

    monkeypatch.setattr(zoo.engine, "kd_loss", hard_term_only)
    assert "teacher_kl" in rerun(store, tiny_session)


def test_changed_architecture_fails(store, tiny_session, monkeypatch):
    monkeypatch.setitem(zoo.registry._MODELS, "mlp800", lambda num_classes=10, dropout=0.0: MLP((800, 700), dropout))
    assert {"params", "gmacs"} <= rerun(store, tiny_session)


def test_slowed_training_loop_fails(store, tiny_session, monkeypatch):
    forward = zoo.engine._forward

    def slow_forward(model, x, opts):
        start = time.perf_counter()
        out = forward(model, x, opts)
        if model.training:  # a training step that does ~3x its forward's work more
            time.sleep(3 * (time.perf_counter() - start))
        return out

    monkeypatch.setattr(zoo.engine, "_forward", slow_forward)
    assert "train_throughput_norm" in rerun(store, tiny_session)
