"""Data: both CIFAR-10 sources give identical tensors, batched augmentation, subsets, teacher alignment."""
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from zoo.training.data import CIFAR_CLASSES, CROP_VIEWS, crop_flip, load_dataset, stratified_subset


def fake_cifar(per_class: int, seed: int):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (10 * per_class, 32, 32, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(10), per_class)
    return images, labels


def write_python_batches(root, train, test):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    order = np.random.default_rng(1).permutation(len(train[1]))  # the official order is not ours
    chunks = np.array_split(order, 5)
    for i, chunk in enumerate(chunks, 1):
        data = train[0][chunk].transpose(0, 3, 1, 2).reshape(len(chunk), -1)
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": data, "labels": train[1][chunk].tolist()}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": test[0].transpose(0, 3, 1, 2).reshape(len(test[1]), -1), "labels": test[1].tolist()}, f)


def write_png_tarball(path, train, test):
    with tarfile.open(path, "w:gz") as tar:
        for split, (images, labels) in (("train", train), ("test", test)):
            for i in np.random.default_rng(2).permutation(len(labels)):
                buf = io.BytesIO()
                Image.fromarray(images[i]).save(buf, format="PNG")
                info = tarfile.TarInfo(f"cifar10-png/{split}/{CIFAR_CLASSES[labels[i]]}/img_{i:05d}.png")
                info.size = buf.tell()
                buf.seek(0)
                tar.addfile(info, buf)


def test_png_tarball_and_python_batches_are_one_dataset(tmp_path, monkeypatch):
    """The same images in different orders from the two sources give identical canonical tensors."""
    import zoo.training.data

    monkeypatch.setattr(zoo.training.data, "_EXPECTED_COUNTS", {"train": 50, "test": 20})
    train, test = fake_cifar(5, seed=0), fake_cifar(2, seed=3)
    write_python_batches(tmp_path / "download", train, test)
    (tmp_path / "png").mkdir()
    write_png_tarball(tmp_path / "png" / "cifar10-png.tar.gz", train, test)
    a = load_dataset("cifar10", tmp_path / "download", tmp_path / "cache")
    b = load_dataset("cifar10", tmp_path / "png", tmp_path / "cache")
    assert a.fingerprint == b.fingerprint
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert a.variant == b.variant == "cifar10"
    again = load_dataset("cifar10", tmp_path / "png", tmp_path / "cache")  # from the tensor cache
    assert again.fingerprint == b.fingerprint


def test_crop_flip_matches_the_per_image_definition():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (CROP_VIEWS, 3, 32, 32), dtype=torch.uint8)
    views = torch.arange(CROP_VIEWS)
    out = crop_flip(x, views)
    padded = F.pad(x, (4, 4, 4, 4))
    for v in range(CROP_VIEWS):
        flip, dx, dy = v % 2, (v // 2) % 9, v // 18
        expected = padded[v, :, dy:dy + 32, dx:dx + 32]
        assert torch.equal(out[v], expected.flip(2) if flip else expected), v
    assert torch.equal(crop_flip(x[:1], torch.tensor([80])), x[:1])  # dy = dx = 4, no flip: identity


def test_stratified_subset_is_seeded_and_balanced():
    labels = torch.arange(10).repeat_interleave(100)
    idx = stratified_subset(labels, 0.05, seed=0)
    assert len(idx) == 50 and torch.bincount(labels[idx]).tolist() == [5] * 10
    assert torch.equal(idx, stratified_subset(labels, 0.05, seed=0))
    assert not torch.equal(idx, stratified_subset(labels, 0.05, seed=1))
    assert torch.equal(stratified_subset(labels, 1.0, seed=0), torch.arange(1000))
    with pytest.raises(ValueError, match="fraction"):
        stratified_subset(labels, 0.0, seed=0)
