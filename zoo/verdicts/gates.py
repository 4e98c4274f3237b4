"""Regression gates: each check compares one metric of a run with its baseline.

  Exact       params and GMACs must equal the baseline (an architecture change is never noise); GMACs
              only against a baseline counted by the same fvcore version.
  Spread      seed metrics (accuracy; each distiller's fidelity metric: the student's KL to its teacher,
              the attention-map distance, the hint error): a one-sided t-test of the
              run's mean against the baseline's (zoo.verdicts.stats.shortfall). A drop larger than the
              metric's practical margin fails at p < alpha_fail (0.001) and warns at p < alpha_warn
              (0.05); every finding states the effect, its p-value and the smallest drop its seeds
              detect with 80% power. The seed sd is pooled over the rows of the same tier, dataset and
              device, leaving out rows whose spread is an outlier (zoo.verdicts.stats.robust_pool); rows of a
              spread family of their own (data-free KD redraws its transfer set every seed) pool only
              among themselves (pool_key). The KL is compared on a log scale, where rows with different
              T pool well; so are the feature distances. Seed metrics: accuracy, validation accuracy, the
              omit-a-class rows' corrected accuracies, the fidelity metrics.
  Throughput  images/s divided by the machine probe's rate taken around the same timing (zoo.measure.costs.
              MachineProbe: a fixed numpy workload that a slower host slows and a slower torch or kdbench
              does not), median over seeds, must stay above a fraction of the baseline's (training 0.6;
              inference 0.4, whose millisecond calls vary up to 1.9x between processes; zoo.verdicts.
              thresholds). Training is also judged in CPU time: the median
              epoch's images per CPU-second of the process over the probe's workloads per CPU-second
              of its threads (train_images_per_cpu_s, >= 0.65): a CPU quota or a busy
              neighbour takes CPU-seconds away without changing what one does, a slower host slows
              both sides alike, and a slower torch or kdbench costs CPU-seconds per image. The wall-time
              gate stays for what costs no CPU time (lost parallelism, waiting). Throughput is gated
              only against a baseline from the same machine fingerprint (CPU or GPU model, cores,
              threads, torch version) and probe, and only when neither timing ran on a busy machine;
              it is reported as NOT GATED otherwise (also where the baseline predates the metric),
              never silently passed.
  InRunRatio  kdbench's speed against a reference timed in the same process (engine step vs a plain
              PyTorch loop, data path vs a per-sample DataLoader): comparable on any machine and
              under load, so it is always gated.
  LossFalls   smoke rows: the training loss of the last epoch is below the first epoch's.
  PairedRatio the paired A/B (zoo.paired): a block timed in pairs against the same block of the base tree, judged
              on its own pairs (zoo.verdicts.paired) by [tool.kdbench.speed] margin and alpha, on any machine.

Every metric a baseline gates must be present and finite in both records: a missing, empty or
non-finite value is INVALID, which fails the row. Timing findings are confirmed by a rerun before a
row fails (zoo.harness.plugin). A baseline whose recipe, dataset, run switches or schema differ from
the run's is refused as incompatible.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from zoo.records.metrics import (
    EXACT,
    IN_RUN,
    IN_RUN_QUIET,
    LOG_SEEDS,
    LOSS_FALLS,
    METRICS,
    PAIRED,
    SEEDS,
    THROUGHPUT,
    Metric,
)
from zoo.records.record import IncompatibleBaselineError, Record
from zoo.records.results import machine_fingerprint, provenance_line
from zoo.verdicts.paired import judge_pairs
from zoo.verdicts.stats import POWER, Pool, detectable_drop, mean_std, robust_pool, shortfall
from zoo.verdicts.status import Status
from zoo.verdicts.thresholds import DEFAULT_CONFIG, Setting, ThresholdConfig, Thresholds


@dataclass
class Finding:
    """The outcome of one check (a `Status`), with the values, test and settings that reached it."""

    bench_id: str
    metric: str
    status: str
    measured: float | None
    baseline: float | None
    tolerance: str
    provenance: str = ""
    timing: bool = False  # a wall-clock metric: confirmed by a rerun before the row fails
    effect: float | None = None  # seed metrics: run mean minus baseline mean, positive is better (log for the KL)
    p_value: float | None = None  # seed metrics: one-sided p of a drop this large if nothing changed
    detectable: float | None = None  # seed metrics: the drop these seeds detect with 80% power
    ratio: float | None = None  # speed metrics: the ratio to the baseline that the check judged (probe-normalised)
    interval: tuple[float, float] | None = None  # paired speed: the ratio's confidence bounds
    settings: tuple[Setting, ...] = ()  # the [tool.kdbench] settings that judged it, with their sources

    @property
    def failing(self) -> bool:
        return Status(self.status).fails

    def message(self) -> str:
        text = (f"{self.bench_id}: {self.metric} {self.status.upper()}: measured {_fmt(self.measured)}, "
                f"baseline {_fmt(self.baseline)} ({self.tolerance})")
        return text + (f"; baseline from {self.provenance}" if self.provenance else "")


def _fmt(value) -> str:
    return "n/a" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))


def finite_values(record: Record, metric: str) -> list[float] | str:
    """The metric's values as a list, or why they cannot be gated (missing, empty, non-finite)."""
    values = record.values(metric)
    if values is None:
        return "missing"
    if not values:
        return "empty"
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
        return f"not finite: {record.metrics[metric]!r}"
    return [float(v) for v in values]


