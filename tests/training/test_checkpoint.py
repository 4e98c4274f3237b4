"""Checkpoint and resume: a run interrupted after any epoch and resumed ends bit-identical to an uninterrupted one."""
from dataclasses import replace

import pytest
import torch

from zoo.catalog.recipes import Distill, Recipe
from zoo.training.checkpoint import Checkpointer
from zoo.training.engine import seed_everything, train
from zoo.training.forward import TrainOptions
from zoo.training.registry import create_model

RECIPE = Recipe(epochs=3, batch_size=32, optimizer="sgd", lr=0.05, augment=True, schedule="step", milestones=(2,))
FITNETS = replace(Distill(alpha=0.9, temperature=4), method="fitnets",
                  options=(("guided", "features.7"), ("hint", "features.7"), ("hint_epochs", 2)))


class Interrupted(Exception):
    pass


def _train(data, recipe, checkpoint=None, stop_after: int | None = None):
    """Train a dropout CNN (from a seeded teacher when the recipe distills); stop after `stop_after` epochs."""
    epochs = []

    def between_epochs():
        epochs.append(1)
        if stop_after is not None and len(epochs) == stop_after:
            raise Interrupted

    seed_everything(0, torch.device("cpu"))
    teacher = create_model("cnn5", dropout=0.0) if recipe.distill else None
    seed_everything(1, torch.device("cpu"))
    student = create_model("cnn5", dropout=0.5)
    opts = TrainOptions(log=lambda line: None, between_epochs=between_epochs, checkpoint=checkpoint)
    return train(student, recipe, data, 1, opts, teacher=teacher), student


@pytest.mark.parametrize("recipe", [RECIPE, RECIPE.replace(distill=FITNETS)], ids=["dropout-augment", "fitnets-hint-stage"])
def test_resumed_run_is_bit_identical(recipe, synthetic_cifar, tmp_path):
    data = synthetic_cifar()
    whole, whole_model = _train(data, recipe)
    total = len(whole.epochs)
    for stop in range(1, total):  # interrupted after every epoch in turn, hint-stage ones included
        checkpoint = Checkpointer(tmp_path / f"stop{stop}.pt", key="run-a")
        with pytest.raises(Interrupted):
            _train(data, recipe, checkpoint, stop_after=stop)
        assert checkpoint.path.exists()
        resumed, resumed_model = _train(data, recipe, checkpoint)
        assert [e["loss"] for e in resumed.epochs] == [e["loss"] for e in whole.epochs]
        assert torch.equal(resumed.test_logits, whole.test_logits)
        for (name, a), (_, b) in zip(whole_model.state_dict().items(), resumed_model.state_dict().items()):
            assert torch.equal(a, b), name


def test_foreign_or_damaged_checkpoint_is_ignored(synthetic_cifar, tmp_path):
    data = synthetic_cifar()
    recipe = RECIPE.replace(epochs=2)
    whole, _ = _train(data, recipe)
    path = tmp_path / "run.pt"
    with pytest.raises(Interrupted):
        _train(data, recipe, Checkpointer(path, key="other-run"), stop_after=1)
    lines = []
    assert Checkpointer(path, key="this-run").load(lines.append) is None
    assert "belongs to another run" in lines[0]
    path.write_bytes(b"truncated")
    assert Checkpointer(path, key="this-run").load(lines.append) is None
    assert "ignored" in lines[1]
    resumed, _ = _train(data, recipe, Checkpointer(path, key="this-run"))
    assert torch.equal(resumed.test_logits, whole.test_logits)
