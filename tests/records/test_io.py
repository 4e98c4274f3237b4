"""Bad input gets a clear error, and no failure loses or half-writes a file."""
import io
import json
import os
import tarfile

import pytest
import torch

import zoo.records.io
from zoo.catalog.pairs import UnknownPairError, get_pair
from zoo.records.io import CorruptFileError, load_tensors, read_json, save_tensors, write_json
from zoo.records.results import load_record
from zoo.training.data import DataNotFoundError, load_dataset


def test_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "baseline.json"
    write_json(path, {"v": 1})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. Ctrl-C while the file is being replaced

    monkeypatch.setattr(zoo.records.io.os, "replace", crash)
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


@pytest.mark.parametrize(("variant", "expected"), [
    ("mnist", "train-images-idx3-ubyte"),
    ("cifar10", "cifar10-png.tar.gz"),
    ("cifar10-jpeg", "cifar10-jpeg.tar.gz"),
])
def test_missing_data_names_files_and_option(tmp_path, variant, expected):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset(variant, tmp_path / "nowhere", tmp_path / "cache")
    assert expected in str(err.value) and "--data-root" in str(err.value) and "KDBENCH_DATA" in str(err.value)


def test_unknown_dataset_lists_registered_ones(tmp_path):
    with pytest.raises(ValueError, match="registered: cifar10, cifar10-jpeg, mnist"):
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


def test_orphan_temporary_files_of_a_killed_writer_are_cleaned(tmp_path):
    path = tmp_path / "baseline.json"
    dead = tmp_path / ".baseline.json.999999999.abcd.tmp"  # no such pid: its writer was killed
    dead.write_text("{half")
    alive = tmp_path / f".baseline.json.{os.getpid()}.efgh.tmp"  # a writer still at work
    alive.write_text("{")
    write_json(path, {"v": 1})
    assert not dead.exists() and alive.exists()


def _idx(shape, payload: bytes) -> bytes:
    return bytes([0, 0, 8, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape) + payload


@pytest.fixture
def mnist_copy(tmp_path, mnist_root):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mnist_root / "MNIST" / "raw").iterdir():
        (raw / f.name).write_bytes(f.read_bytes())
    return tmp_path


def test_truncated_mnist_file_is_reported_as_damaged_not_missing(mnist_copy):
    path = mnist_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CorruptFileError) as err:
        load_dataset("mnist", mnist_copy, mnist_copy / "cache")
    assert "t10k-labels-idx1-ubyte is damaged" in str(err.value) and "truncated" in str(err.value)
    assert "not found" not in str(err.value)


def test_data_files_are_checked_against_sha256sums(mnist_copy, mnist_root):
    (mnist_copy / "SHA256SUMS").write_text((mnist_root / "SHA256SUMS").read_text())
    assert load_dataset("mnist", mnist_copy, mnist_copy / "cache").train_x.shape == (60000, 1, 28, 28)
    path = mnist_copy / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    data = bytearray(path.read_bytes())
    data[-1] = (data[-1] + 1) % 10  # one label changed: the idx file still parses
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="train-labels-idx1-ubyte does not match .*SHA256SUMS"):
        load_dataset("mnist", mnist_copy, mnist_copy / "cache")


def test_idx_reader_checks_header_and_size(tmp_path):
    from zoo.training.data import _read_idx
    good = tmp_path / "good"
    good.write_bytes(_idx((2, 2), bytes([1, 2, 3, 4])))
    assert _read_idx(good).tolist() == [[1, 2], [3, 4]]
    bad = tmp_path / "bad"
    bad.write_bytes(_idx((3, 2), bytes(5)))
    with pytest.raises(CorruptFileError, match="shape"):
        _read_idx(bad)
    bad.write_bytes(b"\x00\x00\x0d\x01" + bytes(8))  # float32 idx: not images
    with pytest.raises(CorruptFileError, match="header"):
        _read_idx(bad)
