"""Hinton et al. (2015): the student matches the teacher's outputs softened at temperature T (zoo.losses)."""
from __future__ import annotations

from zoo.distill.base import Distiller
from zoo.distill.registry import register_distiller
from zoo.losses import kd_loss


@register_distiller
class HintonKD(Distiller):
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE, with the KL reduction the settings name."""

    name = "hinton"

    def forward(self, student_logits, teacher_logits, labels, student_features, teacher_features):
        kd = self.settings
        return kd_loss(student_logits, teacher_logits, labels, kd.alpha, kd.temperature, kd.kl_reduction, kd.kl_scale)
