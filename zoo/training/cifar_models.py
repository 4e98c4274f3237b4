"""The study's deep CIFAR models: ResNet-18, WRN-28-10, PreResNet-110, DenseNet-BC-100 and ResNeXt-29 8x64d.

All take 3x32x32 inputs. Three network classes are shared: `ResNet` (post-activation, any block),
`PreActResNet` (pre-activation, used by WRN and PreResNet) and `DenseNet`; the entrypoints only
choose their arguments. Each network keeps its stem, its stages and its head as named submodules
so that distillers can take features with forward hooks.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.training.registry import register_model

BlockFactory = Callable[[int, int, int], nn.Module]


def conv3x3(in_ch: int, out_ch: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias."""
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


def projection(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Shortcut of a post-activation block: identity, or 1x1 conv + BN where the shape changes."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))


def make_stages(block: BlockFactory, in_ch: int, depths: tuple[int, ...], widths: tuple[int, ...]) -> nn.Sequential:
    """Stages of `block`; the first keeps the resolution, each later one halves it in its first block."""
    stages = []
    for i, (depth, width) in enumerate(zip(depths, widths)):
        blocks = [block(in_ch, width, 1 if i == 0 else 2)]
        blocks += [block(width, width, 1) for _ in range(depth - 1)]
        stages.append(nn.Sequential(*blocks))
        in_ch = width
    return nn.Sequential(*stages)


def init_weights(model: nn.Module) -> None:
    """He-normal convolutions, unit BN scale, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


class BasicBlock(nn.Module):
    """Post-activation residual block: conv3x3-BN-ReLU-conv3x3-BN, add shortcut, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = projection(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNeXtBlock(nn.Module):
    """Post-activation ResNeXt bottleneck: 1x1 reduce, grouped 3x3, 1x1 expand, add shortcut, ReLU.

    The inner width is `out_ch * cardinality // widen_factor`, as in the CIFAR ResNeXt of
    Xie et al. (cardinality 8, widen factor 4 gives 8 groups of 64 channels in the first stage).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, cardinality: int = 8, widen_factor: int = 4):
        super().__init__()
        inner = out_ch * cardinality // widen_factor
        self.conv1 = conv1x1(in_ch, inner)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = conv3x3(inner, inner, stride, groups=cardinality)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = conv1x1(inner, out_ch)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.shortcut = projection(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Post-activation CIFAR ResNet: 3x3 conv-BN-ReLU stem, stages of `block`, global average pool, linear."""

    def __init__(
        self,
        block: BlockFactory,
        depths: tuple[int, ...],
        widths: tuple[int, ...],
        stem_width: int = 64,
        num_classes: int = 10,
    ):
        super().__init__()
        self.stem = nn.Sequential(conv3x3(3, stem_width), nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True))
        self.stages = make_stages(block, stem_width, depths, widths)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class PreActBlock(nn.Module):
    """Pre-activation residual block: BN-ReLU-conv3x3, BN-ReLU, dropout, conv3x3, add shortcut.

    Where the shape changes the shortcut is a 1x1 conv, fed with the pre-activated input when
    `preact_shortcut` (wide ResNets) or with the raw input otherwise (He et al.'s PreResNet as
    bearpaw/pytorch-classification builds it).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dropout: float = 0.0, preact_shortcut: bool = False):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.conv2 = conv3x3(out_ch, out_ch)
        self.shortcut = None if stride == 1 and in_ch == out_ch else conv1x1(in_ch, out_ch, stride)
        self.preact_shortcut = preact_shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn1(x))
        out = self.conv1(act)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        if self.shortcut is None:
            return out + x
        return out + self.shortcut(act if self.preact_shortcut else x)


class PreActResNet(nn.Module):
    """Pre-activation CIFAR ResNet: 3x3 conv stem, stages of `PreActBlock`, BN-ReLU, global average pool, linear.

    Covers He et al.'s PreResNet and Zagoruyko & Komodakis's wide ResNets (wider stages, dropout).
    """

    def __init__(
        self,
        depths: tuple[int, ...],
        widths: tuple[int, ...],
        stem_width: int = 16,
        dropout: float = 0.0,
        preact_shortcut: bool = False,
        num_classes: int = 10,
    ):
        super().__init__()
        self.stem = conv3x3(3, stem_width)
        block = partial(PreActBlock, dropout=dropout, preact_shortcut=preact_shortcut)
        self.stages = make_stages(block, stem_width, depths, widths)
        self.bn = nn.BatchNorm2d(widths[-1])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.stages(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class DenseLayer(nn.Module):
    """DenseNet-BC layer: BN-ReLU-conv1x1 to `bottleneck` channels, then BN-ReLU-conv3x3 to `growth` new ones.

    Its output is the input with the new channels appended.
    """

    def __init__(self, in_ch: int, growth: int, bottleneck: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = conv1x1(in_ch, bottleneck)
        self.bn2 = nn.BatchNorm2d(bottleneck)
        self.conv2 = conv3x3(bottleneck, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([x, out], 1)


class Transition(nn.Module):
    """DenseNet transition: BN-ReLU-conv1x1 then 2x2 average pooling."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_ch)
        self.conv = conv1x1(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    """CIFAR DenseNet-BC: 3x3 conv stem of 2*growth channels, dense blocks, BN-ReLU, global average pool, linear.

    Each block has (depth - 4) / 6 layers for three blocks; transitions between blocks keep a
    `compression` fraction of the channels and halve the resolution.
    """

    def __init__(
        self,
        depth: int = 100,
        growth: int = 12,
        compression: float = 0.5,
        num_blocks: int = 3,
        bottleneck_factor: int = 4,
        num_classes: int = 10,
    ):
        super().__init__()
        layers_per_block = (depth - 4) // (2 * num_blocks)
        in_ch = 2 * growth
        self.stem = conv3x3(3, in_ch)
        stages = []
        for i in range(num_blocks):
            layers = []
            for _ in range(layers_per_block):
                layers.append(DenseLayer(in_ch, growth, bottleneck_factor * growth))
                in_ch += growth
            if i < num_blocks - 1:
                out_ch = int(in_ch * compression)
                layers.append(Transition(in_ch, out_ch))
                in_ch = out_ch
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(in_ch)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.stages(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


@register_model
def resnet18(num_classes: int = 10) -> ResNet:
    """ResNet-18 with a CIFAR stem (3x3 conv, no max-pool); 11,173,962 parameters."""
    return ResNet(BasicBlock, (2, 2, 2, 2), (64, 128, 256, 512), num_classes=num_classes)


@register_model
def wrn28_10(num_classes: int = 10, dropout: float = 0.3) -> PreActResNet:
    """Wide ResNet 28-10, dropout between the convs of each block; 36,479,194 parameters."""
    return PreActResNet((4, 4, 4), (160, 320, 640), dropout=dropout, preact_shortcut=True, num_classes=num_classes)


@register_model
def preresnet110(num_classes: int = 10) -> PreActResNet:
    """Pre-activation ResNet-110, basic blocks, 18 per stage at 16/32/64 channels; 1,730,522 parameters."""
    return PreActResNet((18, 18, 18), (16, 32, 64), num_classes=num_classes)


@register_model
def densenet100(num_classes: int = 10) -> DenseNet:
    """DenseNet-BC-100, growth rate 12, compression 0.5; 769,162 parameters."""
    return DenseNet(depth=100, growth=12, compression=0.5, num_classes=num_classes)


@register_model
def resnext29_8x64d(num_classes: int = 10) -> ResNet:
    """ResNeXt-29, cardinality 8, base width 64 (3 stages of 3 bottlenecks, 256/512/1024 out); 34,426,698 parameters."""
    block = partial(ResNeXtBlock, cardinality=8, widen_factor=4)
    return ResNet(block, (3, 3, 3), (256, 512, 1024), num_classes=num_classes)