def _invalid(run: Record, metric: str, problems: dict[str, str], sources: dict) -> Finding:
    where = "; ".join(f"{problem} in the {side} ({sources.get(side, side)})" for side, problem in problems.items())
    return Finding(run.id, metric, Status.INVALID, None, None,
                   f"{where}: every gated metric must be present and finite in both records")


def _pair_values(check, run: Record, base: Record, sources: dict) -> tuple[list, list] | Finding | None:
    """Both records' values of `check.metric`; None if neither has it; an INVALID finding if one is bad."""
    if check.metric not in run.metrics and check.metric not in base.metrics:
        return None
    got = {"run": finite_values(run, check.metric), "baseline": finite_values(base, check.metric)}
    problems = {side: v for side, v in got.items() if isinstance(v, str)}
    if problems:
        return _invalid(run, check.metric, problems, sources)
    return got["run"], got["baseline"]


@dataclass
class Exact:
    metric: str
    counter: str | None = None  # the package that counts it: compared only between records of one version

    def check(self, run: Record, base: Record, pools: dict, sources: dict, limits: Thresholds) -> Finding | None:
        values = _pair_values(self, run, base, sources)
        if not isinstance(values, tuple):
            return values
        (measured,), (expected,) = values[0][:1], values[1][:1]
        if self.counter:
            here, there = (r.provenance.get(self.counter) for r in (run, base))
            if here and there and here != there:
                return Finding(run.id, self.metric, Status.NOT_GATED, measured, expected,
                               f"counted by {self.counter} {here}, the baseline by {self.counter} {there}: "
                               f"re-record the baseline with this version")
        same = math.isclose(measured, expected, rel_tol=1e-9, abs_tol=0)
        return Finding(run.id, self.metric, Status.OK if same else Status.REGRESSED, measured, expected, "must be equal")


