"""Seed statistics: summaries, pooled spread, one-sided shortfall tests and what n seeds can detect."""
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


def mean_sd_text(values: list[float], digits: int = 2) -> str:
    """'mean ± sd' (just the mean for one value, '' for none)."""
    if not values:
        return ""
    mean, sd = mean_std(values)
    return f"{mean:.{digits}f}" if sd is None else f"{mean:.{digits}f} ± {sd:.{digits}f}"


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
        text = f"pooled over {len(self.rows)} row{'s' if len(self.rows) != 1 else ''}"
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


ALPHA_FAIL = 0.001
"""One-sided level at which a significant drop fails a row: with ~30 gated seed metrics per quick run, an
unchanged tree fails about one night in 30 at worst, when a harmless change redraws every trajectory."""
ALPHA_WARN = 0.05
"""One-sided level at which a significant drop is a WARN: worth a look, never a failure."""
POWER = 0.8
WELCH_MIN_SEEDS = 10
"""Both arms need this many seeds before a row's own variances replace the pooled sd (Welch's test)."""


@dataclass
class Shortfall:
    """How far a run's mean falls short of its baseline's, and what that n of seeds can tell.

    `drop` is oriented so that positive is worse; `p_worse` / `p_better` are the one-sided p-values of
    the drop / the gain under "nothing changed"; `detectable` is the smallest true drop that fails the
    row with probability POWER at ALPHA_FAIL.
    """

    drop: float
    se: float
    df: float
    p_worse: float
    p_better: float
    detectable: float
    method: str


def shortfall(run: list[float], base: list[float], pool_sigma: float, pool_df: int,
              higher_is_better: bool = True) -> Shortfall:
    """One-sided t-test of the run's mean against the baseline's.

    With fewer than WELCH_MIN_SEEDS seeds in an arm (every quick and full row today), a row's own 3-5
    seeds give Welch's test 2-8 degrees of freedom, where t(0.999) is 7-22 and nothing is detectable;
    the seed spread is instead pooled over the rows of the same tier and dataset (`pool_sigma`, df
    `pool_df`, outliers left out by `robust_pool`), which Student's t-test then uses. From
    WELCH_MIN_SEEDS seeds per arm on, Welch's test uses the row's own variances.
    """
    n_run, n_base = len(run), len(base)
    mean_run, mean_base = statistics.fmean(run), statistics.fmean(base)
    drop = (mean_base - mean_run) if higher_is_better else (mean_run - mean_base)
    if min(n_run, n_base) >= WELCH_MIN_SEEDS:
        v_run, v_base = statistics.variance(run) / n_run, statistics.variance(base) / n_base
        se = math.sqrt(v_run + v_base)
        df = (v_run + v_base) ** 2 / (v_run**2 / (n_run - 1) + v_base**2 / (n_base - 1)) if se > 0 else math.inf
        method = f"Welch's t-test, own seeds {n_run}/{n_base}"
    else:
        se = pool_sigma * math.sqrt(1 / n_run + 1 / n_base)
        df = pool_df
        method = f"t-test with the pooled sd {pool_sigma:.3g} [df {pool_df}], seeds {n_run}/{n_base}"
    if se == 0:
        p_worse = 0.0 if drop > 0 else 1.0
        p_better = 0.0 if drop < 0 else 1.0
    else:
        p_worse, p_better = float(_scipy.t.sf(drop / se, df)), float(_scipy.t.cdf(drop / se, df))
    return Shortfall(drop, se, df, p_worse, p_better, detectable_drop(se, df), method)


def detectable_drop(se: float, df: float, alpha: float = ALPHA_FAIL, power: float = POWER) -> float:
    """Smallest true drop that a one-sided t-test at `alpha` detects with `power`, at standard error `se`."""
    return (float(_scipy.t.ppf(1 - alpha, df)) + float(_scipy.t.ppf(power, df))) * se


def gate_detectable_drop(sigma: float, pool_df: float, n_run: int, n_base: int, alpha: float = ALPHA_FAIL,
                         power: float = POWER) -> float:
    """The drop `shortfall` detects with `power` at `alpha` when n_run seeds meet a baseline of n_base, the seed sd
    being `sigma`: the pooled t-test (df `pool_df`) below WELCH_MIN_SEEDS seeds per arm, Welch's test on the arms'
    own spreads from there (taken as `sigma`). What a launch plans seeds by, so that plan and gate agree."""
    se = sigma * math.sqrt(1 / n_run + 1 / n_base)
    if min(n_run, n_base) >= WELCH_MIN_SEEDS:
        df = (1 / n_run + 1 / n_base) ** 2 / (1 / (n_run**2 * (n_run - 1)) + 1 / (n_base**2 * (n_base - 1)))
    else:
        df = pool_df
    return detectable_drop(se, df, alpha, power)


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


def difference_ci(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """mean(a) - mean(b) and the half-width of its Welch confidence interval; None below 2 values per side."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se else 1
    return statistics.fmean(a) - statistics.fmean(b), float(_scipy.t.ppf(0.5 + level / 2, df)) * se


def minimum_detectable_effect(sigma: float, n_per_arm: int) -> float:
    """Smallest true difference of means that n seeds per arm detect with 80% power at alpha 0.05."""
    return (Z_ALPHA_TWO_SIDED + Z_POWER) * sigma * math.sqrt(2 / n_per_arm)


def seeds_needed(sigma: float, effect: float) -> int:
    """Seeds per arm to detect `effect` with 80% power at alpha 0.05 (normal approximation)."""
    return math.ceil(2 * ((Z_ALPHA_TWO_SIDED + Z_POWER) * sigma / effect) ** 2)
