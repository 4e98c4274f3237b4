"""Inference throughput (a full batch) and latency (batch 1) of every model in the tier, by pytest-benchmark."""
import time

import pytest

from zoo.measure.costs import LoadMonitor, round_seconds
from zoo.records.record import Record
from zoo.runs.row_records import speed_record
from zoo.timing.inference import LATENCY, THROUGHPUT, InferenceCase

ROUND_BUDGET_S = 1.0  # rounds are chosen to fill about this much time, between 5 and 200


@pytest.mark.speed
@pytest.mark.parametrize("batch", [THROUGHPUT, LATENCY])
def test_inference(model_case, batch, bench, benchmark):
    dataset, spec = model_case
    case = InferenceCase.build(spec, bench.session.dataset(dataset), batch, bench.session.opts)

    def measure(timer) -> Record:
        case.infer()  # first call: allocations, compilation
        start = time.perf_counter()
        case.infer()
        rounds = max(5, min(200, int(ROUND_BUDGET_S / (time.perf_counter() - start))))
        probe = bench.session.probe.window()
        with LoadMonitor() as load:
            seconds = timer(rounds)
        probe.sample()
        return speed_record(spec, dataset, case.batch, seconds, load.result, probe.rate, bench.tier, bench.session)

    def by_pytest_benchmark(rounds: int) -> list[float]:
        benchmark.pedantic(case.infer, warmup_rounds=2, rounds=rounds, iterations=1)
        return list(benchmark.stats.stats.data)

    def by_hand(rounds: int) -> list[float]:  # the confirming rerun: pytest-benchmark times a test once
        return round_seconds(case.infer, rounds, warmup=2)

    bench.finish(measure(by_pytest_benchmark), remeasure=lambda: measure(by_hand))