@dataclass
class Spread:
    metric: str
    log: bool = False  # compare log values: for positive metrics whose scale differs between rows

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric].higher_is_better

    def transform(self, values: list[float]) -> list[float]:
        return [math.log(max(v, 1e-12)) for v in values] if self.log else values

    def check(self, run: Record, base: Record, pools: dict, sources: dict, limits: Thresholds) -> Finding | None:
        values = _pair_values(self, run, base, sources)
        if not isinstance(values, tuple):
            return values
        run_values, base_values = (self.transform(v) for v in values)
        pool = row_pool(pools, self.metric, base)
        if pool is None or pool.sigma is None:  # only possible with --baseline-reason: fewer seeds are refused
            return Finding(run.id, self.metric, Status.NOT_GATED, mean_std(values[0])[0], mean_std(values[1])[0],
                           f"no seed spread: every baseline beside {sources.get('baseline')} holds one seed "
                           f"(stored for the reason {base.baseline_reason!r}); re-record with >= 3 seeds")
        if base.id in pool.excluded:
            return Finding(run.id, self.metric, Status.INVALID, mean_std(values[0])[0], mean_std(values[1])[0],
                           f"this row's baseline seeds disagree far beyond the other rows' spread (sd "
                           f"{pool.excluded[base.id]:.3g} vs pooled {pool.sigma:.3g}, a diverged seed?): "
                           f"its mean is no reference; re-record {sources.get('baseline')}")
        test = shortfall(run_values, base_values, pool.sigma, pool.df, self.higher_is_better)
        margin, fail, warn = limits[f"margin.{self.metric}"], limits["alpha_fail"], limits["alpha_warn"]
        worse, better = test.drop > margin.value, -test.drop > margin.value
        far, change_warns = limits["change.seed_sds"], limits["change.warn"]
        changed = better and test.p_better < fail.value and -test.drop > far.value * pool.sigma
        status = (Status.REGRESSED if worse and test.p_worse < fail.value else
                  Status.WARN if worse and test.p_worse < warn.value or changed and change_warns.value else
                  Status.CHANGED if changed else Status.IMPROVED if better and test.p_better < fail.value else Status.OK)
        unit = "log" if self.log else METRICS[self.metric].unit
        detectable = max(margin.value, detectable_drop(test.se, test.df, fail.value))
        how = (f"drop {test.drop:.3g} {unit}, p {test.p_worse:.2g} ({test.method}, {pool.describe()}); "
               f"fails when the drop exceeds the margin {margin.value:.3g} at p < {fail.value:g}, warns at "
               f"p < {warn.value:g} [{margin}; {fail}; {warn}]; these seeds detect a drop of {detectable:.3g} {unit} with "
               f"{POWER:.0%} power").replace("  ", " ")
        settings = (margin, fail, warn)
        if changed:
            how = (f"changed: better by {-test.drop:.3g} {unit}, {-test.drop / pool.sigma:.1f} pooled seed sds (more "
                   f"than {far.value:g}, p {test.p_better:.2g}): a change this far beyond the seeds' noise is a "
                   f"changed measurement, not luck [{far}; {change_warns}]; if it is intended, accept it as the "
                   f"baseline (kdbench promote RUN --reason TEXT, or --update-baselines); {how}")
            settings += (far, change_warns)
        measured, expected = mean_std(values[0])[0], mean_std(values[1])[0]
        if self.log:  # the metric's own unit: arithmetic means; drops are log-ratios (0.095 = a factor 1.1)
            how = f"log scale: {how}"
        return Finding(run.id, self.metric, status, measured, expected, how, effect=-test.drop,
                       p_value=test.p_worse, detectable=detectable, settings=settings)


def _speed_ratio(check, run: Record, base: Record, sources: dict) -> tuple[float, float, float] | Finding | None:
    """Medians of a speed metric (robust to one disturbed seed) and their ratio, or the finding that stops it."""
    values = _pair_values(check, run, base, sources)
    if not isinstance(values, tuple):
        return values
    if any(v <= 0 for v in values[1]):
        return _invalid(run, check.metric, {"baseline": f"non-positive: {values[1]}"}, sources)
    measured, expected = statistics.median(values[0]), statistics.median(values[1])
    return measured, expected, measured / expected


def probe_rates(record: Record, metric: str) -> list[float] | str:
    """The machine probe's rate beside each value of a timed metric, or why there is none to divide by."""
    rates = record.machine_probe.get("per_s", {}).get(metric)
    if rates is None:
        return "no machine-probe rate"
    if not isinstance(rates, list) or len(rates) != len(record.values(metric) or []):
        return f"{len(rates) if isinstance(rates, list) else 'no list of'} probe rates for its values"
    if any(isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r <= 0 for r in rates):
        return f"a probe rate that is not a positive number: {rates!r}"
    return [float(r) for r in rates]


def probe_normalised(values: list[float], rates: list[float]) -> float:
    """The median over seeds of images/s per probe workload/s: throughput with the host's speed divided out."""
    return statistics.median(v / r for v, r in zip(values, rates))


