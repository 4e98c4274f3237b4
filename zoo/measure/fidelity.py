"""The fidelity metrics: how closely a student follows its teacher, measured on the test set.

Each is the textbook formula, written out here in float64 and never computed by the functions that train for it
(zoo.training.losses, a distiller's loss): a bug in a training loss (a reversed KL, an unsoftened teacher, a
wrong attention map) then shows as a changed metric instead of corrupting its own detector.

  teacher_kl          KL(p_t || p_s) with p = softmax(z / T), averaged over samples, nats (Hinton et al. 2015)
  attention_distance  per (student, teacher) layer pair: the mean squared difference of the L2-normalised
                      spatial attention maps, Q = mean over channels of A^2 (Zagoruyko & Komodakis 2017; the
                      teacher's map average-pooled to the student's size), summed over the pairs
  hint_error          half the mean squared difference between the regressed guided layer and the hint
                      (Romero et al. 2015; the hint average-pooled to the guided layer's size)

A distiller names its metric (`fidelity_metric`) and hands over the tensors it compares
(`fidelity_inputs`); `feature_metric` computes it.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Pairs = list[tuple[torch.Tensor, torch.Tensor]]


def _f64(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().double()


def teacher_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> float:
    """Mean over samples of sum_k p_t,k (log p_t,k - log p_s,k), p = softmax(logits / T), in nats."""
    student, teacher = _f64(student_logits) / temperature, _f64(teacher_logits) / temperature
    log_p_student = student - torch.logsumexp(student, dim=1, keepdim=True)
    log_p_teacher = teacher - torch.logsumexp(teacher, dim=1, keepdim=True)
    return float((log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1).mean())


def _attention(features: torch.Tensor) -> torch.Tensor:
    """(batch, H*W): the channel mean of the squared activations, divided by its L2 norm."""
    energy = _f64(features).pow(2).mean(dim=1).flatten(1)
    return energy / energy.pow(2).sum(dim=1, keepdim=True).sqrt().clamp_min(1e-12)


def _to_size(teacher: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return teacher if teacher.shape[-2:] == like.shape[-2:] else F.adaptive_avg_pool2d(teacher, like.shape[-2:])


def attention_distance(pairs: Pairs) -> float:
    """This batch's attention distance over the (student feature map, teacher feature map) pairs."""
    return float(sum((_attention(s) - _attention(_to_size(_f64(t), s))).pow(2).mean() for s, t in pairs))


def hint_error(pairs: Pairs) -> float:
    """This batch's hint error over the (regressed guided layer, hint layer) pairs."""
    return float(sum(0.5 * (_f64(g) - _to_size(_f64(h), g)).pow(2).mean() for g, h in pairs))


FEATURE_METRICS: dict[str, Callable[[Pairs], float]] = {"attention_distance": attention_distance,
                                                          "hint_error": hint_error}


def feature_metric(name: str, pairs: Pairs) -> float:
    """The fidelity metric `name` of one test batch, from a distiller's `fidelity_inputs`."""
    if name not in FEATURE_METRICS:
        raise ValueError(f"no measurement of a fidelity metric {name!r}; measured: {', '.join(FEATURE_METRICS)}")
    return FEATURE_METRICS[name](pairs)
