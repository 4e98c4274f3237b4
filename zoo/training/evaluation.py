"""A trained model measured: test accuracy (exact, last epoch), the validation split, fidelity to its teacher (by
zoo.measure's reference implementations, never by the training loss's functions) and the omitted-class scoring of
the study's dark-knowledge scheme, as one TrainReport."""
from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn as nn

from zoo.catalog.recipes import Recipe
from zoo.measure.fidelity import feature_metric
from zoo.measure.fidelity import teacher_kl as measured_teacher_kl
from zoo.training.data import TensorData, normalize
from zoo.training.distill.base import Distiller, FeatureTaps
from zoo.training.forward import TrainOptions, evaluate, forward, normalization, predict, test_indices
from zoo.training.transfer_sets import bias_shift


@dataclass
class TrainReport:
    """What one training run measured."""

    test_accuracy: float  # exact: correct / total over the (recipe's) test set, in percent
    test_correct: int
    test_total: int
    train_loss_first_epoch: float
    train_loss_last_epoch: float
    train_images_per_s: float
    train_images_per_cpu_s: float  # the median epoch's images per CPU-second of this process (a CPU quota cannot move it)
    train_seconds: float
    teacher_seconds: float  # computing cached teacher outputs before training
    eval_seconds: float
    epochs: list[dict]
    teacher_agreement: float | None = None  # % of test images where student and teacher top-1 agree
    teacher_kl: float | None = None  # mean KL(teacher_T || student_T) on the test set, nats
    val_accuracy: float | None = None  # exact, on the recipe's validation split of the training set
    omission: dict | None = None  # omitted class: its accuracy before and after the bias correction
    fidelity: dict[str, float] = field(default_factory=dict)  # a feature distiller's own fidelity metric (test set)
    transfer_seconds: float = 0.0  # reconstructing a data-free transfer set (part of the timed run)
    test_logits: torch.Tensor | None = field(default=None, repr=False)  # (test images, classes), float32

    def as_record(self) -> dict:
        """The JSON-able fields (everything but the test logits, which are stored beside the record)."""
        return {k: v for k, v in dataclasses.asdict(dataclasses.replace(self, test_logits=None)).items()
                if k != "test_logits"}


class TrainedRun(Protocol):
    """What evaluation reads of a finished training run (zoo.training.engine.TrainingRun is one)."""

    model: nn.Module
    teacher: nn.Module | None
    distiller: Distiller | None
    recipe: Recipe
    opts: TrainOptions
    data: TensorData
    train_x: torch.Tensor
    val_idx: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    teacher_table: torch.Tensor | None
    epochs: list[dict]
    train_seconds: float
    teacher_seconds: float
    transfer_seconds: float


