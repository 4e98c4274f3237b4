"""Datasets as resident uint8 tensors, batched augmentation, and stratified subsets.

Datasets are registered entries (`register_dataset`): a name, a loader returning the four tensors,
the normalisation, the augmentation policy and the files the data root must hold. Every result names
one; none is ever substituted for another:
  mnist         the MNIST idx files (torchvision's layout). Any dataset in that layout registers with
                one call to `idx_folder` (README, "Adding a dataset").
  cifar10       the real CIFAR-10, from torchvision's download (`cifar-10-batches-py/`) or the lossless
                `cifar10-png.tar.gz`; both are put in one canonical order (by label, then by the SHA-256
                of each image's uint8 HWC bytes), so they give identical tensors and one fingerprint.
  cifar10-jpeg  the same images re-encoded as JPEG q75 (`cifar10-jpeg.tar.gz`): lossy, a different dataset.
"""
from __future__ import annotations

import hashlib
import io
import math
import pickle
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from zoo.errors import KdbenchInputError
from zoo.records.io import CorruptFileError, load_tensors, save_tensors, sha256_file

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PAD = 4  # random-crop padding of the CIFAR recipes
CROP_VIEWS = (2 * PAD + 1) ** 2 * 2  # distinct (dy, dx, flip) augmentations of one image


class DataNotFoundError(KdbenchInputError, FileNotFoundError):
    """The dataset is not where kdbench looked; the message says which files and which option to set."""


@dataclass
class TensorData:
    """A whole dataset as tensors: images uint8 (N, C, H, W), labels int64 (N,)."""

    variant: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    augmentation: str | None = None  # the policy recipes with `augment` apply: "crop_flip" or None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(self.train_y.max()) + 1

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 over the canonical tensors: equal fingerprints mean identical data."""
        digest = hashlib.sha256()
        for t in (self.train_x, self.train_y, self.test_x, self.test_y):
            digest.update(t.contiguous().numpy().tobytes())
        return digest.hexdigest()


class Splits(NamedTuple):
    """What a dataset loader returns: uint8 images (N, C, H, W) and int64 labels, and where they came from."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str


Loader = Callable[[Path, bool, Path], Splits]
"""load(root, download, cache_dir): read the dataset under `root` (fetching it there first if `download`)."""
AUGMENTATIONS = ("crop_flip",)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    load: Loader
    mean: tuple[float, ...]
    std: tuple[float, ...]
    files: str  # what the data root must hold, for error messages
    augmentation: str | None = None  # applied when a recipe says augment: "crop_flip" (pad 4) or None


_DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(name: str, *, mean: tuple[float, ...], std: tuple[float, ...], files: str,
                     augmentation: str | None = None) -> Callable[[Loader], Loader]:
    """Register a loader under `name` (a decorator); a second registration of a name is an error."""
    if augmentation not in (None, *AUGMENTATIONS):
        raise ValueError(f"dataset {name!r}: unknown augmentation {augmentation!r}; choose from {AUGMENTATIONS} or None")

    def decorator(load: Loader) -> Loader:
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is registered twice")
        _DATASETS[name] = DatasetSpec(name, load, tuple(mean), tuple(std), files, augmentation)
        return load

    return decorator


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def dataset_spec(name: str) -> DatasetSpec:
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; registered: {', '.join(list_datasets())}")
    return _DATASETS[name]


def load_dataset(name: str, data_root: Path | None, cache_dir: Path) -> TensorData:
    """Load the registered dataset `name` from `data_root`, or download it into `cache_dir` if no root is given.

    Decoded image archives are cached as tensors in `cache_dir`, keyed by the archive's checksum.
    """
    spec = dataset_spec(name)
    download = data_root is None
    root = Path(cache_dir) / "downloads" if download else Path(data_root)
    splits = spec.load(root, download, Path(cache_dir))
    return TensorData(name, splits.train_x, splits.train_y, splits.test_x, splits.test_y, spec.mean, spec.std,
                      splits.source, spec.augmentation)


