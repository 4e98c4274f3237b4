"""Fixtures for the unit tests: data location and a session for tiny real training runs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


def _data_root() -> Path:
    """KDBENCH_DATA; else the data folder beside the checkout; else the cache dir's downloads (a hosted CI runner)."""
    if os.environ.get("KDBENCH_DATA"):
        return Path(os.environ["KDBENCH_DATA"])
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    if beside.is_dir():
        return beside
    from zoo.records.results import default_cache_dir

    return default_cache_dir() / "downloads"


DATA_ROOT = _data_root()


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    if not (DATA_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        message = f"MNIST not found under {DATA_ROOT}; set KDBENCH_DATA"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}: in CI the gate demonstrations must run, not skip", pytrace=False)
        pytest.skip(message)
    return DATA_ROOT


@pytest.fixture
def synthetic_cifar():
    """A maker of random CIFAR-shaped TensorData (labels cycle through the ten classes)."""
    from zoo.training.data import CIFAR_MEAN, CIFAR_STD, TensorData

    def make_data(n_train: int = 120, n_test: int = 40) -> TensorData:
        g = torch.Generator().manual_seed(0)
        make = lambda n: (torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),  # noqa: E731
                          torch.arange(n) % 10)
        return TensorData("synthetic", *make(n_train), *make(n_test), CIFAR_MEAN, CIFAR_STD, "test", "crop_flip")

    return make_data


def _write_idx(path: Path, array) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype("uint8").tobytes())


@pytest.fixture(scope="session")
def synthetic_idx_root():
    """A maker of a data root holding `Synth/raw/`: ten classes of 28x28 images in MNIST's idx layout, each
    class a bright horizontal band at its own height, plus noise (300 training and 100 test images)."""
    import numpy as np

    def make_root(root: Path) -> Path:
        raw = root / "Synth" / "raw"
        raw.mkdir(parents=True)
        rng = np.random.default_rng(0)
        for split, n in (("train", 300), ("t10k", 100)):
            labels = np.arange(n) % 10
            images = rng.integers(0, 80, size=(n, 28, 28))
            for i, label in enumerate(labels):
                images[i, 2 + 2 * label:4 + 2 * label] = 255
            _write_idx(raw / f"{split}-images-idx3-ubyte", images)
            _write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
        return root

    return make_root


@pytest.fixture(scope="session")
def bench_with_plugin(synthetic_idx_root):
    """A runner of `pytest bench/test_pairs.py -k synth` in a subprocess, with `plugin` (module text) loaded,
    on a synthetic data root and with every output folder under `folder`; extra arguments are appended."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]

    def run(folder: Path, plugin: str, *extra: str) -> subprocess.CompletedProcess:
        data = folder / "data"
        if not data.exists():
            synthetic_idx_root(data)
        (folder / "kdbench_test_plugin.py").write_text(plugin)
        env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(folder)}
        return subprocess.run([sys.executable, "-m", "pytest", "bench/test_pairs.py", "-p", "kdbench_test_plugin",
                               "-p", "no:cacheprovider", "-k", "synth", "--data-root", str(data), "--cache-dir",
                               str(folder / "cache"), "--baselines-dir", str(folder / "baselines"), "--results-dir",
                               str(folder / "results"), *extra], cwd=repo, capture_output=True, text=True, env=env)

    return run
