"""A record whose seeds disagree far beyond its siblings' spread (a diverged or stuck seed) is refused as a baseline
when it is stored, not found INVALID by the next gate."""
import shutil
from pathlib import Path

import pytest

from zoo.records.store import RecordStore
from zoo.verdicts.baselines import BaselineRefusedError, BaselineStore

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
MNIST = BASELINES / "quick" / "mnist" / "cpu"


def test_a_stuck_seed_is_refused_as_a_baseline_naming_the_metric(tmp_path):
    folder = tmp_path / "quick" / "mnist" / "cpu"
    folder.mkdir(parents=True)
    for name in ("mnist-mlp800-lr0.01", "mnist-mlp800-lr0.1", "mnist-mlp1200-teacher"):
        shutil.copy(MNIST / f"{name}.json", folder)
    (record,) = [r for r in RecordStore(tmp_path).listing.complete().of_kind("pair") if r.id == "mnist-mlp800-lr0.01"]
    store = BaselineStore(tmp_path)
    assert store.outlying_spreads(record) == []  # as recorded
    accuracy = list(record.metrics["test_accuracy"])
    stuck = record.replace(metrics=record.metrics | {"test_accuracy": [accuracy[0], 11.35, *accuracy[2:]]})
    with pytest.raises(BaselineRefusedError, match=r"mnist-mlp800-lr0.01: its test_accuracy seeds .* disagree far "
                                                   r"beyond the other rows' spread"):
        store.update(stuck, min_seeds=3)
    assert store.load(record).metrics["test_accuracy"] == accuracy  # the stored baseline is left as it was
