"""The fault-injection plugin: sizes are validated, and each fault changes what it says it changes."""
from types import SimpleNamespace

import pytest
import torch

import zoo.distill.hinton
import zoo.engine
import zoo.faults
import zoo.models
import zoo.runner
from zoo.data import TensorData
from zoo.recipes import ModelSpec


def configure(monkeypatch, *faults: str) -> None:
    """Run the plugin's configure hook; monkeypatch restores whatever the faults replace."""
    for module, name in ((zoo.distill.hinton, "kd_loss"), (zoo.engine, "_forward"), (zoo.runner, "train"),
                         (zoo.runner, "cached_train_seed"), (zoo.models.MLP, "__init__"), (zoo.models.CNN5, "__init__")):
        monkeypatch.setattr(module, name, getattr(module, name))
    zoo.faults.pytest_configure(SimpleNamespace(getoption=lambda name: list(faults)))


@pytest.mark.parametrize("text", ["label-noise=1.5", "width", "kd-weight=-1", "nonsense=2", "engine-slowdown=0.5"])
def test_bad_fault_is_a_usage_error_listing_the_choices(monkeypatch, text):
    with pytest.raises(pytest.UsageError, match="label-noise=\\[0, 1\\].*width"):
        configure(monkeypatch, text)


def test_width_changes_the_parameter_count(monkeypatch):
    before = sum(p.numel() for p in ModelSpec.of("mlp800").build().parameters())
    configure(monkeypatch, "width=1.25")
    after = sum(p.numel() for p in ModelSpec.of("mlp800").build().parameters())
    assert after > before


def test_kd_weight_scales_the_distillation_loss(monkeypatch):
    student, teacher, labels = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    full = zoo.distill.hinton.kd_loss(student, teacher, labels, 0.9, 4.0)
    configure(monkeypatch, "kd-weight=0.25")
    assert torch.isclose(zoo.distill.hinton.kd_loss(student, teacher, labels, 0.9, 4.0), 0.25 * full)


def test_label_noise_flips_that_fraction_of_student_labels_but_never_a_teachers(monkeypatch):
    seen = []
    monkeypatch.setattr(zoo.runner, "train", lambda model, recipe, data, seed, opts, teacher=None: seen.append(data.train_y))
    monkeypatch.setattr(zoo.runner, "cached_train_seed", lambda *args: zoo.runner.train(None, None, data, 0, None))
    configure(monkeypatch, "label-noise=0.3")
    labels = torch.arange(10).repeat(1000)
    data = TensorData("toy", torch.zeros(10_000, 1, 2, 2, dtype=torch.uint8), labels, torch.zeros(1, 1, 2, 2),
                      torch.zeros(1, dtype=torch.long), (0.0,), (1.0,), "toy")
    zoo.runner.cached_train_seed()  # a teacher trains: untouched
    zoo.runner.train(None, None, data, 0, None)  # a student trains: noisy
    assert torch.equal(seen[0], labels)
    assert abs(float((seen[1] != labels).float().mean()) - 0.3) < 0.02