@dataclass
class Throughput:
    """Images/s per probe rate: gated on the same machine fingerprint and probe only, when it ran undisturbed."""

    metric: str

    def _normalised(self, run: Record, base: Record, sources: dict, measured: float,
                    expected: float) -> tuple[float, float] | Finding:
        """Probe-normalised ratio and host ratio (run probe / baseline probe), or the finding that stops it."""
        rates = {"run": probe_rates(run, self.metric), "baseline": probe_rates(base, self.metric)}
        if isinstance(rates["baseline"], str):
            return Finding(run.id, self.metric, Status.NOT_GATED, measured, expected,
                           f"the baseline has {rates['baseline']} to divide the host's speed out; re-record it "
                           f"with this kdbench ({sources.get('baseline')})", timing=True)
        if isinstance(rates["run"], str):
            return _invalid(run, self.metric, {"run": rates["run"]}, sources)
        probes = [{k: r.machine_probe.get(k) for k in ("workload", "threads", "blas")} for r in (run, base)]
        if probes[0] != probes[1]:
            differ = "; ".join(f"{key} {probes[0][key]} here, {probes[1][key]} in the baseline"
                               for key in probes[0] if probes[0][key] != probes[1][key])
            return Finding(run.id, self.metric, Status.NOT_GATED, measured, expected,
                           f"another machine: the machine probe differs ({differ}); re-record the baseline on this "
                           f"machine to gate it here", timing=True)
        values = (finite_values(run, self.metric), finite_values(base, self.metric))  # checked by _speed_ratio
        normalised = [probe_normalised(v, r) for v, r in zip(values, (rates["run"], rates["baseline"]))]
        return normalised[0] / normalised[1], statistics.median(rates["run"]) / statistics.median(rates["baseline"])

    def check(self, run: Record, base: Record, pools: dict, sources: dict, limits: Thresholds) -> Finding | None:
        carried = run.carried_from_cache
        if self.metric in carried and self.metric not in run.metrics:
            return Finding(run.id, self.metric, Status.NOT_GATED, None, None,
                           f"not measured in this run: the model came from the cache ({carried[self.metric]})",
                           timing=True)
        if self.metric in base.carried_from_cache and self.metric not in base.metrics:
            return Finding(run.id, self.metric, Status.NOT_GATED, None, None,
                           "the baseline did not measure it: its model came from the cache; re-record it cold",
                           timing=True)
        if self.metric in run.metrics and self.metric not in base.metrics:
            return Finding(run.id, self.metric, Status.NOT_GATED, None, None,
                           f"the baseline predates this measurement; re-record it with this kdbench "
                           f"({sources.get('baseline')})", timing=True)
        speed = _speed_ratio(self, run, base, sources)
        if not isinstance(speed, tuple):
            return speed
        measured, expected, raw = speed
        normalised = self._normalised(run, base, sources, measured, expected)
        if isinstance(normalised, Finding):
            return normalised
        ratio, host = normalised
        here, there = machine_fingerprint(run), machine_fingerprint(base)
        reason = None
        if here != there:
            reason = f"NEW for this machine: baseline measured on [{there}], this run on [{here}]"
        elif run.load.get("busy"):
            reason = f"machine busy: other processes used {run.load['others_cores']:.2f} cores during the timing"
        elif base.load.get("busy"):
            reason = "the baseline's timing ran on a busy machine; re-record it idle"
        if reason:
            return Finding(run.id, self.metric, Status.NOT_GATED, measured, expected, f"ratio {ratio:.2f}; {reason}",
                           timing=True, ratio=ratio)
        least = limits[f"min_ratio.{self.metric}"]
        status = Status.REGRESSED if ratio < least.value else Status.OK
        return Finding(run.id, self.metric, status, measured, expected,
                       f"ratio {ratio:.2f} with the host's speed divided out (probe ratio {host:.2f}, raw ratio "
                       f"{raw:.2f}), must be >= {least.value:g} [{least}] on the same machine [{here}]", timing=True,
                       ratio=ratio, settings=(least,))


