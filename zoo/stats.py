"""Seed statistics: summaries, pooled spread, Welch's test and what n seeds can detect."""
from __future__ import annotations

import math
import statistics

from scipy import stats as _scipy

Z_ALPHA_TWO_SIDED = 1.959964  # alpha = 0.05, two-sided
Z_POWER = 0.841621  # power = 0.8


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def pooled_std(groups: list[list[float]]) -> tuple[float | None, int]:
    """Pooled sample standard deviation over groups of seeds, and its degrees of freedom.

    Rows of one tier and dataset share a training noise level; pooling their seeds estimates it
    far better than the 3 seeds of any single row.
    """
    df = sum(len(g) - 1 for g in groups if len(g) > 1)
    if df == 0:
        return None, 0
    ss = sum(sum((v - statistics.fmean(g)) ** 2 for v in g) for g in groups if len(g) > 1)
    return math.sqrt(ss / df), df


def welch(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of Welch's t-test that means of `a` and `b` differ (None if undefined)."""
    if len(a) < 2 or len(b) < 2 or (statistics.variance(a) == 0 and statistics.variance(b) == 0):
        return None
    return float(_scipy.ttest_ind(a, b, equal_var=False).pvalue)


def minimum_detectable_effect(sigma: float, n_per_arm: int) -> float:
    """Smallest true difference of means that n seeds per arm detect with 80% power at alpha 0.05."""
    return (Z_ALPHA_TWO_SIDED + Z_POWER) * sigma * math.sqrt(2 / n_per_arm)


def seeds_needed(sigma: float, effect: float) -> int:
    """Seeds per arm to detect `effect` with 80% power at alpha 0.05 (normal approximation)."""
    return math.ceil(2 * ((Z_ALPHA_TWO_SIDED + Z_POWER) * sigma / effect) ** 2)
