"""Stored baselines and the verdict on a run: pass, fail, new, or updated."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zoo.catalog.pairs import UnknownPairError, get_pair
from zoo.errors import KdbenchInputError
from zoo.records.record import SELF_CONTAINED, IncompatibleBaselineError, Record
from zoo.records.results import load_record, write_record
from zoo.records.store import RecordStore
from zoo.verdicts.gates import GATED, Finding, compare, ensure_compatible, finite_values, seed_spreads
from zoo.verdicts.status import RowStatus, Status
from zoo.verdicts.thresholds import DEFAULT_CONFIG, ThresholdConfig


@dataclass
class Verdict:
    status: RowStatus  # PASS, WARN (passes, shown), FAIL, NEW or UPDATED
    findings: list[Finding] = field(default_factory=list)
    baseline_file: Path | None = None
    notes: list[str] = field(default_factory=list)
    record: Record | None = None  # the record judged (after a confirming rerun, the rerun's)

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.failing]

    @property
    def not_gated(self) -> list[Finding]:
        return [f for f in self.findings if f.status == Status.NOT_GATED]

    @property
    def timing_only(self) -> bool:
        """Failing on wall-clock metrics alone: worth a confirming rerun before the row fails."""
        return bool(self.regressions) and all(f.timing and f.status == Status.REGRESSED for f in self.regressions)

    def summary(self) -> str:
        lines = [f.message() for f in self.regressions] + self.notes
        if self.status == RowStatus.NEW:
            lines.append(f"no baseline at {self.baseline_file}: reported as NEW; record one with --update-baselines")
        return "\n".join(lines)


def verdict_status(findings: list[Finding]) -> RowStatus:
    """FAIL if any finding fails, WARN if any warns, else PASS."""
    return RowStatus.of(findings)


def judge_self_contained(record: Record, config: ThresholdConfig = DEFAULT_CONFIG,
                         sources: dict | None = None) -> Verdict:
    """The verdict on a record that carries its own reference (SELF_CONTAINED kinds): its absolute checks alone."""
    findings = compare(record, None, {}, sources or {"run": "this run"}, config)
    return Verdict(verdict_status(findings), findings, record=record)


class BaselineRefusedError(KdbenchInputError, ValueError):
    """--update-baselines was asked to store a run that is no fit baseline; the message says why."""


class BaselineStore:
    """Baselines under `root`/<tier>/<dataset>/<device>/<id>.json, each a result record of a real run."""

    def __init__(self, root: Path, thresholds: ThresholdConfig = DEFAULT_CONFIG):
        self.root = Path(root)
        self.thresholds = thresholds
        self.records = RecordStore(self.root)  # read once per session; `update` starts a fresh listing

    def path(self, record: Record) -> Path:
        return self.records.path(record)

    def load(self, record: Record) -> Record | None:
        path = self.path(record)
        return load_record(path) if path.exists() else None

    def spreads(self, record: Record) -> dict:
        """Robustly pooled seed spreads over every baseline of the record's tier, dataset and device (a damaged
        baseline in that folder is an error naming it: the pool must not silently lose a row)."""
        group = self.records.group(record.tier, record.dataset, record.device).complete()
        return seed_spreads(group.of_kind(record.kind))

    def judge(self, record: Record, run_file: Path | str = "this run",
              remeasure: Callable[[], Record] | None = None) -> Verdict:
        """Compare `record` with its baseline.

        A verdict that fails on wall-clock metrics alone is confirmed first: `remeasure()` measures the
        row again and the row fails only if that rerun fails too (both attempts stay in the record).
        """
        path = self.path(record)
        base = self.load(record)
        sources = {"run": str(run_file), "baseline": str(path)}
        if record.kind in SELF_CONTAINED:
            return judge_self_contained(record, self.thresholds, sources)
        if base is None:
            findings = compare(record, None, {}, sources, self.thresholds)
            return Verdict(RowStatus.FAIL if any(f.failing for f in findings) else RowStatus.NEW, findings, path,
                           record=record)
        ensure_compatible(record, base, path)
        pools = self.spreads(record)
        findings = compare(record, base, pools, sources, self.thresholds)
        verdict = Verdict(verdict_status(findings), findings, path, record=record)
        if verdict.timing_only and remeasure is not None:
            rerun = remeasure().replace(first_attempt={"metrics": record.metrics, "load": record.load})
            ensure_compatible(rerun, base, path)
            findings = compare(rerun, base, pools, sources, self.thresholds)
            first = "; ".join(f.message() for f in verdict.regressions)
            verdict = Verdict(verdict_status(findings), findings, path,
                              [f"timing confirmed by a rerun after the first attempt failed: {first}"], rerun)
        return verdict

    def refusal(self, record: Record, min_seeds: int, reason: str | None = None) -> str | None:
        """Why `record` may not become a baseline, or None if it may.

        Refused: a run whose own checks fail, a gated metric that is missing or not finite, fewer seeds
        than `min_seeds` (the row's recipe) or than the baseline it replaces. `reason` overrides the seed
        rules only.
        """
        path = self.path(record)
        if record.kind in SELF_CONTAINED:
            return (f"not stored as a baseline at {path}: a {record.kind!r} record carries its own reference (the base "
                    f"tree timed beside it) and is judged on its own")
        findings = compare(record, None, {}, {"run": "this run"}, self.thresholds)
        problems = [f.message() for f in findings if f.failing]
        problems += [f"{record.id}: {metric} is {values}" for metric in sorted(GATED & set(record.metrics))
                     if isinstance(values := finite_values(record, metric), str)]
        problems += self.outlying_spreads(record)
        if problems:
            return f"not stored as a baseline at {path}:\n" + "\n".join(problems)
        seeds = len(record.seeds)
        try:
            old = self.load(record)
        except IncompatibleBaselineError:  # another schema: re-recording it is what the error asked for
            old = None
        needed = max(min_seeds, len(old.seeds) if old and old.recipe_hash == record.recipe_hash else 0)
        if seeds < needed and not reason:
            return (f"not stored as a baseline at {path}: {seeds} seed(s), the row needs {needed} "
                    f"({'its recipe' if needed == min_seeds else 'the baseline it would replace has that many'}). "
                    f"Run with --seeds {needed}, or pass --baseline-reason '...' to store it anyway")
        return None

    def outlying_spreads(self, record: Record) -> list[str]:
        """The metrics whose seeds disagree so far beyond the other baselines' spread that the gate would leave the
        row out of the pool and read its baseline as no reference (INVALID): a diverged or stuck seed, never a
        baseline."""
        siblings = [r for r in self.records.group(record.tier, record.dataset, record.device).complete()
                    .of_kind(record.kind) if r.id != record.id]
        return [f"{record.id}: its {metric} seeds {finite_values(record, metric)} disagree far beyond the other "
                f"rows' spread (sd {pool.excluded[record.id]:.3g} vs pooled {pool.sigma:.3g}): a diverged or stuck "
                f"seed? Mend the recipe (a gate would read this baseline as no reference, INVALID)"
                for metric, pool in sorted(seed_spreads([*siblings, record]).items()) if record.id in pool.excluded]

    def update(self, record: Record, min_seeds: int, reason: str | None = None) -> Verdict:
        """Store `record` as the baseline if it is fit to be one (see `refusal`), else raise BaselineRefusedError.

        `reason` is stored in the record. A record that carries its own reference (SELF_CONTAINED) is judged and
        never stored.
        """
        if record.kind in SELF_CONTAINED:
            return judge_self_contained(record, self.thresholds)
        if problem := self.refusal(record, min_seeds, reason):
            raise BaselineRefusedError(problem)
        path = self.path(record)
        findings = compare(record, None, {}, {"run": "this run"}, self.thresholds)
        notes = []
        if reason:
            record = record.replace(baseline_reason=reason)
        if record.load.get("busy"):
            notes.append(f"{record.id}: its timings ran while other processes used "
                         f"{record.load['others_cores']:.2f} cores; they will not gate later runs")
        write_record(path, record)
        self.records = RecordStore(self.root)
        return Verdict(RowStatus.UPDATED, findings, path, notes, record)

    def promote(self, records: list[Record], reason: str, source: str) -> list[tuple[Record, Record | None]]:
        """Make `records` (from the run set `source`) the baselines, all or none: each must be fit to be one
        (see `refusal`, with its row recipe's seed count), else BaselineRefusedError names every refusal.
        Returns each record with the baseline it replaced (None for a new row). Records that carry their own
        reference (SELF_CONTAINED) are no baselines and are left out."""
        records = [record for record in records if record.kind not in SELF_CONTAINED]
        refusals = [problem for record in records if (problem := self.refusal(record, _baseline_seeds(record)))]
        if refusals:
            raise BaselineRefusedError("\n".join(refusals))
        replaced = []
        for record in records:
            old = self.load(record)
            self.update(record.replace(promoted={"reason": reason, "from": source}), 0)
            replaced.append((record, old))
        return replaced


def _baseline_seeds(record: Record) -> int:
    """The seeds a baseline of this row needs (its recipe's), 0 for rows no longer in the table and non-pair records."""
    if record.kind != "pair":
        return 0
    try:
        return get_pair(record.id).recipes[record.tier].baseline_seeds
    except UnknownPairError:
        return 0


@dataclass
class RowComparison:
    """One row of run set A judged against the same row of set B (a baseline set or another run)."""

    record: Record
    base: Record | None
    findings: list[Finding]
    problem: str = ""  # why it could not be judged: no such row in B, or B measured something else

    @property
    def status(self) -> RowStatus:
        if self.problem:
            return RowStatus.NEW if self.base is None else RowStatus.INCOMPATIBLE
        return verdict_status(self.findings)


def compare_sets(runs: list[Record], bases: list[Record], base_source: str = "B",
                 thresholds: ThresholdConfig = DEFAULT_CONFIG) -> list[RowComparison]:
    """Judge every record of `runs` against the record of the same row in `bases`, with the gates'
    checks and the seed spread pooled over `bases` (as the benchmark session does with its baselines)."""
    by_key = {b.key: b for b in bases}
    groups: dict[tuple, list[Record]] = {}
    for b in bases:
        groups.setdefault((b.tier, b.dataset, b.device, b.kind), []).append(b)
    pools = {k: seed_spreads(v) for k, v in groups.items()}
    out = []
    for run in runs:
        base = by_key.get(run.key)
        sources = {"run": "A", "baseline": base_source}
        if run.kind in SELF_CONTAINED:  # judged on its own pairs: no row of B is its reference
            out.append(RowComparison(run, None, compare(run, None, {}, sources, thresholds)))
            continue
        if base is None:
            out.append(RowComparison(run, None, compare(run, None, {}, sources, thresholds),
                                     f"no {run.id} in {base_source}"))
            continue
        try:
            ensure_compatible(run, base, base_source)
        except IncompatibleBaselineError as err:
            out.append(RowComparison(run, base, [], str(err)))
            continue
        out.append(RowComparison(run, base, compare(run, base, pools[run.key[:3] + (base.kind,)], sources,
                                                    thresholds)))
    return out
