"""Transfer-set schemes: which training images a run learns from, and the one post-hoc fix one of them needs.

  split_training_set  the recipe's class-stratified training subset; optionally a validation split
                      carved out of the training set first (the test set is never used to choose
                      anything), and optionally without one class (Hinton et al. 2015's omitted digit)
  bias_shift          the logit-bias shift of the omitted class that makes the student's mean softened
                      output on the transfer set match the teacher's: a correction that needs no image
                      of that class and no test image
"""
from __future__ import annotations

import torch

from zoo.training.data import stratified_subset

SUBSET_SEED = 0  # the train/test subsets are fixed, so the seed spread measures training randomness alone
VAL_SEED = 1  # the validation split is fixed too, and drawn independently of the training subset


def split_training_set(labels: torch.Tensor, train_subset: float, val_fraction: float = 0.0,
                       omit_class: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, validation indices) into the training set, both sorted.

    `train_subset` is a fraction of the whole training set; with a validation split it is drawn from
    the images the split leaves (capped at all of them), so a 5% row trains on as many images with
    or without one. Without a split and an omitted class this is exactly the recipe's subset.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0:
        train_idx, val_idx = stratified_subset(labels, train_subset, SUBSET_SEED), torch.empty(0, dtype=torch.long)
    else:
        val_idx = stratified_subset(labels, val_fraction, VAL_SEED)
        keep = torch.ones(len(labels), dtype=torch.bool)
        keep[val_idx] = False
        rest = torch.nonzero(keep).flatten()
        fraction = min(1.0, train_subset * len(labels) / len(rest))
        train_idx = rest[stratified_subset(labels[rest], fraction, SUBSET_SEED)]
    if omit_class is not None:
        if not (labels == omit_class).any():
            raise ValueError(f"omit_class {omit_class} does not occur in the training labels")
        train_idx = train_idx[labels[train_idx] != omit_class]
    return train_idx, val_idx


def bias_shift(student_logits: torch.Tensor, teacher_logits: torch.Tensor, cls: int, temperature: float) -> float:
    """The shift b of class `cls`'s logit with mean_i softmax((z_s + b e_cls) / T)_cls = mean_i softmax(z_t / T)_cls.

    Both logit sets are on the transfer set. The left side grows strictly with b, so bisection finds
    the unique root (in float64, to 1e-9).
    """
    student, teacher = student_logits.double(), teacher_logits.double()
    target = torch.softmax(teacher / temperature, dim=1)[:, cls].mean()
    unit = torch.zeros(student.shape[1], dtype=torch.float64)
    unit[cls] = 1.0

    def excess(b: float) -> float:
        return float(torch.softmax((student + b * unit) / temperature, dim=1)[:, cls].mean() - target)

    low, high = -1.0, 1.0
    while excess(low) > 0:
        low *= 2
        if low < -1e6:
            raise ValueError("no bias shift brings the omitted class down to the teacher's mean output")
    while excess(high) < 0:
        high *= 2
        if high > 1e6:
            raise ValueError("no bias shift brings the omitted class up to the teacher's mean output")
    while high - low > 1e-9:
        middle = (low + high) / 2
        low, high = (middle, high) if excess(middle) < 0 else (low, middle)
    return (low + high) / 2