def evaluate_run(run: TrainedRun) -> TrainReport:
    """The trained model on the test set (and the validation split, and the teacher fidelity), as a report."""
    model, teacher, recipe, opts, data, kd = run.model, run.teacher, run.recipe, run.opts, run.data, run.recipe.distill
    start = time.perf_counter()
    logits, test_y = evaluate(model, data, recipe, opts)
    test_correct = int((logits.argmax(1) == test_y).sum())
    agreement = teacher_kl = None
    fidelity = {}
    if kd:
        t_logits, _ = evaluate(teacher, data, recipe, opts)
        agreement = 100.0 * float((t_logits.argmax(1) == logits.argmax(1)).float().mean())
        teacher_kl = measured_teacher_kl(logits, t_logits, kd.temperature)
        if run.distiller.fidelity_metric != "teacher_kl":
            fidelity[run.distiller.fidelity_metric] = feature_fidelity(run.distiller, model, teacher, data, recipe, opts)
    val_accuracy = None
    if len(run.val_idx):
        val_logits = predict(model, data.train_x[run.val_idx].to(opts.device), run.mean, run.std, opts)
        val_labels = data.train_y[run.val_idx].to(opts.device)
        val_accuracy = 100.0 * int((val_logits.argmax(1) == val_labels).sum()) / len(run.val_idx)
    omission = None
    if recipe.omit_class is not None:
        table = run.teacher_table
        transfer = table[:, 0].float() if table is not None and not recipe.augment else None
        omission = omitted_class_report(model, teacher, run.train_x, logits, test_y, recipe.omit_class,
                                        kd.temperature, (run.mean, run.std), opts, transfer)
    eval_seconds = time.perf_counter() - start
    n, epochs = len(run.train_x), run.epochs
    final = [e for e in epochs if e["stage"] == "train"]
    return TrainReport(
        test_accuracy=100.0 * test_correct / len(test_y), test_correct=test_correct, test_total=len(test_y),
        train_loss_first_epoch=final[0]["loss"], train_loss_last_epoch=final[-1]["loss"],
        train_images_per_s=n * len(epochs) / run.train_seconds,
        train_images_per_cpu_s=statistics.median(e["images_per_cpu_s"] for e in epochs),
        train_seconds=run.train_seconds, teacher_seconds=run.teacher_seconds, eval_seconds=eval_seconds,
        epochs=epochs, teacher_agreement=agreement, teacher_kl=teacher_kl, val_accuracy=val_accuracy,
        omission=omission, fidelity=fidelity, transfer_seconds=run.transfer_seconds, test_logits=logits,
    )


@torch.no_grad()
def feature_fidelity(distiller, model: nn.Module, teacher: nn.Module, data: TensorData, recipe: Recipe,
                     opts: TrainOptions, batch_size: int = 1000) -> float:
    """The distiller's fidelity metric (its transfer measured on features) over the recipe's test set, in eval mode:
    the batch means weighted by batch size."""
    test_x = data.test_x[test_indices(data, recipe)].to(opts.device)
    mean, std = normalization(data, opts.device)
    model.eval()
    teacher.eval()
    total = 0.0
    with FeatureTaps(model, distiller.student_features) as mine, FeatureTaps(teacher, distiller.teacher_features) as theirs:
        for start in range(0, len(test_x), batch_size):
            x = normalize(test_x[start:start + batch_size], mean, std)
            forward(model, x, opts), forward(teacher, x, opts)
            total += feature_metric(distiller.fidelity_metric, distiller.fidelity_inputs(mine.outputs, theirs.outputs)) \
                * len(x)
    return total / len(test_x)


def omitted_class_report(model: nn.Module, teacher: nn.Module, transfer_x: torch.Tensor, test_logits: torch.Tensor,
                         test_y: torch.Tensor, cls: int, temperature: float, norm, opts: TrainOptions,
                         teacher_transfer: torch.Tensor | None = None) -> dict:
    """Accuracy on the omitted class `cls` (and overall) before and after the bias correction of zoo.training.transfer_sets,
    matched at the distillation's `temperature` and at T = 1 (keys with the suffix _t1).

    The shift is fitted on the transfer set alone (which holds no image of `cls`), never on the test set.
    """
    student_transfer = predict(model, transfer_x, *norm, opts)
    if teacher_transfer is None:
        teacher_transfer = predict(teacher, transfer_x, *norm, opts)
    members = test_y == cls

    def accuracy(logits: torch.Tensor, mask: torch.Tensor) -> float:
        return 100.0 * int((logits.argmax(1)[mask] == test_y[mask]).sum()) / int(mask.sum())

    report = {"omitted_class": cls, "class_test_images": int(members.sum()),
              "class_accuracy": accuracy(test_logits, members)}
    for suffix, t in (("", temperature), ("_t1", 1.0)):
        shift = bias_shift(student_transfer.cpu(), teacher_transfer.cpu(), cls, t)
        corrected = test_logits.clone()
        corrected[:, cls] += shift
        report |= {f"bias_shift{suffix}": shift, f"class_accuracy_corrected{suffix}": accuracy(corrected, members),
                   f"test_accuracy_corrected{suffix}": accuracy(corrected, torch.ones_like(members))}
    return report
