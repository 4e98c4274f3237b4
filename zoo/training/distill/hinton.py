"""Hinton et al. (2015): the student matches the teacher's outputs softened at temperature T (zoo.training.losses)."""
from __future__ import annotations

import torch.nn.functional as F

from zoo.training.distill.base import Distiller
from zoo.training.distill.registry import register_distiller
from zoo.training.losses import soft_term


@register_distiller
class HintonKD(Distiller):
    """(1 - alpha) * CE + alpha * T^2 * KL(teacher_T || student_T), with the KL reduction and scale the settings name.

    Its transfer is gated through the student's softened KL to the teacher on the test set (teacher_kl).
    """

    name = "hinton"

    def label_loss(self, student_logits, labels):
        alpha = self.settings.alpha
        return None if alpha == 1 else (1 - alpha) * F.cross_entropy(student_logits.float(), labels)

    def transfer_loss(self, student_logits, teacher_logits, student_features, teacher_features):
        kd = self.settings
        soft = soft_term(student_logits, teacher_logits, kd.temperature, kd.kl_reduction, kd.kl_scale)
        return soft if kd.alpha == 1 else kd.alpha * soft
