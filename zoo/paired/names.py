"""The names of the paired A/B's timed blocks (`KIND:ROW[/STAGE]`, see zoo.paired.blocks) and the default set:
plain data, imported by `kdbench --help` without torch."""
from __future__ import annotations

from dataclasses import dataclass

from zoo.errors import KdbenchInputError

KINDS = ("train", "infer", "data")
STAGES = ("train", "hint")


class BlockError(KdbenchInputError, ValueError):
    """A block name that names no block this tree can build; the message says what exists."""


@dataclass(frozen=True)
class BlockName:
    kind: str
    row: str
    stage: str = "train"

    @classmethod
    def parse(cls, text: str) -> BlockName:
        kind, sep, rest = text.partition(":")
        row, _, stage = rest.partition("/")
        if not sep or kind not in KINDS or not row or (stage and (kind != "train" or stage not in STAGES)):
            raise BlockError(f"{text!r} is not a block name; write train:ROW, train:ROW/hint, infer:ROW or data:ROW")
        return cls(kind, row, stage or "train")

    def __str__(self) -> str:
        return f"{self.kind}:{self.row}" + ("/hint" if self.stage == "hint" else "")


DEFAULT_BLOCKS = (
    "train:mnist-mlp800-lr0.01",
    "train:mnist-mlp800-kd-lr0.01",
    "train:mnist-mlp800-datafree-all-lr0.01",
    "train:cifar10-cnn5-d0.5",
    "train:cifar10-cnn5-d0.5-kd",
    "train:cifar10-cnn5-d0-at",
    "train:cifar10-cnn5-d0-fitnets/hint",
    "train:cifar10-cnn5-d0-fitnets",
    "infer:mnist-mlp800-lr0.01",
    "infer:cifar10-cnn5-d0.5",
    "data:cifar10-cnn5-d0.5",
)
"""Every distinct training step of the quick tier (one row per model x distiller: the MLP with and without KD,
data-free KD, the CNN with and without KD, attention transfer, FitNets' two stages), the inference benchmark's
forward passes of the quick tier's students (the MLP and the CNN), and the data path (gather, crop and flip,
normalise) of the CIFAR-10 rows. Left out, and timed when named: MNIST's data path, a gather from a 188 MB
tensor that runs at the speed of where that tensor lies in memory (40 pairs, each in fresh processes, still
spanned x0.905..x1.152 in an A/A run on this VM), and ResNet-18's forward pass on a CPU (over a second a batch)."""
