"""The distillation loss of Hinton et al. (2015), as the study used it.

    L = alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(z_s, y)

KL equals the study's CE(Q_s^T, Q_t^T) minus the teacher's entropy, which does not depend on the
student: the gradients are identical, and the loss is 0 when the student matches the teacher.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

KL_REDUCTIONS = ("batchmean", "elementwise")


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    alpha: float,
    temperature: float,
    kl_reduction: str = "batchmean",
    kl_scale: float = 1.0,
) -> torch.Tensor:
    """Distillation loss for a batch.

    kl_reduction:
      "batchmean"   KL summed over classes, averaged over samples: the faithful per-sample KL (default).
      "elementwise" nn.KLDivLoss()'s default mean over samples *and* classes, as in the study's code: it
                    is batchmean / num_classes, so it weakens the KD term tenfold on 10 classes (the
                    study's MNIST script also doubled it).
    kl_scale multiplies the soft term once more (1 by default; the study's MNIST script used 2).
    labels=None is the unlabeled transfer mode and requires alpha == 1: the student never sees a label.
    """
    if labels is None and alpha != 1:
        raise ValueError(f"unlabeled distillation needs alpha == 1 (got {alpha}): there are no labels to weigh")
    soft = soft_term(student_logits, teacher_logits, temperature, kl_reduction, kl_scale)
    if alpha == 1:
        return soft
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits.float(), labels)


def soft_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
              kl_reduction: str = "batchmean", kl_scale: float = 1.0) -> torch.Tensor:
    """T^2 * kl_scale * the softened KL under `kl_reduction` (see `kd_loss`): the soft term before alpha."""
    if kl_reduction not in KL_REDUCTIONS:
        raise ValueError(f"unknown kl_reduction {kl_reduction!r}; choose from {KL_REDUCTIONS}")
    soft = softened_kl(student_logits, teacher_logits, temperature)
    if kl_reduction == "elementwise":  # what reduction="mean" computes, without its deprecation warning
        soft = soft / student_logits.shape[1]
    return soft * temperature**2 * kl_scale


def softened_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over samples of KL(softmax(z_t/T) || softmax(z_s/T)), in nats."""
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
