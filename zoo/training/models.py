"""The study's small models: the MNIST MLPs and the 5-layer CIFAR CNN."""
from __future__ import annotations

import torch.nn as nn

from zoo.training.registry import register_model


class MLP(nn.Module):
    """Fully connected net on flattened 28x28 images: 784 -> hidden... -> classes, ReLU and dropout."""

    def __init__(self, hidden: tuple[int, ...], dropout: float, num_classes: int = 10, in_features: int = 784):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class CNN5(nn.Module):
    """The study's 5-layer CNN: three conv3x3-BN-maxpool-ReLU stages (32, 64, 128) and two FC layers."""

    def __init__(self, dropout: float = 0.5, num_classes: int = 10, widths: tuple[int, int, int] = (32, 64, 128)):
        super().__init__()
        stages: list[nn.Module] = []
        channels = 3
        for w in widths:
            stages += [nn.Conv2d(channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.MaxPool2d(2), nn.ReLU(inplace=True)]
            channels = w
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * 4 * 4, 128),
            nn.BatchNorm1d(128),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model
def mlp1200(num_classes: int = 10, dropout: float = 0.8) -> MLP:
    """The study's MNIST teacher, 784-1200-1200-10; `dropout` is PyTorch's drop probability (study: 0.8)."""
    return MLP((1200, 1200), dropout, num_classes)


@register_model
def mlp800(num_classes: int = 10, dropout: float = 0.0) -> MLP:
    """The study's MNIST student, 784-800-800-10, no dropout."""
    return MLP((800, 800), dropout, num_classes)


@register_model
def cnn5(num_classes: int = 10, dropout: float = 0.5) -> CNN5:
    """The study's 5-layer CIFAR CNN (357,514 parameters); `dropout` before the last FC (study: 0.5 or 0)."""
    return CNN5(dropout, num_classes)
