"""Inference throughput (a full batch) and latency (batch 1) of every model in the tier, by pytest-benchmark."""
import os
import time

import pytest
import torch

from zoo.measure.costs import LoadMonitor, count_gmacs, median_seconds, synchronize
from zoo.records.record import Record
from zoo.runs.runner import speed_record
from zoo.training.data import normalize
from zoo.training.registry import build_model

pytestmark = pytest.mark.speed
ROUND_BUDGET_S = 1.0  # rounds are chosen to fill about this much time, between 5 and 200


def throughput_batch(model, input_shape, device) -> int:
    """512 on a GPU; on a CPU 64, or 8 for models over 1 GMAC per image (a round stays near a second)."""
    if device.type == "cuda":
        return 512
    return 64 if count_gmacs(model, input_shape)[0] < 1 else 8


@pytest.mark.parametrize("batch", ["throughput", "latency"])
def test_inference(model_case, batch, bench, benchmark):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("throughput benchmarks run serially, never under xdist")
    dataset, spec = model_case
    device, opts = bench.session.opts.device, bench.session.opts
    data = bench.session.dataset(dataset)
    torch.manual_seed(0)
    model = build_model(spec, data.num_classes).to(device).eval()
    size = 1 if batch == "latency" else throughput_batch(model, data.input_shape, device)
    x = normalize(data.test_x[:size].to(device), torch.tensor(data.mean, device=device).view(1, -1, 1, 1),
                  torch.tensor(data.std, device=device).view(1, -1, 1, 1))
    if opts.channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if opts.compile else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.amp)

    def infer():
        with torch.inference_mode(), autocast:
            forward(x)
        synchronize(device)

    def measure(timer) -> Record:
        infer()  # first call: allocations, compilation
        start = time.perf_counter()
        infer()
        rounds = max(5, min(200, int(ROUND_BUDGET_S / (time.perf_counter() - start))))
        probe = bench.session.probe.window()
        with LoadMonitor() as load:
            seconds = timer(rounds)
        probe.sample()
        return speed_record(spec, dataset, size, seconds, rounds, load.result, probe.rate, bench.tier, bench.session)

    def by_pytest_benchmark(rounds: int) -> float:
        benchmark.pedantic(infer, warmup_rounds=2, rounds=rounds, iterations=1)
        return benchmark.stats.stats.median

    def by_hand(rounds: int) -> float:  # the confirming rerun: pytest-benchmark times a test once
        return median_seconds(infer, rounds, warmup=2)

    bench.finish(measure(by_pytest_benchmark), remeasure=lambda: measure(by_hand))
