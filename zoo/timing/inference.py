"""The inference benchmark's forward pass: a model in eval mode on a fixed batch of test images, as
zoo.suite.inference times it and the paired A/B (zoo.paired) times it beside its base."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from zoo.catalog.recipes import ModelSpec
from zoo.measure.costs import count_gmacs, synchronize
from zoo.training.data import TensorData, normalize
from zoo.training.forward import TrainOptions, forward, normalization
from zoo.training.registry import build_model

THROUGHPUT = "throughput"
LATENCY = "latency"


def throughput_batch(model: nn.Module, input_shape, device: torch.device) -> int:
    """512 on a GPU; on a CPU 64, or 8 for models over 1 GMAC per image (a round stays near a second)."""
    if device.type == "cuda":
        return 512
    return 64 if count_gmacs(model, input_shape)[0] < 1 else 8


@dataclass
class InferenceCase:
    """One model's eval-mode forward pass over a batch of normalised test images, under the run's switches."""

    spec: ModelSpec
    batch: int
    model: nn.Module  # in eval mode, torch.compile'd under --compile
    x: torch.Tensor
    opts: TrainOptions

    @classmethod
    def build(cls, spec: ModelSpec, data: TensorData, batch: str, opts: TrainOptions) -> InferenceCase:
        """`spec` seeded (torch seed 0) on `opts.device`; `batch` is THROUGHPUT (a full batch) or LATENCY (one image)."""
        if batch not in (THROUGHPUT, LATENCY):
            raise ValueError(f"batch must be {THROUGHPUT!r} or {LATENCY!r}, got {batch!r}")
        device = opts.device
        torch.manual_seed(0)
        model = build_model(spec, data.num_classes).to(device).eval()
        size = 1 if batch == LATENCY else throughput_batch(model, data.input_shape, device)
        mean, std = normalization(data, device)
        x = normalize(data.test_x[:size].to(device), mean, std)
        if opts.channels_last:
            model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        return cls(spec, size, torch.compile(model) if opts.compile else model, x, opts)

    def infer(self) -> None:
        """One forward pass as the training loop's evaluation runs it (zoo.training.forward), waited for."""
        with torch.inference_mode():
            forward(self.model, self.x, self.opts)
        synchronize(self.opts.device)
