"""Data-free KD from metadata (Lopes, Fenu & Starner 2017, arXiv:1710.07535), for fully connected teachers.

Metadata: statistics of the teacher's activations, recorded once on its training set. "top-layer"
keeps, per class, the mean and sd of every logit; "all-layers" also those of every unit of the named
hidden layers. The transfer set is reconstructed from the metadata alone: per class, inputs start as
noise and are optimised (Adam) until the teacher's activations match a draw from that class's
statistics (each unit independently: the diagonal of the paper's Gaussians). No training image is read
after the metadata is recorded. The student is then distilled on the reconstructions with the row's
Hinton settings; their labels are the classes they were drawn for (unused when the row is unlabeled).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from zoo.training.data import normalize
from zoo.training.distill.base import FeatureTaps
from zoo.training.distill.hinton import HintonKD
from zoo.training.distill.registry import register_distiller

TOP = "logits"


def activation_metadata(teacher: nn.Module, images: torch.Tensor, labels: torch.Tensor, layers: tuple[str, ...],
                        norm: tuple[torch.Tensor, torch.Tensor], batch_size: int = 2000) -> dict[str, torch.Tensor]:
    """Per class, the mean and sd of the logits and of each named layer's units: {layer: (2, classes, units)}."""
    classes = int(labels.max()) + 1
    sums: dict[str, torch.Tensor] = {}
    squares: dict[str, torch.Tensor] = {}
    counts = torch.bincount(labels.cpu(), minlength=classes).double().unsqueeze(1)
    teacher.eval()
    with FeatureTaps(teacher, layers) as taps, torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = normalize(images[start:start + batch_size], *norm)
            y = labels[start:start + batch_size].cpu()
            outputs = {TOP: teacher(x)} | taps.outputs
            for name, value in outputs.items():
                value = value.flatten(1).double().cpu()
                for store, v in ((sums, value), (squares, value**2)):
                    store.setdefault(name, torch.zeros(classes, value.shape[1], dtype=torch.float64))
                    store[name].index_add_(0, y, v)
    stats = {}
    for name in sums:
        mean = sums[name] / counts
        sd = (squares[name] / counts - mean**2).clamp(min=0).sqrt()
        stats[name] = torch.stack([mean, sd]).float()
    return stats


def reconstruct(teacher: nn.Module, metadata: dict[str, torch.Tensor], layers: tuple[str, ...], per_class: int,
                steps: int, input_shape: tuple[int, ...], norm: tuple[torch.Tensor, torch.Tensor],
                generator: torch.Generator, lr: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and their classes whose teacher activations match draws from `metadata`."""
    mean, std = norm
    device = mean.device
    classes = metadata[TOP].shape[1]
    labels = torch.arange(classes, device=device).repeat_interleave(per_class)
    targets = {name: stats[0].to(device)[labels] + stats[1].to(device)[labels]
               * torch.randn(len(labels), stats.shape[2], generator=generator, device=device)
               for name, stats in metadata.items()}
    scale = {name: stats[1].to(device)[labels].clamp(min=1e-3) for name, stats in metadata.items()}
    x = torch.randn(len(labels), *input_shape, generator=generator, device=device).requires_grad_(True)
    low, high = (0 - mean) / std, (1 - mean) / std
    optimizer = torch.optim.Adam([x], lr=lr)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    try:
        with FeatureTaps(teacher, layers) as taps:
            for _ in range(steps):
                outputs = {TOP: teacher(x)} | taps.outputs
                loss = sum((((outputs[n].flatten(1) - targets[n]) / scale[n]) ** 2).mean() for n in targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    x.copy_(torch.maximum(torch.minimum(x, high), low))
    finally:
        for p in teacher.parameters():
            p.requires_grad_(True)
    pixels = ((x.detach() * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    return pixels, labels


@register_distiller
class DataFreeKD(HintonKD):
    """Options: layers (hidden layers whose statistics are kept; () is the top-layer variant),
    images_per_class and steps of the reconstruction. The loss on the reconstructions is HintonKD's."""

    name = "data-free"
    synthesizes_transfer_set = True
    spread_family = "data-free"  # every seed draws its own transfer set

    def __init__(self, settings):
        super().__init__(settings)
        options = dict(settings.options)
        self.layers: tuple[str, ...] = tuple(options.get("layers", ()))
        self.per_class, self.steps = int(options["images_per_class"]), int(options["steps"])

    def transfer_set(self, teacher, images, labels, norm, generator):
        metadata = activation_metadata(teacher, images, labels, self.layers, norm)
        return reconstruct(teacher, metadata, self.layers, self.per_class, self.steps, tuple(images.shape[1:]),
                           norm, generator)
