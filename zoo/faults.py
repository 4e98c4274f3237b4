"""Faults injected on purpose, to show what the gate catches: a pytest plugin, off unless loaded.

    pytest bench/ -p zoo.faults --fault engine-slowdown=1.5
    pytest bench/ -p zoo.faults --fault torch-slowdown=1.5

  engine-slowdown=F  kdbench's own training loop gets F x slower: every training step waits (F - 1) x
                     its forward-and-backward time (about 3 x the forward), as per-sample work or an
                     extra host sync in the loop would. References timed in the same run are untouched.
  torch-slowdown=F   torch itself gets F x slower: every linear and conv2d call waits (F - 1) x its own
                     time (3 x with autograd on, for the backward), in the engine and the references alike.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F


def _engine_slowdown(factor: float) -> None:
    import zoo.engine

    forward = zoo.engine._forward

    def slow_forward(model, x, opts):
        start = time.perf_counter()
        out = forward(model, x, opts)
        if model.training:
            time.sleep((factor - 1) * 3 * (time.perf_counter() - start))
        return out

    zoo.engine._forward = slow_forward


def _torch_slowdown(factor: float) -> None:
    def slowed(op):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = op(*args, **kwargs)
            time.sleep((factor - 1) * (3 if torch.is_grad_enabled() else 1) * (time.perf_counter() - start))
            return out
        return wrapper

    F.linear, F.conv2d = slowed(F.linear), slowed(F.conv2d)


FAULTS = {"engine-slowdown": _engine_slowdown, "torch-slowdown": _torch_slowdown}


def pytest_addoption(parser):
    parser.getgroup("kdbench").addoption(
        "--fault", action="append", default=[], metavar="NAME=SIZE",
        help=f"inject a fault to demonstrate the gate: {', '.join(FAULTS)} (zoo/faults.py)")


def pytest_configure(config):
    import pytest

    for text in config.getoption("--fault"):
        name, _, size = text.partition("=")
        if name not in FAULTS or not size.replace(".", "", 1).isdigit() or float(size) < 1:
            raise pytest.UsageError(f"--fault {text!r}: choose NAME=SIZE with NAME in {', '.join(FAULTS)} "
                                    f"and SIZE >= 1")
        FAULTS[name](float(size))


def pytest_report_header(config):
    faults = config.getoption("--fault")
    return [f"kdbench: FAULTS INJECTED: {', '.join(faults)}"] if faults else []