@dataclass
class InRunRatio:
    """A speed ratio against a reference timed in the same process: gated on every machine.

    `alike_under_load`: both sides are the same kind of work (torch against torch), so a busy
    neighbour or a CPU quota slows them alike. The data-path speed-up is not: torch's thread pool
    suffers far more from a competing process or a quota than per-sample Python does (measured: x2.75
    idle, x0.90 next to a second pytest; 0.61 of its baseline under a quota of 1.3 of 2 cores), so it is
    not gated on a busy or rationed machine.
    """

    metric: str
    alike_under_load: bool = True

    def check(self, run: Record, base: Record, pools: dict, sources: dict, limits: Thresholds) -> Finding | None:
        speed = _speed_ratio(self, run, base, sources)
        if not isinstance(speed, tuple):
            return speed
        measured, expected, ratio = speed
        load = run.load
        if not self.alike_under_load and (load.get("busy") or load.get("rationed")):
            why = (f"machine busy (other processes used {load['others_cores']:.2f} cores)" if load.get("busy") else
                   f"a CPU quota held the process back {load['throttled']:.0%} of the time")
            return Finding(run.id, self.metric, Status.NOT_GATED, measured, expected,
                           f"ratio {ratio:.2f}; {why}, and the two sides it compares respond differently to that",
                           timing=True, ratio=ratio)
        least = limits[f"min_ratio.{self.metric}"]
        status = Status.REGRESSED if ratio < least.value else Status.OK
        return Finding(run.id, self.metric, status, measured, expected,
                       f"ratio {ratio:.2f}, must be >= {least.value:g} [{least}]; both sides timed in the same run",
                       timing=True, ratio=ratio, settings=(least,))


@dataclass
class LossFalls:
    """Absolute check for smoke rows, where accuracy after a few steps is noise."""

    metric: str

    def check(self, run: Record, base: Record | None, pools: dict, sources: dict, limits: Thresholds) -> Finding | None:
        in_base = base is not None and self.metric in base.metrics
        if self.metric not in run.metrics and not in_base:
            return None
        values = finite_values(run, self.metric)
        if isinstance(values, str):
            return _invalid(run, self.metric, {"run": values}, sources)
        worst = min(values)
        return Finding(run.id, self.metric, Status.OK if worst > 0 else Status.REGRESSED, worst, None,
                       "first-epoch minus last-epoch training loss must be > 0")


@dataclass
class PairedRatio:
    """A block's ratios candidate / base, pair by pair: the paired verdict, with the row's speed settings."""

    metric: str

    def check(self, run: Record, base: Record | None, pools: dict, sources: dict, limits: Thresholds) -> Finding | None:
        if run.kind != "ab":
            return None
        if self.metric not in run.metrics:
            problem = run.summary.get("problem") or "the record holds no pairs"
            if run.summary.get("missing_in_base"):  # a block the base tree does not have: new, not comparable
                return Finding(run.id, self.metric, Status.NOT_GATED, None, None, f"NEW: {problem}")
            return Finding(run.id, self.metric, Status.INVALID, None, None, f"not timed: {problem}")
        values = finite_values(run, self.metric)
        if isinstance(values, str) or any(v <= 0 for v in values):
            return _invalid(run, self.metric, {"run": values if isinstance(values, str) else "non-positive"}, sources)
        margin, alpha = limits["speed.margin"], limits["speed.alpha"]
        paired = judge_pairs(values, margin.value, alpha.value)
        against = run.summary.get("base", {}).get("commit") or "the base"
        return Finding(run.id, self.metric, paired.status, paired.estimate, 1.0,
                       f"against {str(against)[:12]}: {paired.describe()}; fails when the lower bound exceeds "
                       f"x{margin.value:g} [{margin}; {alpha}]",
                       p_value=paired.p_slower, ratio=paired.estimate, interval=(paired.low, paired.high),
                       settings=(margin, alpha))


def _check_of(metric: Metric):
    """The check of `metric`, of the kind its declaration names (zoo.records.metrics)."""
    kinds = {EXACT: lambda: Exact(metric.name, metric.counter), SEEDS: lambda: Spread(metric.name),
             LOG_SEEDS: lambda: Spread(metric.name, log=True), THROUGHPUT: lambda: Throughput(metric.name),
             IN_RUN: lambda: InRunRatio(metric.name), IN_RUN_QUIET: lambda: InRunRatio(metric.name, False),
             LOSS_FALLS: lambda: LossFalls(metric.name), PAIRED: lambda: PairedRatio(metric.name)}
    return kinds[metric.check]()


