"""Bad input gets a clear error, and no failure loses or half-writes a file."""
import io
import json
import tarfile

import pytest
import torch

import zoo.io
from zoo.data import DataNotFoundError, load_dataset
from zoo.io import CorruptFileError, load_tensors, read_json, save_tensors, write_json
from zoo.pairs import UnknownPairError, get_pair
from zoo.results import load_record


def test_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "baseline.json"
    write_json(path, {"v": 1})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. Ctrl-C while the file is being replaced

    monkeypatch.setattr(zoo.io.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"v": 2})
    assert read_json(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]  # no temporary file left behind


def test_corrupt_json_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"schema": 1, "metrics": ')
    with pytest.raises(CorruptFileError, match="bad.json"):
        read_json(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(CorruptFileError, match="not a kdbench record"):
        load_record(path)


def test_corrupt_tensor_file(tmp_path):
    path = tmp_path / "weights.pt"
    save_tensors(path, {"w": torch.ones(3)})
    assert torch.equal(load_tensors(path)["w"], torch.ones(3))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CorruptFileError, match="delete it"):
        load_tensors(path)


@pytest.mark.parametrize("variant, expected", [
    ("mnist", "train-images-idx3-ubyte"),
    ("cifar10", "cifar10-png.tar.gz"),
    ("cifar10-jpeg", "cifar10-jpeg.tar.gz"),
])
def test_missing_data_names_files_and_option(tmp_path, variant, expected):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset(variant, tmp_path / "nowhere", tmp_path / "cache")
    assert expected in str(err.value) and "--data-root" in str(err.value) and "KDBENCH_DATA" in str(err.value)


def test_unknown_dataset_lists_variants(tmp_path):
    with pytest.raises(ValueError, match="cifar10-jpeg"):
        load_dataset("cifar100", tmp_path, tmp_path)


def test_corrupt_archive_says_how_to_check_it(tmp_path):
    (tmp_path / "cifar10-jpeg.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 this is not a tarball")
    with pytest.raises(CorruptFileError, match="sha256sum -c"):
        load_dataset("cifar10-jpeg", tmp_path, tmp_path / "cache")


def test_archive_with_missing_images_is_rejected(tmp_path):
    with tarfile.open(tmp_path / "cifar10-jpeg.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("cifar10-jpeg/README")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(CorruptFileError, match="expected"):
        load_dataset("cifar10-jpeg", tmp_path, tmp_path / "cache")


def test_unknown_pair_lists_valid_ids():
    with pytest.raises(UnknownPairError) as err:
        get_pair("mnist-mlp900")
    assert "mnist-mlp800-kd-lr0.01" in str(err.value)
