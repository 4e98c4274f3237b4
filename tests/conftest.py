"""Fixtures for the unit tests: data location and a session for tiny real training runs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


DATA_ROOT = Path(os.environ.get("KDBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    if not (DATA_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        message = f"MNIST not found under {DATA_ROOT}; set KDBENCH_DATA"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}: in CI the gate demonstrations must run, not skip", pytrace=False)
        pytest.skip(message)
    return DATA_ROOT
