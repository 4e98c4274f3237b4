"""Regression gates: each check compares one metric of a run with its baseline.

  Exact       params and GMACs must equal the baseline (an architecture change is never noise).
  Spread      accuracy-like metrics: the run's mean may fall short of the baseline's mean by at most
              K_SIGMA pooled seed standard deviations of the difference of two means,
              K * s * sqrt(1/n_run + 1/n_base), and never less than the metric's floor. The student's
              KL to its teacher is compared on a log scale, where rows with different T pool well.
  Ratio       throughput normalised by a calibration workload timed just before the run must stay
              above MIN_SPEED_RATIO of the baseline's (medians over seeds); batch-1 latency above
              MIN_LATENCY_RATIO.
  LossFalls   smoke rows: the training loss of the last epoch is below the first epoch's.
A baseline whose recipe, dataset or schema differ from the run's is refused as incompatible.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from zoo.results import IncompatibleBaselineError, provenance_line
from zoo.stats import mean_std, pooled_std

K_SIGMA = 3.0  # one-sided false-alarm rate ~0.13% per gated metric if the spread is well estimated
MIN_SPEED_RATIO = 0.7  # shared CI machines jitter by 10-20%; a 1.5x slow-down must still fail
MIN_LATENCY_RATIO = 0.5  # batch-1 CPU latency is dispatch overhead, not FLOPs: seen 35% apart between processes


@dataclass
class Finding:
    """The outcome of one check: 'ok', 'regressed' or 'improved'."""

    bench_id: str
    metric: str
    status: str
    measured: float
    baseline: float | None
    tolerance: str
    provenance: str = ""

    def message(self) -> str:
        return (f"{self.bench_id}: {self.metric} {self.status}: measured {_fmt(self.measured)}, "
                f"baseline {_fmt(self.baseline)} ({self.tolerance}); baseline from {self.provenance}")


def _fmt(value) -> str:
    return "n/a" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))


@dataclass
class Exact:
    metric: str

    def check(self, run: dict, base: dict, spreads: dict) -> Finding | None:
        if self.metric not in base["metrics"]:
            return None
        measured, expected = run["metrics"][self.metric], base["metrics"][self.metric]
        same = math.isclose(measured, expected, rel_tol=1e-9, abs_tol=0)
        return Finding(run["id"], self.metric, "ok" if same else "regressed", measured, expected, "must be equal")


@dataclass
class Spread:
    metric: str
    higher_is_better: bool
    floor: float  # minimum tolerance, in the (possibly log-transformed) metric's unit
    log: bool = False  # compare log values: for positive metrics whose scale differs between rows

    def values(self, record: dict) -> list[float] | None:
        values = record["metrics"].get(self.metric)
        if not values:
            return None
        return [math.log(max(v, 1e-12)) for v in values] if self.log else list(values)

    def check(self, run: dict, base: dict, spreads: dict) -> Finding | None:
        run_values, base_values = self.values(run), self.values(base)
        if run_values is None or base_values is None:
            return None
        measured, _ = mean_std(run_values)
        expected, _ = mean_std(base_values)
        sigma, df = spreads.get(self.metric, (None, 0))
        n_run, n_base = len(run_values), len(base_values)
        floor = self.floor
        if sigma is None:
            tol, how = floor, f"floor {floor:.3g}: no seed spread in the baselines"
        else:
            tol = max(floor, K_SIGMA * sigma * math.sqrt(1 / n_run + 1 / n_base))
            how = (f"tolerance {tol:.3g} = max(floor {floor:.3g}, {K_SIGMA:g} x pooled sd {sigma:.3g} "
                   f"[df {df}] x sqrt(1/{n_run} + 1/{n_base}))")
        delta = measured - expected if self.higher_is_better else expected - measured
        status = "regressed" if delta < -tol else "improved" if delta > tol else "ok"
        if self.log:  # report in the metric's own unit: geometric means, tolerance as a factor
            measured, expected, how = math.exp(measured), math.exp(expected), f"log scale, factor {math.exp(tol):.3g}; {how}"
        return Finding(run["id"], self.metric, status, measured, expected, how)


@dataclass
class Ratio:
    metric: str
    min_ratio: float

    def check(self, run: dict, base: dict, spreads: dict) -> Finding | None:
        if not run["metrics"].get(self.metric) or not base["metrics"].get(self.metric):
            return None
        measured = statistics.median(run["metrics"][self.metric])  # robust to one disturbed seed
        expected = statistics.median(base["metrics"][self.metric])
        ratio = measured / expected
        status = "regressed" if ratio < self.min_ratio else "ok"
        return Finding(run["id"], self.metric, status, measured, expected,
                       f"ratio {ratio:.2f}, must be >= {self.min_ratio}; normalised by calibration GFLOP/s")


@dataclass
class LossFalls:
    """Absolute check for smoke rows, where accuracy after a few steps is noise."""

    metric: str = "train_loss_drop"

    def check(self, run: dict, base: dict | None, spreads: dict) -> Finding | None:
        if run["metrics"].get(self.metric) is None:
            return None
        worst = min(run["metrics"][self.metric])
        return Finding(run["id"], self.metric, "ok" if worst > 0 else "regressed", worst, None,
                       "first-epoch minus last-epoch training loss must be > 0")


CHECKS = [
    Exact("params"),
    Exact("gmacs"),
    Spread("test_accuracy", higher_is_better=True, floor=0.1),
    Spread("teacher_kl", higher_is_better=False, floor=math.log(1.1), log=True),
    Ratio("train_throughput_norm", MIN_SPEED_RATIO),
    Ratio("infer_throughput_norm", MIN_SPEED_RATIO),
    Ratio("latency_throughput_norm", MIN_LATENCY_RATIO),
    Ratio("loader_speedup", MIN_SPEED_RATIO),
]


def ensure_compatible(run: dict, base: dict, path) -> None:
    """Refuse a baseline that measured something else than this run."""
    for key in ("kind", "tier", "dataset", "device", "recipe_hash", "dataset_fingerprint"):
        if run.get(key) != base.get(key):
            raise IncompatibleBaselineError(
                f"{run['id']}: baseline {path} was recorded with {key}={base.get(key)!r}, this run has "
                f"{run.get(key)!r}; it measured something else. Re-record it with --update-baselines "
                f"(baseline from {provenance_line(base)})")


def seed_spreads(baselines: list[dict]) -> dict[str, tuple[float | None, int]]:
    """Pooled seed standard deviation of each spread-gated metric over a set of baselines."""
    spreads = {}
    for check in CHECKS:
        if isinstance(check, Spread):
            groups = [values for b in baselines if (values := check.values(b))]
            spreads[check.metric] = pooled_std(groups)
    return spreads


def compare(run: dict, base: dict | None, spreads: dict) -> list[Finding]:
    """All findings of one run against its baseline (None: only the absolute checks run)."""
    findings = [LossFalls().check(run, base, spreads)]
    if base is not None:
        findings += [check.check(run, base, spreads) for check in CHECKS]
    for finding in findings:
        if finding is not None and base is not None:
            finding.provenance = provenance_line(base)
    return [f for f in findings if f is not None]
