"""The fault-injection plugin: sizes are validated, and each fault changes what it says it changes."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import torch.optim.optimizer as optimizer_hooks

import zoo.harness.faults
import zoo.runs.runner
import zoo.runs.session
import zoo.training.engine
import zoo.training.models
from zoo.catalog.recipes import Distill, ModelSpec
from zoo.training.data import TensorData
from zoo.training.distill.base import Distiller
from zoo.training.distill.registry import create_distiller
from zoo.training.losses import soft_term
from zoo.training.registry import build_model


def configure(monkeypatch, *faults: str) -> None:
    """Run the plugin's configure hook; monkeypatch restores whatever the faults replace."""
    for module, name in ((Distiller, "transfer_weight"), (zoo.training.engine, "forward"), (zoo.runs.session, "train"),
                         (zoo.runs.session, "cached_train_seed"), (zoo.runs.runner, "cached_train_seed"),
                         (zoo.training.models.MLP, "__init__"),
                         (zoo.training.models.CNN5, "__init__"), (F, "linear"), (F, "conv2d"), (torch.Tensor, "backward")):
        monkeypatch.setattr(module, name, getattr(module, name))
    zoo.harness.faults.pytest_configure(SimpleNamespace(getoption=lambda name: list(faults)))


@pytest.mark.parametrize("text", ["label-noise=1.5", "width", "kd-weight=-1", "nonsense=2", "engine-slowdown=0.5"])
def test_bad_fault_is_a_usage_error_listing_the_choices(monkeypatch, text):
    with pytest.raises(pytest.UsageError, match="label-noise=\\[0, 1\\].*width"):
        configure(monkeypatch, text)


def test_width_changes_the_parameter_count(monkeypatch):
    before = sum(p.numel() for p in build_model(ModelSpec.of("mlp800")).parameters())
    configure(monkeypatch, "width=1.25")
    after = sum(p.numel() for p in build_model(ModelSpec.of("mlp800")).parameters())
    assert after > before


def test_kd_weight_scales_every_transfer_term_and_leaves_the_label_term(monkeypatch):
    g = torch.Generator().manual_seed(0)
    student, teacher, labels = torch.randn(8, 10, generator=g), torch.randn(8, 10, generator=g), torch.arange(8)
    features = {"f": torch.randn(8, 4, 4, 4, generator=g)}
    teacher_features = {"f": torch.randn(8, 4, 4, 4, generator=g)}
    hinton = create_distiller(Distill(alpha=0.9, temperature=4.0))
    attention = create_distiller(Distill(alpha=0.0, temperature=1.0, method="attention",
                                         options=(("beta", 1000.0), ("layers", (("f", "f"),)))))
    before = {name: d(student, teacher, labels, features, teacher_features) for name, d in
              (("hinton", hinton), ("attention", attention))}
    labels_only = {"hinton": 0.1 * F.cross_entropy(student, labels), "attention": F.cross_entropy(student, labels)}
    configure(monkeypatch, "kd-weight=0")
    for name, d in (("hinton", hinton), ("attention", attention)):
        assert torch.isclose(d(student, teacher, labels, features, teacher_features), labels_only[name])
    configure(monkeypatch, "kd-weight=0.25")
    for name, d in (("hinton", hinton), ("attention", attention)):
        expected = labels_only[name] + 0.25 * (before[name] - labels_only[name])
        assert torch.isclose(d(student, teacher, labels, features, teacher_features), expected)
    unlabeled = create_distiller(Distill(alpha=1.0, temperature=10.0, unlabeled=True))
    assert torch.isclose(unlabeled(student, teacher, None, {}, {}), 0.25 * soft_term(student, teacher, 10.0))


def test_torch_slowdown_computes_for_each_op_backward_and_step_in_proportion_to_its_time(monkeypatch):
    busy, hooks = [], []
    monkeypatch.setattr(zoo.harness.faults, "_busy", lambda seconds, work: busy.append(seconds))
    monkeypatch.setattr(optimizer_hooks, "register_optimizer_step_pre_hook", hooks.append)
    monkeypatch.setattr(optimizer_hooks, "register_optimizer_step_post_hook", hooks.append)
    configure(monkeypatch, "torch-slowdown=1.5")
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(3, 4)).sum().backward()  # the forward linear and the backward pass
    before_step, after_step = hooks
    before_step(optimizer, (), {})
    optimizer.step()
    after_step(optimizer, (), {})
    assert len(busy) == 3 and all(seconds >= 0 for seconds in busy)


def test_label_noise_flips_that_fraction_of_student_labels_but_never_a_teachers(monkeypatch):
    seen = []
    monkeypatch.setattr(zoo.runs.session, "train",
                        lambda model, recipe, data, seed, opts, teacher=None: seen.append(data.train_y))
    monkeypatch.setattr(zoo.runs.session, "cached_train_seed", lambda *args: zoo.runs.session.train(None, None, data, 0, None))
    configure(monkeypatch, "label-noise=0.3")
    labels = torch.arange(10).repeat(1000)
    data = TensorData("toy", torch.zeros(10_000, 1, 2, 2, dtype=torch.uint8), labels, torch.zeros(1, 1, 2, 2),
                      torch.zeros(1, dtype=torch.long), (0.0,), (1.0,), "toy")
    zoo.runs.session.cached_train_seed()  # a teacher trains: untouched
    zoo.runs.session.train(None, None, data, 0, None)  # a student trains: noisy
    assert torch.equal(seen[0], labels)
    assert abs(float((seen[1] != labels).float().mean()) - 0.3) < 0.02
