"""The distiller interface and the forward hooks that feed it intermediate features."""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from zoo.catalog.recipes import Distill


class Distiller(nn.Module):
    """One distillation method, built from a recipe's `Distill` settings.

    It names the submodules (as in `model.named_modules()`) whose outputs its loss needs, on the student
    and on the teacher; the training loop takes them with forward hooks. Its own parameters (e.g. a
    regressor, built in `prepare` once the feature shapes are known) are trainable parts optimised
    together with the student. Its loss (`forward`) is a label term plus `transfer_weight` times its
    transfer term (what it takes from the teacher). A distiller with `hint_epochs` > 0 first trains for
    that many epochs on `hint_loss` alone (FitNets' stage 1), with a fresh optimiser per stage.

    `fidelity_metric` names what measures its transfer on the test set, gated like accuracy on its own pooled
    seed spread: "teacher_kl" (the student's softened KL to its teacher, which the training loop measures for
    every distiller), or a metric of its own computed per test batch by zoo.measure.fidelity from the tensors
    `fidelity_inputs` picks out of the tapped features (never by the distiller's own loss).
    """

    hint_epochs: int = 0
    spread_family: ClassVar[str] = ""  # rows whose seeds vary in another way pool their seed sd apart (zoo.verdicts.gates)
    synthesizes_transfer_set: bool = False  # True: `transfer_set` replaces the training images
    fidelity_metric: ClassVar[str] = "teacher_kl"
    transfer_weight: ClassVar[float] = 1.0
    """Multiplies every transfer term (soft targets, attention maps, hints) and nothing else: 1 in every real run;
    zoo.harness.faults' kd-weight sets it to show what the gate sees when the distillation weakens or is switched off."""

    name: ClassVar[str]

    def __init__(self, settings: Distill):
        super().__init__()
        self.settings = settings

    @property
    def student_features(self) -> tuple[str, ...]:
        return ()

    @property
    def teacher_features(self) -> tuple[str, ...]:
        return ()

    def prepare(self, student: nn.Module, teacher: nn.Module, sample: torch.Tensor) -> None:
        """Build parts whose size depends on the models (called once, before the optimiser exists)."""

    def transfer_set(self, teacher: nn.Module, images: torch.Tensor, labels: torch.Tensor, norm,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images and labels to distil on instead of the training images (data-free methods)."""
        raise NotImplementedError(f"{self.name} trains on the training images")

    def hint_loss(self, student_features: dict[str, torch.Tensor],
                  teacher_features: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} has no hint stage")

    def label_loss(self, student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        """The weighted loss on the labels (None: the method uses none)."""
        return None

    def transfer_loss(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      student_features: dict[str, torch.Tensor], teacher_features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted loss of what the student takes from its teacher."""
        raise NotImplementedError

    def fidelity_inputs(self, student_features: dict[str, torch.Tensor],
                        teacher_features: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The (student side, teacher side) tensors that `fidelity_metric` compares, for a metric of features."""
        raise NotImplementedError(f"{self.name} measures its fidelity as {self.fidelity_metric}")

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None,
                student_features: dict[str, torch.Tensor], teacher_features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss: label term (none when `labels` is None: unlabeled transfer) + weighted transfer term."""
        transfer = self.transfer_weight * self.transfer_loss(student_logits, teacher_logits, student_features,
                                                             teacher_features)
        label = None if labels is None else self.label_loss(student_logits, labels)
        return transfer if label is None else label + transfer


class FeatureTaps:
    """Forward hooks keeping the outputs of named submodules of `model` from its latest forward pass."""

    def __init__(self, model: nn.Module | None, names: tuple[str, ...]):
        modules = dict(model.named_modules()) if names else {}
        unknown = [n for n in names if n not in modules]
        if unknown:
            raise ValueError(f"{type(model).__name__} has no submodule {unknown}; it has: "
                             f"{', '.join(n for n in modules if n)}")
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._keep(n)) for n in names]

    def _keep(self, name: str):
        def hook(module, inputs, output):
            self.outputs[name] = output
        return hook

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()

    def __enter__(self) -> FeatureTaps:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
