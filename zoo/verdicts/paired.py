"""The paired speed verdict: per pair of blocks timed back to back, the ratio candidate / base; a
distribution-free test on those ratios decides.

A slow phase of the host (a busy neighbour, a CPU quota, a thermal or frequency step) lasts far longer than
one pair, so it slows both halves of a pair alike and the pair's ratio keeps only what the code changed.
The ratios are judged on a log scale with Wilcoxon's signed-rank statistic, exactly (no normal
approximation):

  estimate   the Hodges-Lehmann ratio: exp of the median of the Walsh averages of the log-ratios
  interval   its distribution-free confidence bounds (the Walsh averages at the signed-rank critical values);
             one-sided level 1 - alpha on each side
  FAIL       (regressed) the lower bound is above the margin: slower than `margin` with significance; and the
             median pair says so too (a few outlying pairs cannot carry it). The test takes the pairs as
             independent: zoo.paired.session runs every pair in a fresh pair of processes, because one
             computation runs at a speed of its own in each process (seen up to 10% apart on this VM)
  IMPROVED   the upper bound is below 1 / margin, likewise mirrored
  PASS       (ok) otherwise. It is conclusive when the upper bound is at or below the margin (any slowdown is
             smaller than the margin); else the controller adds pairs (zoo.paired.session) and, at the most
             pairs allowed, the finding states the slowdown it could not exclude (its upper bound)

Pure functions of the ratios: no clock is read here (tests/paired/test_paired.py feeds synthetic series).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import cache

from zoo.verdicts.status import Status


@cache
def signed_rank_cdf(n: int) -> tuple[float, ...]:
    """P(W+ <= w) for w = 0 .. n(n+1)/2 under the null (symmetric about 0), exactly, for `n` untied pairs."""
    counts = [1]
    for rank in range(1, n + 1):
        grown = counts + [0] * rank
        for w, c in enumerate(counts):
            grown[w + rank] += c
        counts = grown
    total, running, cdf = 2 ** n, 0, []
    for c in counts:
        running += c
        cdf.append(running / total)
    return tuple(cdf)


def signed_rank_plus(diffs: list[float]) -> float:
    """Wilcoxon's W+: the sum of the ranks of |d| over the positive d (zeros dropped, ties get mean ranks)."""
    nonzero = sorted((abs(d), d > 0) for d in diffs if d != 0)
    total, i = 0.0, 0
    while i < len(nonzero):
        j = i
        while j + 1 < len(nonzero) and nonzero[j + 1][0] == nonzero[i][0]:
            j += 1
        mean_rank = (i + j + 2) / 2
        total += mean_rank * sum(positive for _, positive in nonzero[i:j + 1])
        i = j + 1
    return total


def p_greater(diffs: list[float]) -> float:
    """One-sided exact p of the signed-rank test that the diffs are centred above 0."""
    n = sum(d != 0 for d in diffs)
    if n == 0:
        return 1.0
    cdf = signed_rank_cdf(n)
    w = signed_rank_plus(diffs)
    below = math.ceil(w) - 1  # P(W+ >= w) = 1 - P(W+ <= ceil(w) - 1)
    return 1.0 - (cdf[below] if below >= 0 else 0.0)


def walsh_averages(logs: list[float]) -> list[float]:
    """Every (x_i + x_j) / 2 for i <= j, sorted: their median is the Hodges-Lehmann estimate of the centre."""
    n = len(logs)
    return sorted((logs[i] + logs[j]) / 2 for i in range(n) for j in range(i, n))


def walsh_bounds(logs: list[float], alpha: float, walsh: list[float] | None = None) -> tuple[float, float]:
    """One-sided level 1 - alpha lower and upper confidence bounds of the centre of `logs` (Walsh averages at the
    signed-rank critical value); (-inf, inf) when n pairs are too few for that level (2^-n > alpha)."""
    cdf = signed_rank_cdf(len(logs))
    k = 0  # the largest k with P(W+ <= k - 1) <= alpha
    while k < len(cdf) and cdf[k] <= alpha:
        k += 1
    if k == 0:
        return -math.inf, math.inf
    walsh = walsh if walsh is not None else walsh_averages(logs)
    return walsh[k - 1], walsh[len(walsh) - k]


@dataclass(frozen=True)
class PairedSpeed:
    """What the pairs of one block say: estimate, interval and tests, as ratios candidate / base (above 1: slower)."""

    ratios: tuple[float, ...]
    margin: float
    alpha: float
    estimate: float  # Hodges-Lehmann
    median: float
    low: float  # one-sided 1 - alpha bounds
    high: float
    p_slower: float  # one-sided p: slower than the margin

    @property
    def n(self) -> int:
        return len(self.ratios)

    @property
    def status(self) -> Status:
        """REGRESSED, IMPROVED or OK; see the module's docstring."""
        if self.low > self.margin and self.median > self.margin:
            return Status.REGRESSED
        if self.high < 1 / self.margin and self.median < 1 / self.margin:
            return Status.IMPROVED
        return Status.OK

    @property
    def conclusive(self) -> bool:
        """A change beyond the margin shown, or any slowdown beyond the margin excluded."""
        return self.status != Status.OK or self.high <= self.margin

    def describe(self) -> str:
        text = (f"x{self.estimate:.3f} (median pair x{self.median:.3f}; {1 - self.alpha:.0%} bounds "
                f"x{self.low:.3f}..x{self.high:.3f}; p slower than x{self.margin:g} = {self.p_slower:.2g}; "
                f"{self.n} pairs)")
        if not self.conclusive:
            text += f"; inconclusive: a slowdown up to x{self.high:.3f} is not excluded"
        return text


def judge_pairs(ratios: list[float], margin: float, alpha: float) -> PairedSpeed:
    """The paired verdict on independent per-pair ratios candidate / base. Each ratio must be a positive finite
    number; `margin` > 1 is the slowdown that fails, `alpha` the one-sided level."""
    if not ratios:
        raise ValueError("no pairs to judge: a paired speed verdict needs at least one timed pair")
    if any(isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r <= 0 for r in ratios):
        raise ValueError(f"pair ratios must be positive finite numbers, got {ratios!r}")
    if not margin > 1 or not 0 < alpha < 0.5:
        raise ValueError(f"margin must be > 1 and alpha in (0, 0.5), got margin {margin!r}, alpha {alpha!r}")
    logs = [math.log(r) for r in ratios]
    walsh = walsh_averages(logs)
    low, high = walsh_bounds(logs, alpha, walsh)
    return PairedSpeed(
        ratios=tuple(ratios), margin=margin, alpha=alpha, estimate=math.exp(statistics.median(walsh)),
        median=math.exp(statistics.median(logs)), low=math.exp(low), high=math.exp(high),
        p_slower=p_greater([d - math.log(margin) for d in logs]))
