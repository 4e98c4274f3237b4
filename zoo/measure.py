"""Cost measurements of a model: parameters, multiply-adds (fvcore), throughput, peak memory."""
from __future__ import annotations

import logging
import resource
import time

import torch
import torch.nn as nn


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_gmacs(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[float, dict[str, int]]:
    """Forward multiply-adds for one input of `input_shape` (no batch dim), in GMACs.

    fvcore counts one multiply-add as one "flop"; the column is therefore named GMACs.
    Returns the count and fvcore's unsupported ops (op name -> occurrences), which it skips.
    """
    from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    analysis = FlopCountAnalysis(model, torch.zeros(1, *input_shape, device=device))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    logging.getLogger("fvcore.nn.jit_analysis").setLevel(logging.ERROR)
    total = analysis.total() / 1e9
    unsupported = dict(analysis.unsupported_ops())
    model.train(was_training)
    return total, unsupported


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory so far: CUDA max allocated on a GPU, else the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def calibrate(device: torch.device, repeats: int = 6) -> float:
    """GFLOP/s of a fixed workload (fp32 matmul + 3x3 conv, forward and backward) on `device`.

    Throughput gates divide images/s by this, so a baseline recorded on a faster or slower machine
    still applies: what is compared is the work the code gets out of the hardware. Best of `repeats`
    (the least disturbed by other processes).
    """
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(1024, 1024, generator=generator).to(device).requires_grad_()
    b = torch.randn(1024, 1024, generator=generator).to(device)
    x = torch.randn(64, 32, 32, 32, generator=generator).to(device).requires_grad_()
    w = torch.randn(64, 32, 3, 3, generator=generator).to(device).requires_grad_()
    flops = 3 * (2 * 1024**3) + 3 * (2 * 64 * 32 * 32 * 64 * 32 * 9)  # forward + two backward products

    def workload():
        (a @ b).sum().backward()
        torch.nn.functional.conv2d(x, w, padding=1).sum().backward()

    workload()  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        workload()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return flops / min(times) / 1e9
