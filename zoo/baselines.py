"""Stored baselines and the verdict on a run: pass, fail (regressed), new, or updated."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from zoo.gates import Finding, compare, ensure_compatible, seed_spreads
from zoo.results import baseline_path, load_record, write_record


@dataclass
class Verdict:
    status: str  # "pass" | "fail" | "new" | "updated"
    findings: list[Finding] = field(default_factory=list)
    baseline_file: Path | None = None

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "regressed"]

    def summary(self) -> str:
        lines = [f.message() for f in self.regressions]
        if self.status == "new":
            lines.append(f"no baseline at {self.baseline_file}: reported as NEW; "
                         f"record one with --update-baselines")
        return "\n".join(lines)


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
        """Pooled seed spreads over every baseline of the record's tier, dataset and device."""
        folder = self.path(record).parent
        same_kind = [r for r in (load_record(p) for p in sorted(folder.glob("*.json"))) if r["kind"] == record["kind"]]
        return seed_spreads(same_kind)

    def judge(self, record: dict, update: bool = False) -> Verdict:
        """Compare `record` with its baseline; with `update`, store it as the new baseline instead."""
        path = self.path(record)
        if update:
            findings = compare(record, None, {})
            write_record(path, record)
            return Verdict("updated", findings, path)
        base = self.load(record)
        if base is None:
            findings = compare(record, None, {})
            return Verdict("fail" if any(f.status == "regressed" for f in findings) else "new", findings, path)
        ensure_compatible(record, base, path)
        findings = compare(record, base, self.spreads(record))
        return Verdict("fail" if any(f.status == "regressed" for f in findings) else "pass", findings, path)
