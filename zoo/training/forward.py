"""The forward passes the training loop and the evaluation share: how to run (TrainOptions), eval-mode predictions
on uint8 images, the dataset's normalisation and the recipe's test set."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from zoo.catalog.recipes import Recipe
from zoo.training.checkpoint import Checkpointer
from zoo.training.data import TensorData, crop_flip, normalize, stratified_subset
from zoo.training.transfer_sets import SUBSET_SEED


@dataclass
class TrainOptions:
    """How to run (not what): device and speed switches; none of them changes the recipe's hash."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp: bool = False  # bf16 autocast (CUDA)
    channels_last: bool = False
    compile: bool = False
    log: Callable[[str], None] = print
    between_epochs: Callable[[], None] = lambda: None  # called after every epoch, outside its timing (the probe)
    checkpoint: Checkpointer | None = None  # written after every epoch and resumed from (zoo.training.checkpoint)


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, mean, std, opts: TrainOptions, batch_size: int = 1000,
            views: int | None = None) -> torch.Tensor:
    """Eval-mode logits (float32) for uint8 `images`; with `views`, logits of every augmentation view."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        if views is None:
            out.append(forward(model, normalize(x, mean, std), opts).float())
            continue
        per_view = []
        for v in range(views):
            ids = torch.full((len(x),), v, device=x.device)
            per_view.append(forward(model, normalize(crop_flip(x, ids), mean, std), opts).to(torch.bfloat16))
        out.append(torch.stack(per_view, dim=1))
    return torch.cat(out)


def normalization(data: TensorData, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's per-channel mean and std, shaped (1, C, 1, 1) on `device`."""
    return (torch.tensor(data.mean, device=device).view(1, -1, 1, 1),
            torch.tensor(data.std, device=device).view(1, -1, 1, 1))


def test_indices(data: TensorData, recipe: Recipe) -> torch.Tensor:
    """The recipe's test images, as indices into the dataset's test split."""
    return stratified_subset(data.test_y, recipe.test_subset, SUBSET_SEED)


def evaluate(model: nn.Module, data: TensorData, recipe: Recipe, opts: TrainOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode logits of `model` on the recipe's test set, and that set's labels."""
    test_idx = test_indices(data, recipe)
    test_x, test_y = data.test_x[test_idx].to(opts.device), data.test_y[test_idx].to(opts.device)
    return predict(model, test_x, *normalization(data, opts.device), opts), test_y


def forward(model: nn.Module, x: torch.Tensor, opts: TrainOptions) -> torch.Tensor:
    """The model on a normalised batch, in the memory format and precision the options ask for."""
    if opts.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(opts.device.type, dtype=torch.bfloat16) if opts.amp else nullcontext()
    with autocast:
        return model(x)
