"""Faults injected on purpose, to show what the gate catches: a pytest plugin, off unless loaded.

    pytest bench/ -p zoo.harness.faults --fault engine-slowdown=1.5
    pytest bench/ -p zoo.harness.faults --fault label-noise=0.1 --fault width=1.25

  engine-slowdown=F  kdbench's own training loop gets F x slower: every training step waits (F - 1) x
                     its forward-and-backward time (about 3 x the forward), as per-sample work or an
                     extra host sync in the loop would. References timed in the same run are untouched.
  torch-slowdown=F   torch itself gets F x slower: every linear and conv2d call, every backward pass and every
                     optimiser step takes F x its own time, in the engine and the references alike. The extra
                     (F - 1) x is spent computing on torch's own threads, not sleeping, so that it slows like
                     a real regression also where the CPU is rationed (a CPU quota lets a sleeping process
                     catch up).
  label-noise=P      a fraction P of every student's training labels is replaced by another class (fixed
                     per seed). Teachers are untouched, so a cached teacher is never replaced by a noisy one.
  kd-weight=W        every distiller's transfer term (soft targets, attention maps, hints) is multiplied
                     by W (0 <= W <= 1) and nothing else: its label term stays as it was, so W = 0 is
                     distillation switched off, W = 0.3 a weakened one (zoo.training.distill.base.Distiller.transfer_weight).
  width=F            the hidden widths of the study's MLPs and CNN are multiplied by F (an architecture
                     change, caught by the exact params/GMACs gate).
"""
from __future__ import annotations

import dataclasses
import time

import torch
import torch.nn.functional as F
import torch.optim.optimizer as optimizer_hooks


def _engine_slowdown(factor: float) -> None:
    import zoo.training.engine

    forward = zoo.training.engine.forward

    def slow_forward(model, x, opts):
        start = time.perf_counter()
        out = forward(model, x, opts)
        if model.training:
            time.sleep((factor - 1) * 3 * (time.perf_counter() - start))
        return out

    zoo.training.engine.forward = slow_forward


def _busy(seconds: float, work: torch.Tensor) -> None:
    """Compute on torch's threads (a matrix product at a time) for `seconds` of wall time."""
    deadline = time.perf_counter() + seconds
    with torch.no_grad():
        while time.perf_counter() < deadline:
            torch.mm(work, work)


def _torch_slowdown(factor: float) -> None:
    work = torch.randn(256, 256)

    def slowed(op):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = op(*args, **kwargs)
            _busy((factor - 1) * (time.perf_counter() - start), work)
            return out
        return wrapper

    step_started = []

    def before_step(optimizer, args, kwargs):
        step_started.append(time.perf_counter())

    def after_step(optimizer, args, kwargs):
        _busy((factor - 1) * (time.perf_counter() - step_started.pop()), work)

    F.linear, F.conv2d, torch.Tensor.backward = slowed(F.linear), slowed(F.conv2d), slowed(torch.Tensor.backward)
    optimizer_hooks.register_optimizer_step_pre_hook(before_step)
    optimizer_hooks.register_optimizer_step_post_hook(after_step)


def _label_noise(fraction: float) -> None:
    import zoo.runs.runner
    import zoo.runs.session

    train, cached_train_seed = zoo.runs.session.train, zoo.runs.session.cached_train_seed
    training_teacher = []

    def teacher_untouched(*args, **kwargs):
        training_teacher.append(True)
        try:
            return cached_train_seed(*args, **kwargs)
        finally:
            training_teacher.pop()

    def noisy_train(model, recipe, data, seed, opts, teacher=None):
        if training_teacher:
            return train(model, recipe, data, seed, opts, teacher=teacher)
        generator = torch.Generator().manual_seed(10_000 + seed)
        flip = torch.rand(len(data.train_y), generator=generator) < fraction
        shift = torch.randint(1, data.num_classes, (len(data.train_y),), generator=generator)
        labels = torch.where(flip, (data.train_y + shift) % data.num_classes, data.train_y)
        return train(model, recipe, dataclasses.replace(data, train_y=labels), seed, opts, teacher=teacher)

    zoo.runs.session.train = noisy_train  # a student trains on noisy labels; a teacher, through the cache, does not
    zoo.runs.session.cached_train_seed = zoo.runs.runner.cached_train_seed = teacher_untouched


def _kd_weight(weight: float) -> None:
    from zoo.training.distill.base import Distiller

    Distiller.transfer_weight = weight


def _width(factor: float) -> None:
    import zoo.training.models

    mlp_init, cnn_init = zoo.training.models.MLP.__init__, zoo.training.models.CNN5.__init__

    def wide_mlp(self, hidden, *args, **kwargs):
        mlp_init(self, tuple(round(h * factor) for h in hidden), *args, **kwargs)

    def wide_cnn(self, dropout=0.5, num_classes=10, widths=(32, 64, 128)):
        cnn_init(self, dropout, num_classes, tuple(round(w * factor) for w in widths))

    zoo.training.models.MLP.__init__, zoo.training.models.CNN5.__init__ = wide_mlp, wide_cnn


FAULTS = {"engine-slowdown": (_engine_slowdown, 1, None), "torch-slowdown": (_torch_slowdown, 1, None),
          "label-noise": (_label_noise, 0, 1), "kd-weight": (_kd_weight, 0, 1), "width": (_width, 0, None)}
"""name -> (injector, smallest size, largest size or None)."""


def pytest_addoption(parser):
    parser.getgroup("kdbench").addoption(
        "--fault", action="append", default=[], metavar="NAME=SIZE",
        help=f"inject a fault to demonstrate the gate: {', '.join(FAULTS)} (zoo/harness/faults.py)")


def pytest_configure(config):
    import pytest

    for text in config.getoption("--fault"):
        name, _, size = text.partition("=")
        inject, low, high = FAULTS.get(name, (None, 0, None))
        if (inject is None or not size.replace(".", "", 1).isdigit() or float(size) < low
                or high is not None and float(size) > high):
            raise pytest.UsageError(
                f"--fault {text!r}: choose NAME=SIZE from " + ", ".join(
                    f"{n}=[{lo:g}, {'inf' if hi is None else f'{hi:g}'}]" for n, (_, lo, hi) in FAULTS.items()))
        inject(float(size))


def pytest_report_header(config):
    faults = config.getoption("--fault")
    return [f"kdbench: FAULTS INJECTED: {', '.join(faults)}"] if faults else []
