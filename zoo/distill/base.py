"""The distiller interface and the forward hooks that feed it intermediate features."""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from zoo.recipes import Distill


class Distiller(nn.Module):
    """One distillation method, built from a recipe's `Distill` settings.

    It names the submodules (as in `model.named_modules()`) whose outputs its loss needs, on the student
    and on the teacher; the training loop takes them with forward hooks. Its own parameters (e.g. a
    regressor, built in `prepare` once the feature shapes are known) are trainable parts optimised
    together with the student. `forward` is its loss. A distiller with `hint_epochs` > 0 first trains
    for that many epochs on `hint_loss` alone (FitNets' stage 1), with a fresh optimiser per stage.
    """

    hint_epochs: int = 0
    spread_family: ClassVar[str] = ""  # rows whose seeds vary in another way pool their seed sd apart (zoo.gates)
    synthesizes_transfer_set: bool = False  # True: `transfer_set` replaces the training images

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

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None,
                student_features: dict[str, torch.Tensor], teacher_features: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


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

    def __enter__(self) -> "FeatureTaps":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
