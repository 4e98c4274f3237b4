"""Seed statistics: summaries, pooled spread, Welch's test and what n seeds can detect."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

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


OUTLIER_P = 0.001
"""A row whose seed variance exceeds the others' pooled variance at this F-test level is left out of the pool."""


@dataclass
class Pool:
    """A pooled seed spread: the sd, its degrees of freedom, and which rows went in or were left out."""

    sigma: float | None
    df: int
    rows: list[str]
    excluded: dict[str, float]  # row -> its own sd, left out as an outlier

    def describe(self) -> str:
        text = f"pooled over {len(self.rows)} rows"
        if self.excluded:
            text += "; left out as outliers: " + ", ".join(f"{r} (sd {sd:.3g})" for r, sd in self.excluded.items())
        return text


def robust_pool(groups: dict[str, list[float]]) -> Pool:
    """Pooled seed sd over rows, leaving out rows whose spread is an outlier.

    One diverged seed in one sibling row would otherwise widen every row's tolerance: the row with the
    largest variance is dropped while an F-test says its variance exceeds the pooled variance of the
    remaining rows (p < OUTLIER_P), then the next, and so on.
    """
    rows = {r: v for r, v in groups.items() if len(v) > 1}
    excluded: dict[str, float] = {}
    while len(rows) > 1:
        worst = max(rows, key=lambda r: statistics.variance(rows[r]))
        rest = [v for r, v in rows.items() if r != worst]
        sigma_rest, df_rest = pooled_std(rest)
        var_worst, df_worst = statistics.variance(rows[worst]), len(rows[worst]) - 1
        if sigma_rest is None or df_rest == 0:
            break
        limit = _scipy.f.ppf(1 - OUTLIER_P, df_worst, df_rest) * sigma_rest**2
        if var_worst <= limit:
            break
        excluded[worst] = math.sqrt(var_worst)
        del rows[worst]
    sigma, df = pooled_std(list(rows.values()))
    return Pool(sigma, df, sorted(rows), excluded)


def false_alarm_rate(k_sigma: float, df: int) -> float:
    """One-sided probability that an unchanged run falls k_sigma estimated sds short (t-distribution, df)."""
    return float(_scipy.t.sf(k_sigma, df))


def welch(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of Welch's t-test that means of `a` and `b` differ (None if undefined)."""
    if len(a) < 2 or len(b) < 2 or (statistics.variance(a) == 0 and statistics.variance(b) == 0):
        return None
    return float(_scipy.ttest_ind(a, b, equal_var=False).pvalue)


def welch_one_sided(a: list[float], b: list[float], margin: float = 0.0) -> float | None:
    """One-sided p-value of Welch's t-test that mean(a) - mean(b) > -margin (None if undefined)."""
    if len(a) < 2 or len(b) < 2 or (statistics.variance(a) == 0 and statistics.variance(b) == 0):
        return None
    return float(_scipy.ttest_ind([v + margin for v in a], b, equal_var=False, alternative="greater").pvalue)


def minimum_detectable_effect(sigma: float, n_per_arm: int) -> float:
    """Smallest true difference of means that n seeds per arm detect with 80% power at alpha 0.05."""
    return (Z_ALPHA_TWO_SIDED + Z_POWER) * sigma * math.sqrt(2 / n_per_arm)


def seeds_needed(sigma: float, effect: float) -> int:
    """Seeds per arm to detect `effect` with 80% power at alpha 0.05 (normal approximation)."""
    return math.ceil(2 * ((Z_ALPHA_TWO_SIDED + Z_POWER) * sigma / effect) ** 2)