def _missing(name: str, root: Path, expected: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"dataset {name!r} not found under {root}: expected {expected}. "
        f"Point --data-root (or KDBENCH_DATA) at the folder that holds it, "
        f"or leave both unset to download into the cache dir (KDBENCH_CACHE) when online."
    )


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_folder(name: str, root: Path, folder: str) -> Splits:
    """A dataset in torchvision's MNIST layout: `<root>/<folder>/raw/` holding the four idx files.

    Each file is checked against `<root>/SHA256SUMS` when that lists it, and parsed strictly: a
    truncated or foreign file is reported as damaged, naming it.
    """
    raw = root / folder / "raw"
    missing = [f for f in IDX_FILES if not (raw / f).is_file()]
    if missing:
        raise _missing(name, root, f"{raw}/{missing[0]}" + (f" and {len(missing) - 1} more idx files"
                                                             if len(missing) > 1 else ""))
    tensors = []
    for f in IDX_FILES:
        checked_sha256(raw / f, root)
        tensors.append(_read_idx(raw / f))
    train_x, train_y, test_x, test_y = tensors
    for images, labels, split in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
            raise CorruptFileError(f"{raw}/{split}-*: {tuple(images.shape)} images and {tuple(labels.shape)} labels "
                                   f"do not pair up; fetch the files again")
    return Splits(train_x.unsqueeze(1).contiguous(), train_y.long(), test_x.unsqueeze(1).contiguous(), test_y.long(),
                  f"idx files at {raw}")


@register_dataset("mnist", mean=(0.1307,), std=(0.3081,), files="MNIST/raw/ (the four MNIST idx files)")
def mnist(root: Path, download: bool, cache_dir: Path) -> Splits:
    if download:
        import torchvision

        for train in (True, False):
            torchvision.datasets.MNIST(str(root), train=train, download=True)
    return idx_folder("mnist", root, "MNIST")


def _read_idx(path: Path) -> torch.Tensor:
    """A uint8 idx file (MNIST's format); a truncated or foreign file is reported as damaged."""
    data = path.read_bytes()
    problem = None
    if len(data) < 4 or data[:3] != bytes([0, 0, 8]) or not 1 <= data[3] <= 3:
        problem = "its header is not that of a uint8 idx file"
    else:
        ndim = data[3]
        header = 4 * (1 + ndim)
        shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
        if len(data) != header + math.prod(shape):
            problem = (f"its header declares shape {shape}, {header + math.prod(shape)} bytes, the file holds "
                       f"{len(data)} (truncated or padded)")
    if problem:
        raise CorruptFileError(f"{path} is damaged: {problem}; check it with `sha256sum -c SHA256SUMS` in the "
                               f"data root, or fetch it again")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).view(*shape)


def checked_sha256(path: Path, data_root: Path) -> str:
    """SHA-256 of `path`, checked against `data_root`/SHA256SUMS when that file lists it."""
    digest = sha256_file(path)
    sums = Path(data_root) / "SHA256SUMS"
    if sums.is_file():
        relative = Path(path).resolve().relative_to(Path(data_root).resolve()).as_posix()
        for line in sums.read_text().splitlines():
            expected, _, name = line.strip().partition("  ")
            if name.lstrip("*") == relative and expected.lower() != digest:
                raise CorruptFileError(f"{path} does not match {sums}: sha256 {digest}, listed {expected}. "
                                       f"The file is damaged or was replaced; fetch it again")
    return digest


CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)


_CIFAR_FILES = "cifar10-png.tar.gz (lossless PNGs) or cifar-10-batches-py/ (torchvision's download)"


@register_dataset("cifar10", mean=CIFAR_MEAN, std=CIFAR_STD, files=_CIFAR_FILES, augmentation="crop_flip")
def cifar10(root: Path, download: bool, cache_dir: Path) -> Splits:
    batches = root / "cifar-10-batches-py"
    if download and not batches.is_dir():
        import torchvision

        torchvision.datasets.CIFAR10(str(root), train=True, download=True)  # verifies the archive's md5
    if batches.is_dir():
        splits = [_canonical(*_read_cifar_batches(batches, names)) for names in (_TRAIN_BATCHES, ["test_batch"])]
        return _splits(splits, f"CIFAR-10 python batches at {batches}")
    tarball = root / "cifar10-png.tar.gz"
    if not tarball.exists():
        raise _missing("cifar10", root, f"{batches}/ (torchvision's download) or {tarball} (lossless PNGs)")
    return _load_image_tarball("cifar10", tarball, cache_dir)


@register_dataset("cifar10-jpeg", mean=CIFAR_MEAN, std=CIFAR_STD, files="cifar10-jpeg.tar.gz", augmentation="crop_flip")
def cifar10_jpeg(root: Path, download: bool, cache_dir: Path) -> Splits:
    return _load_image_tarball("cifar10-jpeg", root / "cifar10-jpeg.tar.gz", cache_dir)


_TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
_EXPECTED_COUNTS = {"train": 50000, "test": 10000}


