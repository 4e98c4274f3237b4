"""Training recipes: what to train, how long, with which optimiser, data and distillation settings."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

TIERS = ("quick", "full", "fast")
"""quick: CPU minutes, the default gate. full: the study's own recipes. fast: short GPU schedules of the deep rows."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model name and the keyword arguments of its entrypoint."""

    name: str
    kwargs: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, name: str, **kwargs) -> ModelSpec:
        return cls(name, tuple(sorted(kwargs.items())))

    def __str__(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.kwargs)
        return f"{self.name}({args})" if args else self.name

    @property
    def slug(self) -> str:
        """File- and shell-friendly name: cnn5-dropout0.5."""
        return "-".join([self.name, *(f"{k}{v}" for k, v in self.kwargs)])


@dataclass(frozen=True)
class Distill:
    """Distillation settings: the method (a registered distiller, zoo.training.distill), loss weight `alpha` on the
    soft term, temperature, KL reduction, label use, and the method's own options."""

    alpha: float
    temperature: float
    kl_reduction: str = "batchmean"  # see zoo.training.losses.kd_loss
    kl_scale: float = 1.0  # extra factor on the soft term (the study's MNIST script: 2)
    unlabeled: bool = False  # the student never sees a label (requires alpha == 1)
    method: str = "hinton"  # the registered distiller (zoo.training.distill.registry)
    options: tuple[tuple[str, object], ...] = ()  # the method's settings, e.g. (("beta", 1000.0), ("layers", ...))

    def __post_init__(self):
        if self.unlabeled and self.alpha != 1:
            raise ValueError("unlabeled distillation needs alpha == 1")


LATER_DISTILL_FIELDS = {"method": "hinton", "options": ()}
"""Distill fields added after the first baselines, with the default at which they leave the hash alone."""


LATER_FIELDS = {"teacher_seed": None, "val_fraction": 0.0, "omit_class": None}
"""Recipe fields added after the first baselines, with the default at which they leave the hash alone."""


@dataclass(frozen=True)
class Recipe:
    """One training run's full specification (hashed into results, baselines and the teacher cache)."""

    epochs: int
    batch_size: int
    optimizer: str  # "sgd" | "adam"
    lr: float
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"  # "constant" | "step" | "cosine" | "onecycle"
    milestones: tuple[int, ...] = ()  # epochs at which "step" multiplies the lr by gamma
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up of "onecycle"
    label_smoothing: float = 0.0
    augment: bool = False  # random crop (pad 4) + horizontal flip, batched on tensors
    train_subset: float = 1.0  # class-stratified fraction of the training set (fixed subset seed 0)
    test_subset: float = 1.0  # stratified fraction of the test set (quick deep rows only)
    distill: Distill | None = None
    teacher_view_cache: bool = False  # cache teacher outputs for all 162 augmentation views up front
    teacher_seed: int | None = None  # distil every seed from this teacher seed (None: the student's own seed)
    val_fraction: float = 0.0  # validation split carved out of the training set (zoo.training.transfer_sets); 0: none
    omit_class: int | None = None  # this class is left out of the transfer set (zoo.training.transfer_sets); needs `distill`
    gate_accuracy: bool = True  # False for smoke runs, gated on a falling loss instead
    seeds: int = 3  # seeds run by default (0..seeds-1); --seeds overrides
    baseline_seeds: int = 3  # fewest seeds --update-baselines stores (the accuracy gate needs a spread)
    schedule_name: str = ""  # human name of the schedule, e.g. "study" or "one-cycle 40 ep"

    def __post_init__(self):
        if self.omit_class is not None and self.distill is None:
            raise ValueError("omit_class needs distill: the omitted class's bias is corrected from the teacher")

    def replace(self, **changes) -> Recipe:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def training_dict(self) -> dict:
        """The fields that determine a run (not how many seeds run or make a baseline).

        Fields added after baselines were recorded (LATER_FIELDS) count only when set, so that adding
        one leaves every stored recipe hash, baseline and cached teacher valid.
        """
        fields = {k: v for k, v in self.as_dict().items()
                  if k not in ("seeds", "baseline_seeds") and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
        if fields["distill"] is not None:
            fields["distill"] = {k: v for k, v in fields["distill"].items()
                                 if not (k in LATER_DISTILL_FIELDS and v == LATER_DISTILL_FIELDS[k])}
        return fields


def stable_hash(*parts: object) -> str:
    """Short SHA-256 of JSON-serialised parts (dataclasses become dicts)."""
    def encode(obj):
        if dataclasses.is_dataclass(obj):
            return dataclasses.asdict(obj)
        raise TypeError(f"cannot hash {type(obj).__name__}")

    text = json.dumps(parts, sort_keys=True, default=encode)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
