"""Export result records as Bencher Metric Format (BMF) JSON, for teams that outgrow a file.

    {"kdbench/quick/mnist/cpu/mnist-mlp800-kd-lr0.01": {"accuracy": {"value": 94.1, "lower_value": 94.0,
                                                                      "upper_value": 94.2}, ...}}

One Benchmark per (tier, dataset, device, row); one Measure per metric, named by a slug of at most 64
characters (BMF's limit). Seed metrics carry mean - sd and mean + sd as lower and upper values; a
single value carries none. Measures are custom ones: accuracy and throughput are higher-is-better,
which the Bencher project's measure settings must say (its built-in `latency` is in ns, so batch-1
speed is exported as `batch1-images-per-s`, not as `latency`). Upload with
`bencher run --adapter json --file kdbench-bmf.json`.
"""
from __future__ import annotations

import statistics

from zoo.records.metrics import METRICS
from zoo.records.record import Record

MEASURES = {m.name: m.export for m in METRICS.values() if m.export}
"""kdbench metric -> BMF measure slug (the metric table's `export`)."""


def benchmark_name(record: Record) -> str:
    return f"kdbench/{record.tier}/{record.dataset}/{record.device}/{record.id}"


def to_bmf(records: list[Record]) -> dict:
    """BMF JSON for `records` (a later record of the same row replaces an earlier one)."""
    report: dict[str, dict] = {}
    for record in records:
        measures = {}
        for metric, slug in MEASURES.items():
            values = [float(v) for v in record.values(metric) or []]
            if not values:
                continue
            metric_value = {"value": statistics.fmean(values)}
            if len(values) > 1:
                sd = statistics.stdev(values)
                metric_value |= {"lower_value": metric_value["value"] - sd, "upper_value": metric_value["value"] + sd}
            measures[slug] = metric_value
        report[benchmark_name(record)] = measures
    return report