def _read_cifar_batches(folder: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels from CIFAR-10's python pickles (torchvision's download)."""
    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.exists():
            raise _missing("cifar10", folder, f"{path} (one of CIFAR-10's python batches)")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(batch["labels"]))
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as err:
            raise CorruptFileError(f"{path} is not a CIFAR-10 batch ({type(err).__name__}: {err}); "
                                   f"delete {folder} and download again") from err
    return np.concatenate(images), np.concatenate(labels)


def _load_image_tarball(variant: str, tarball: Path, cache_dir: Path) -> Splits:
    """Decode `train|test/<class>/<file>` images from a tarball once; later loads read the tensor cache."""
    if not tarball.exists():
        raise _missing(variant, tarball.parent, str(tarball))
    checksum = checked_sha256(tarball, tarball.parent)
    cached = cache_dir / "data" / f"{variant}-{checksum[:16]}.pt"
    if cached.exists():
        try:
            splits = load_tensors(cached)
            return _splits([(s["x"], s["y"]) for s in splits], f"{tarball} (sha256 {checksum})")
        except CorruptFileError:
            cached.unlink()
    images: dict[str, list] = {"train": [], "test": []}
    labels: dict[str, list] = {"train": [], "test": []}
    from PIL import Image

    try:
        with tarfile.open(tarball) as tar:
            for member in tar:
                parts = Path(member.name).parts
                if not member.isfile() or len(parts) < 3 or parts[-3] not in images:
                    continue
                split, cls = parts[-3], parts[-2]
                with Image.open(io.BytesIO(tar.extractfile(member).read())) as img:
                    images[split].append(np.asarray(img.convert("RGB")))
                labels[split].append(CIFAR_CLASSES.index(cls))
    except (tarfile.TarError, OSError, EOFError, ValueError) as err:
        raise CorruptFileError(
            f"{tarball} is damaged ({type(err).__name__}: {err}); check it with `sha256sum -c SHA256SUMS` "
            f"in its folder, or fetch it again"
        ) from err
    counts = {k: len(v) for k, v in images.items()}
    if counts != _EXPECTED_COUNTS:
        raise CorruptFileError(f"{tarball} holds {counts} images, expected {_EXPECTED_COUNTS}")
    splits = [_canonical(np.stack(images[s]), np.asarray(labels[s])) for s in ("train", "test")]
    save_tensors(cached, [{"x": x, "y": y} for x, y in splits])
    return _splits(splits, f"{tarball} (sha256 {checksum})")


def _canonical(images_hwc: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort by label, then by SHA-256 of each image's uint8 HWC bytes; return (N,C,H,W) uint8 and labels."""
    images_hwc = np.ascontiguousarray(images_hwc, dtype=np.uint8)
    hashes = [hashlib.sha256(img.tobytes()).hexdigest() for img in images_hwc]
    order = sorted(range(len(labels)), key=lambda i: (int(labels[i]), hashes[i]))
    x = torch.from_numpy(images_hwc[order]).permute(0, 3, 1, 2).contiguous()
    return x, torch.as_tensor(labels[order], dtype=torch.long)


def _splits(splits, source: str) -> Splits:
    (train_x, train_y), (test_x, test_y) = splits
    return Splits(train_x, train_y, test_x, test_y, source)


def normalize(x_uint8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 images to normalised float: (x/255 - mean) / std, with mean/std shaped (1, C, 1, 1)."""
    return (x_uint8.float() / 255.0 - mean) / std


def random_views(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Draw `n` augmentation view ids in [0, CROP_VIEWS): each encodes a crop offset and a flip."""
    return torch.randint(0, CROP_VIEWS, (n,), generator=generator, device=device)


def crop_flip(x: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
    """Batched random-crop (padding 4, zero fill) and horizontal flip, one view id per image.

    View id v: flip = v % 2, dx = (v // 2) % 9, dy = v // 18. The same id always gives the same
    image, so a teacher's outputs can be cached per (sample, view).
    """
    n, _, h, w = x.shape
    flip, dx, dy = views % 2, (views // 2) % (2 * PAD + 1), views // (2 * (2 * PAD + 1))
    padded = F.pad(x, (PAD, PAD, PAD, PAD))
    j = torch.arange(w, device=x.device)
    j = torch.where(flip[:, None].bool(), w - 1 - j, j)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (dx[:, None] + j)[:, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices of a seeded, class-stratified `fraction` of the samples (sorted)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"subset fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return torch.arange(len(labels))
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for cls in torch.unique(labels):
        members = torch.nonzero(labels == cls).flatten()
        take = max(1, round(fraction * len(members)))
        picked.append(members[torch.randperm(len(members), generator=generator)[:take]])
    return torch.sort(torch.cat(picked)).values


