"""Decoupled knowledge distillation (Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022).

The softened KL of Hinton KD splits into a target-class term (TCKD: the binary KL between the teacher's and the
student's probability of the true class against all others) and a non-target-class term (NCKD: the KL between their
distributions over the other classes). DKD weights them apart:

    loss = CE(student, y) + alpha * TCKD + beta * NCKD,   both KLs at temperature T and scaled by T^2.

Recipe: Distill(alpha=ALPHA, temperature=T, method="dkd", options=(("beta", BETA),)). kdbench gates its transfer
through teacher_kl, which its training loop measures for every distiller with its own float64 reference.
"""
import torch
import torch.nn.functional as F

from zoo.training.distill.base import Distiller
from zoo.training.distill.registry import register_distiller


def _binary_kl(teacher_p: torch.Tensor, student_p: torch.Tensor) -> torch.Tensor:
    """KL([p_t, 1 - p_t] || [p_s, 1 - p_s]) summed over the batch; p: probability of the target class."""
    teacher = torch.stack([teacher_p, 1 - teacher_p], dim=1).clamp_min(1e-12)
    student = torch.stack([student_p, 1 - student_p], dim=1).clamp_min(1e-12)
    return (teacher * (teacher.log() - student.log())).sum()


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, alpha: float,
             beta: float, temperature: float) -> torch.Tensor:
    target = F.one_hot(labels, student_logits.shape[1]).bool()
    student_soft = F.softmax(student_logits.float() / temperature, dim=1)
    teacher_soft = F.softmax(teacher_logits.float() / temperature, dim=1)
    tckd = _binary_kl(teacher_soft[target], student_soft[target])
    # the other classes' distribution: the target's logit pushed out of the softmax
    hidden = -1000.0 * target
    nckd = F.kl_div(F.log_softmax(student_logits.float() / temperature + hidden, dim=1),
                    F.softmax(teacher_logits.float() / temperature + hidden, dim=1), reduction="sum")
    return (alpha * tckd + beta * nckd) * temperature**2 / labels.shape[0]


@register_distiller
class DecoupledKD(Distiller):
    """CE on the labels plus alpha * TCKD + beta * NCKD (the recipe's `alpha`, its option `beta`, temperature)."""

    name = "dkd"

    def forward(self, student_logits, teacher_logits, labels, student_features, teacher_features):
        if labels is None:
            raise ValueError("DKD splits the teacher's output at the true class: it needs labelled transfer")
        beta = dict(self.settings.options).get("beta", 8.0)
        transfer = dkd_loss(student_logits, teacher_logits, labels, self.settings.alpha, beta,
                            self.settings.temperature)
        return F.cross_entropy(student_logits.float(), labels) + self.transfer_weight * transfer