CHECKS = [_check_of(m) for m in METRICS.values() if m.check not in (None, LOSS_FALLS, PAIRED)]
"""The checks against a baseline, one per gated metric."""
ABSOLUTE = [_check_of(m) for m in METRICS.values() if m.check in (LOSS_FALLS, PAIRED)]
"""The checks a record passes on its own, with or without a baseline."""
UNGATED = {m.name: m.ungated for m in METRICS.values() if not m.gated}
"""Metrics that records carry but no check gates, each with the reason."""
GATED = {m.name for m in METRICS.values() if m.gated}


def ensure_compatible(run: Record, base: Record, path) -> None:
    """Refuse a baseline that measured something else than this run."""
    for key in ("kind", "tier", "dataset", "device", "recipe_hash", "switches"):
        if getattr(run, key) != getattr(base, key):
            raise IncompatibleBaselineError(
                f"{run.id}: baseline {path} was recorded with {key}={getattr(base, key)!r}, this run has "
                f"{getattr(run, key)!r}; it measured something else. Re-record it with --update-baselines "
                f"(baseline from {provenance_line(base)})")
    if run.dataset_fingerprint != base.dataset_fingerprint:
        raise IncompatibleBaselineError(
            f"{run.id}: the {run.dataset!r} data of this run (fingerprint "
            f"{str(run.dataset_fingerprint)[:12]}, from {run.dataset_source}) differs from the "
            f"baseline's ({str(base.dataset_fingerprint)[:12]}, {path}). Either the data files are damaged "
            f"or incomplete (check them: `sha256sum -c SHA256SUMS` in the data root), or the baseline was "
            f"measured on other data. Re-record only if you changed the dataset on purpose.")


def pool_key(metric: str, record: Record | None) -> str:
    """Which pool gates `metric` of `record`: rows of a spread family of their own (the record's `spread_family`,
    from its distiller: e.g. a transfer set reconstructed anew for every seed) pool only among themselves, as
    `metric@family`."""
    family = record.spread_family if record else ""
    return f"{metric}@{family}" if family else metric


def row_pool(pools: dict[str, Pool], metric: str, record: Record) -> Pool | None:
    """The pool (from `seed_spreads`) that gates `metric` of `record`'s row, or None if there is none."""
    return pools.get(pool_key(metric, record))


def seed_spreads(baselines: list[Record]) -> dict[str, Pool]:
    """Robustly pooled seed spread of each spread-gated metric over a set of baselines (bad values left out),
    keyed by `pool_key` (the metric's name for every row of the common family)."""
    groups: dict[str, dict[str, list[float]]] = {}
    for check in CHECKS:
        if isinstance(check, Spread):
            groups[check.metric] = {}
            for b in baselines:
                values = finite_values(b, check.metric)
                if not isinstance(values, str):
                    groups.setdefault(pool_key(check.metric, b), {})[b.id] = check.transform(values)
    return {key: robust_pool(rows) for key, rows in groups.items()}


def compare(run: Record, base: Record | None, pools: dict, sources: dict | None = None,
            config: ThresholdConfig = DEFAULT_CONFIG) -> list[Finding]:
    """All findings of one run against its baseline (None: only the absolute checks run), judged by the
    thresholds `config` sets for the run's row."""
    sources = sources or {}
    limits = config.for_row(run.id)
    unknown = set(run.metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"{run.id}: metrics {sorted(unknown)} are not in the metric table; declare each in "
                         f"zoo.records.metrics.METRICS (unit, direction, and a check or the reason it is not gated)")
    findings = [check.check(run, base, pools, sources, limits) for check in ABSOLUTE]
    if base is not None:
        findings += [check.check(run, base, pools, sources, limits) for check in CHECKS]
    for finding in findings:
        if finding is not None and base is not None:
            finding.provenance = provenance_line(base)
    return [f for f in findings if f is not None]
