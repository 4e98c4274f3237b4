"""What a model's test-set logits say about it: confusions, per-class accuracy, soft-target structure,
agreement and KL with another model, and calibration. Logits are (images, classes) tensors."""
from __future__ import annotations

import torch

from zoo.measure.fidelity import teacher_kl


def confusion(logits: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Counts: row = true class, column = predicted class."""
    index = labels.long() * classes + logits.argmax(1)
    return torch.bincount(index, minlength=classes * classes).view(classes, classes)


def per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Exact accuracy (%) of each true class."""
    counts = confusion(logits, labels, classes)
    return 100.0 * counts.diag().double() / counts.sum(1).clamp(min=1).double()


def class_similarity(logits: torch.Tensor, labels: torch.Tensor, temperature: float, classes: int) -> torch.Tensor:
    """Mean softened output softmax(z / T) per true class: row c is what the model "thinks" a c looks like."""
    soft = torch.softmax(logits.double() / temperature, dim=1)
    sums = torch.zeros(classes, classes, dtype=torch.float64).index_add_(0, labels.long(), soft)
    return sums / torch.bincount(labels.long(), minlength=classes).clamp(min=1).unsqueeze(1)


def mean_entropy(logits: torch.Tensor, temperature: float) -> float:
    """Mean entropy (nats) of softmax(z / T) over the images."""
    log_p = torch.log_softmax(logits.double() / temperature, dim=1)
    return float(-(log_p.exp() * log_p).sum(1).mean())


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """% of images on which two models' top-1 predictions agree."""
    return 100.0 * float((a.argmax(1) == b.argmax(1)).double().mean())


def kl_to(teacher: torch.Tensor, student: torch.Tensor, temperature: float) -> float:
    """Mean KL(teacher_T || student_T) in nats, the quantity the KD loss minimises (measured independently of it:
    zoo.measure.fidelity)."""
    return teacher_kl(student, teacher, temperature)


def calibration(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> dict:
    """Expected calibration error (%) over equal-width confidence bins, and the reliability diagram's bins.

    ECE = sum_b |B_b| / n * |accuracy(B_b) - confidence(B_b)| (Guo et al. 2017).
    """
    probs = torch.softmax(logits.double(), dim=1)
    confidence, predicted = probs.max(1)
    correct = (predicted == labels.long()).double()
    which = torch.clamp((confidence * bins).long(), max=bins - 1)
    counts = torch.bincount(which, minlength=bins).double()
    conf_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, confidence)
    acc_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, correct)
    filled = counts > 0
    mean_conf = torch.where(filled, conf_sum / counts.clamp(min=1), torch.nan)
    mean_acc = torch.where(filled, acc_sum / counts.clamp(min=1), torch.nan)
    ece = float((counts[filled] / len(labels) * (mean_acc[filled] - mean_conf[filled]).abs()).sum())
    return {"ece": 100.0 * ece, "confidence": mean_conf.tolist(), "accuracy": mean_acc.tolist(),
            "counts": counts.long().tolist()}
