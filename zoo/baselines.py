"""Stored baselines and the verdict on a run: pass, fail, new, or updated."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from zoo.gates import GATED, Finding, compare, ensure_compatible, finite_values, seed_spreads
from zoo.results import IncompatibleBaselineError, baseline_path, load_record, write_record


@dataclass
class Verdict:
    status: str  # "pass" | "fail" | "new" | "updated"
    findings: list[Finding] = field(default_factory=list)
    baseline_file: Path | None = None
    notes: list[str] = field(default_factory=list)
    record: dict | None = None  # the record judged (after a confirming rerun, the rerun's)

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.failing]

    @property
    def not_gated(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "not gated"]

    @property
    def timing_only(self) -> bool:
        """Failing on wall-clock metrics alone: worth a confirming rerun before the row fails."""
        return bool(self.regressions) and all(f.timing and f.status == "regressed" for f in self.regressions)

    def summary(self) -> str:
        lines = [f.message() for f in self.regressions] + self.notes
        if self.status == "new":
            lines.append(f"no baseline at {self.baseline_file}: reported as NEW; record one with --update-baselines")
        return "\n".join(lines)


class BaselineRefusedError(ValueError):
    """--update-baselines was asked to store a run that is no fit baseline; the message says why."""


class BaselineStore:
    """Baselines under `root`/<tier>/<dataset>/<device>/<id>.json, each a result record of a real run."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, record: dict) -> Path:
        return baseline_path(self.root, record["tier"], record["dataset"], record["device"], record["id"])

    def load(self, record: dict) -> dict | None:
        path = self.path(record)
        return load_record(path) if path.exists() else None

    def spreads(self, record: dict) -> dict:
        """Robustly pooled seed spreads over every baseline of the record's tier, dataset and device."""
        folder = self.path(record).parent
        same_kind = [r for r in (load_record(p) for p in sorted(folder.glob("*.json"))) if r["kind"] == record["kind"]]
        return seed_spreads(same_kind)

    def judge(self, record: dict, run_file: Path | str = "this run",
              remeasure: Callable[[], dict] | None = None) -> Verdict:
        """Compare `record` with its baseline.

        A verdict that fails on wall-clock metrics alone is confirmed first: `remeasure()` measures the
        row again and the row fails only if that rerun fails too (both attempts stay in the record).
        """
        path = self.path(record)
        base = self.load(record)
        sources = {"run": str(run_file), "baseline": str(path)}
        if base is None:
            findings = compare(record, None, {}, sources)
            return Verdict("fail" if any(f.failing for f in findings) else "new", findings, path, record=record)
        ensure_compatible(record, base, path)
        pools = self.spreads(record)
        findings = compare(record, base, pools, sources)
        verdict = Verdict("fail" if any(f.failing for f in findings) else "pass", findings, path, record=record)
        if verdict.timing_only and remeasure is not None:
            rerun = remeasure() | {"first_attempt": {"metrics": record["metrics"], "load": record.get("load")}}
            ensure_compatible(rerun, base, path)
            findings = compare(rerun, base, pools, sources)
            first = "; ".join(f.message() for f in verdict.regressions)
            verdict = Verdict("fail" if any(f.failing for f in findings) else "pass", findings, path,
                              [f"timing confirmed by a rerun after the first attempt failed: {first}"], rerun)
        return verdict

    def update(self, record: dict, min_seeds: int, reason: str | None = None) -> Verdict:
        """Store `record` as the baseline, if it is fit to be one.

        Refused: a run whose own checks fail, a gated metric that is missing or not finite, fewer seeds
        than `min_seeds` (the row's recipe) or than the baseline it replaces. `reason` overrides the seed
        rules only, and is stored in the record.
        """
        path = self.path(record)
        findings = compare(record, None, {}, {"run": "this run"})
        problems = [f.message() for f in findings if f.failing]
        problems += [f"{record['id']}: {metric} is {values}" for metric in sorted(GATED & set(record["metrics"]))
                     if isinstance(values := finite_values(record, metric), str)]
        if problems:
            raise BaselineRefusedError(f"not stored as a baseline at {path}:\n" + "\n".join(problems))
        seeds = len(record.get("seeds", []))
        try:
            old = self.load(record)
        except IncompatibleBaselineError:  # another schema: re-recording it is what the error asked for
            old = None
        needed = max(min_seeds, len(old["seeds"]) if old and old.get("recipe_hash") == record.get("recipe_hash") else 0)
        if seeds < needed and not reason:
            raise BaselineRefusedError(
                f"not stored as a baseline at {path}: {seeds} seed(s), the row needs {needed} "
                f"({'its recipe' if needed == min_seeds else 'the baseline it would replace has that many'}). "
                f"Run with --seeds {needed}, or pass --baseline-reason '...' to store it anyway")
        notes = []
        if reason:
            record = record | {"baseline_reason": reason}
        if record.get("load", {}).get("busy"):
            notes.append(f"{record['id']}: its timings ran while other processes used "
                         f"{record['load']['others_cores']:.2f} cores; they will not gate later runs")
        write_record(path, record)
        return Verdict("updated", findings, path, notes, record)
