"""Attention transfer (Zagoruyko & Komodakis 2017, arXiv:1612.03928), activation-based, with p = 2.

The attention map of a feature map is the channel mean of its squared activations, flattened and
L2-normalised. The loss adds, for every (student layer, teacher layer) pair,

    beta / 2 * mean over the batch and positions of (Q_s / ||Q_s|| - Q_t / ||Q_t||)^2

to the Hinton terms (alpha = 0 leaves cross-entropy alone: "AT" in the paper; beta = 1000 there).
A teacher map of another resolution is average-pooled to the student's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo.training.distill.hinton import HintonKD
from zoo.training.distill.registry import register_distiller


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """(batch, positions) L2-normalised spatial attention of a (batch, channels, H, W) feature map."""
    return F.normalize(features.float().pow(2).mean(1).flatten(1), dim=1)


def attention_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the two maps' attention (the teacher's pooled to the student's size)."""
    if teacher.shape[-2:] != student.shape[-2:]:
        teacher = F.adaptive_avg_pool2d(teacher, student.shape[-2:])
    return (attention_map(student) - attention_map(teacher)).pow(2).mean()


@register_distiller
class AttentionTransfer(HintonKD):
    """Hinton terms + beta / 2 * sum of attention_loss over the settings' (student, teacher) layer pairs.

    Its transfer is gated through `attention_distance`: that sum (without beta / 2) on the test set.
    """

    name = "attention"
    fidelity_metric = "attention_distance"

    def __init__(self, settings):
        super().__init__(settings)
        options = dict(settings.options)
        self.pairs: tuple[tuple[str, str], ...] = tuple(tuple(p) for p in options["layers"])
        self.beta = float(options.get("beta", 1000.0))

    @property
    def student_features(self) -> tuple[str, ...]:
        return tuple(s for s, _ in self.pairs)

    @property
    def teacher_features(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.pairs)

    def transfer_loss(self, student_logits, teacher_logits, student_features, teacher_features):
        hinton = super().transfer_loss(student_logits, teacher_logits, student_features, teacher_features)
        return hinton + self.beta / 2 * sum(attention_loss(student_features[s], teacher_features[t])
                                            for s, t in self.pairs)

    def fidelity_inputs(self, student_features, teacher_features):
        return [(student_features[s], teacher_features[t]) for s, t in self.pairs]
