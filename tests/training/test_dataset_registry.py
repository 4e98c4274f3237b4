"""Adding a dataset is one registration: a synthetic dataset in MNIST's idx layout, registered by a
plugin together with one pair, runs end to end through `pytest bench/` (record a baseline, then gate)."""
import textwrap
from pathlib import Path

import pytest

from zoo.training.data import dataset_spec, load_dataset, register_dataset

REPO = Path(__file__).resolve().parents[2]

PLUGIN = textwrap.dedent('''
    """Registers the synthetic dataset `synth` and one pair that trains on it."""
    from zoo.training.data import idx_folder, register_dataset
    from zoo.catalog.pairs import PAIRS, Pair
    from zoo.catalog.recipes import ModelSpec, Recipe

    @register_dataset("synth", mean=(0.5,), std=(0.25,), files="Synth/raw/ (four idx files)")
    def synth(root, download, cache_dir):
        return idx_folder("synth", root, "Synth")

    PAIRS.append(Pair("synth-mlp800", "synth", ModelSpec.of("mlp800"),
                      {"quick": Recipe(epochs=3, batch_size=32, optimizer="sgd", lr=0.05)}))
''')


def test_registration_rejects_duplicates_and_unknown_augmentation():
    with pytest.raises(ValueError, match="registered twice"):
        register_dataset("mnist", mean=(0.5,), std=(0.5,), files="x")(lambda root, download, cache: None)
    with pytest.raises(ValueError, match="unknown augmentation"):
        register_dataset("other", mean=(0.5,), std=(0.5,), files="x", augmentation="mixup")
    assert dataset_spec("cifar10").augmentation == "crop_flip" and dataset_spec("mnist").augmentation is None


def test_a_registered_dataset_runs_a_pair_end_to_end(tmp_path, bench_with_plugin):
    record = bench_with_plugin(tmp_path, PLUGIN, "--update-baselines")
    assert record.returncode == 0, record.stdout[-3000:]
    assert (tmp_path / "baselines" / "quick" / "synth" / "cpu" / "synth-mlp800.json").exists()
    gate = bench_with_plugin(tmp_path, PLUGIN)
    assert gate.returncode == 0 and "PASS       1  synth-mlp800" in gate.stdout, gate.stdout[-3000:]
    assert (tmp_path / "results" / "reports" / "quick-synth-cpu.md").exists()


def test_synthetic_idx_files_load_like_mnist(tmp_path, synthetic_idx_root):
    import zoo.training.data

    data_root = synthetic_idx_root(tmp_path)
    spec = zoo.training.data.DatasetSpec(
        "synth-direct", lambda root, download, cache: zoo.training.data.idx_folder("synth", root, "Synth"),
        (0.5,), (0.25,), "Synth/raw/")
    zoo.training.data._DATASETS["synth-direct"] = spec
    try:
        data = load_dataset("synth-direct", data_root, tmp_path / "cache")
    finally:
        del zoo.training.data._DATASETS["synth-direct"]
    assert data.train_x.shape == (300, 1, 28, 28) and data.num_classes == 10 and data.mean == (0.5,)
