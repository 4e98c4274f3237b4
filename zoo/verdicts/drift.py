"""Drift over history: change points in a row's per-session means, found by ruptures' PELT.

The snapshot gate compares one run with one baseline; a step after a dependency upgrade, or a slow
decay over many small changes, shows only across nights. Each session contributes the mean over its
seeds. The series is divided by the noise of such a mean (seed sd / sqrt(n) for seed metrics, the
robust night-to-night spread for throughput), so PELT's l2 penalty is in units of that noise: one
step between two segments of n1 and n2 nights is reported when n1*n2/(n1+n2) * (step/noise)^2
exceeds PENALTY (a lone step at one end needs ~4 noise units; 5 nights against 5, 2.5). A step
needs MIN_NIGHTS on each side, so a single bad night is the snapshot gate's business, not drift.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np
import ruptures

from zoo.records.history import History
from zoo.records.store import RecordStore
from zoo.verdicts.gates import row_pool, seed_spreads

PENALTY = 16.0
MIN_NIGHTS = 2
THROUGHPUT_NOISE_FLOOR = 0.03  # relative: 3% between idle nights is not drift


@dataclass
class Step:
    """A change point: the means of the segments before and after `session` (the first night after it)."""

    session: str
    commit: str | None
    before: float
    after: float
    nights_before: int
    nights_after: int

    @property
    def change(self) -> float:
        return self.after - self.before


def change_points(means: list[float], noise: float, min_nights: int = MIN_NIGHTS) -> list[int]:
    """Indices of the first night of each new segment in `means` (empty if too short or noise <= 0)."""
    if len(means) < 2 * min_nights or not noise > 0:
        return []
    signal = np.asarray(means, dtype=float).reshape(-1, 1) / noise
    breaks = ruptures.Pelt(model="l2", min_size=min_nights, jump=1).fit(signal).predict(pen=PENALTY)
    return breaks[:-1]


def steps(points: list[dict], noise: float, log: bool = False) -> list[Step]:
    """Change points over a row's sessions (`History.series` points), each with its segment means."""
    means = [statistics.fmean(math.log(v) if log else v for v in p["values"]) for p in points]
    found, edges = [], [0, *change_points(means, noise), len(means)]
    for start, cut, end in zip(edges, edges[1:], edges[2:]):
        before, after = statistics.fmean(means[start:cut]), statistics.fmean(means[cut:end])
        if log:
            before, after = math.exp(before), math.exp(after)
        found.append(Step(points[cut]["session"], points[cut].get("commit_sha"), before, after, cut - start, end - cut))
    return found


def seed_noise(sigma: float | None, points: list[dict]) -> float:
    """Noise of a session mean of a seed metric: the pooled seed sd over sqrt(the usual seed count)."""
    if not sigma or not points:
        return 0.0
    return sigma / math.sqrt(statistics.median(len(p["values"]) for p in points))


def throughput_noise(points: list[dict]) -> float:
    """Night-to-night noise of log throughput: the robust sd of successive differences / sqrt(2), floored."""
    logs = [math.log(statistics.median(p["values"])) for p in points]
    diffs = [abs(b - a) for a, b in zip(logs, logs[1:])]
    robust = 1.4826 * statistics.median(diffs) / math.sqrt(2) if diffs else 0.0
    return max(robust, math.log(1 + THROUGHPUT_NOISE_FLOOR))


def history_drift(history: History, baselines: RecordStore, only: str | None = None) -> list[tuple[str, str, str, Step]]:
    """(row, metric, machine, step) for every change point in the history: accuracy and teacher KL per row, with
    the noise of a session mean from the row's pooled seed spread over its baselines; training throughput per
    machine (idle sessions only), with the robust night-to-night noise. `only`: one row id."""
    found = []
    pools: dict[tuple, dict] = {}
    for k in history.row_keys():
        if only and k["bench_id"] != only:
            continue
        group = (k["tier"], k["dataset"], k["device"])
        bases = baselines.group(*group).complete().of_kind(k["kind"])
        pools.setdefault(group + (k["kind"],), seed_spreads(bases))
        row_baseline = next((b for b in bases if b.id == k["bench_id"]), None)
        for metric, log in (("test_accuracy", False), ("teacher_kl", True)):
            points = history.series(*group, k["bench_id"], metric)
            pool = row_pool(pools[group + (k["kind"],)], metric, row_baseline)
            sigma = None if pool is None else pool.sigma
            found += [(k["bench_id"], metric, "", step) for step in steps(points, seed_noise(sigma, points), log=log)]
        points = history.series(*group, k["bench_id"], "train_images_per_s")
        for machine in sorted({p["machine"] for p in points}):
            mine = [p for p in points if p["machine"] == machine and not p["busy"]]
            if len(mine) > 1:
                found += [(k["bench_id"], "train_images_per_s", machine, step)
                          for step in steps(mine, throughput_noise(mine), log=True)]
    return found
