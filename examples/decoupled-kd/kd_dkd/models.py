"""The student: a two-hidden-layer MLP with batch normalisation, registered with kdbench's model registry."""
import torch.nn as nn

from zoo.training.registry import register_model


@register_model
def dkd_mlp_bn(num_classes: int = 10, hidden: int = 400) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
