"""Gather a launch's results folder and gate it: every complete row becomes one record (the gather of its seeds)
judged against the baselines by the same verdict code as `pytest bench/` (zoo.verdicts.baselines); a row with a
seed missing is INCOMPLETE and fails, named with the jobs that did not finish; nothing passes for lack of data.

Bootstrap (a device's first night): when the baselines hold no record of the tier on this device, every row is
NEW; with `bootstrap` the gather records and reports them and says how to promote them, instead of failing.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zoo.catalog.pairs import get_pair
from zoo.records.history import History
from zoo.records.io import CorruptFileError
from zoo.records.record import Record
from zoo.records.results import load_record, record_path, write_record
from zoo.records.store import RecordStore
from zoo.runs.jobs import JobSettings, checkpoint_path, read_seed_result, seed_result_path, timing_dir
from zoo.runs.plan import Plan
from zoo.runs.row_records import pair_record
from zoo.runs.runner import row_test_labels
from zoo.verdicts.baselines import BaselineStore, Verdict
from zoo.verdicts.status import RowStatus, Status


@dataclass
class RowOutcome:
    """One row (or timing record) of a gather: its verdict, or why it is incomplete."""

    row: str
    status: RowStatus
    verdict: Verdict | None = None
    missing: list[str] = field(default_factory=list)  # the jobs that did not finish, each with what is known

    def line(self) -> str:
        if self.status == RowStatus.INCOMPLETE:
            return f"INCOMPLETE {self.row}: {len(self.missing)} job(s) did not finish: " + "; ".join(self.missing)
        text = f"{self.status.label} {self.row}"
        if self.verdict and self.verdict.status == RowStatus.FAIL:
            text += ": " + self.verdict.summary().replace("\n", "; ")
        return text


@dataclass
class Gathered:
    outcomes: list[RowOutcome]
    records_dir: Path
    bootstrap: bool

    @property
    def failed(self) -> bool:
        return any(o.status.fails() for o in self.outcomes) or not self.outcomes

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        return counts


def records_dir(out: Path, plan: Plan) -> Path:
    """Where a launch's gathered records go: one history session per launch."""
    return Path(out) / "records" / f"launch-{plan.created.replace(':', '').replace('-', '')}-{plan.tier}"


def gather(settings: JobSettings, store: BaselineStore, history: History | None = None, bootstrap: bool = False,
           strict: bool = True, log: Callable[[str], None] = print) -> Gathered:
    """Gather and judge every row of the launch in `settings.out` (see the module docstring)."""
    plan = Plan.load(settings.out)
    session = dataclasses.replace(settings, device=plan.device).session()  # records name the launch's device
    folder = records_dir(settings.out, plan)
    first_night = not any((store.root / plan.tier).glob(f"*/{plan.device}/*.json"))
    bootstrapping = bootstrap and first_night
    outcomes = []
    for row in plan.rows:
        pair = get_pair(row.row)
        missing, results = [], []
        for job in plan.row_jobs(row.row):
            path = seed_result_path(settings.out, plan.tier, pair.dataset, plan.device, pair.id, job.seed)
            if not path.exists():
                missing.append(f"{job.name} ({_progress(settings.out, plan, job)})")
                continue
            try:
                results.append(read_seed_result(path))
            except CorruptFileError as err:
                missing.append(f"{job.name} ({err})")
        if missing:
            outcomes.append(RowOutcome(row.row, RowStatus.INCOMPLETE, missing=missing))
            continue
        path = record_path(folder, (plan.tier, pair.dataset, plan.device, pair.id))
        record = _existing(path, row.seeds) or pair_record(pair, plan.tier, results, row_test_labels(pair, plan.tier, session),
                                                          results[0].origin, folder)
        write_record(path, record)
        outcomes.append(_judge(record, path, store, bootstrapping, strict))
    for wave in plan.waves:
        for job in (j for j in wave if j.is_timing):
            found = RecordStore(timing_dir(settings.out, job)).listing.complete().records
            if not found:
                outcomes.append(RowOutcome(job.name, RowStatus.INCOMPLETE, missing=[f"{job.name} (no timing record in "
                                                                             f"{timing_dir(settings.out, job)})"]))
            for record in found:
                copy = record_path(folder, record.key)
                write_record(copy, record)
                outcomes.append(_judge(record, copy, store, bootstrapping, strict))
    gathered = Gathered(outcomes, folder, bootstrapping)
    if history is not None and folder.is_dir():
        added = history.ingest(folder.parent)
        log(f"history: {added} new records in {history.path}")
    return gathered


def _existing(path: Path, seeds: list[int]) -> Record | None:
    """A row gathered before with the same seeds (re-gathering never remakes it: the history keeps one copy)."""
    if not path.exists():
        return None
    record = load_record(path)
    return record if record.seeds == seeds else None


def _judge(record: Record, path: Path, store: BaselineStore, bootstrapping: bool, strict: bool) -> RowOutcome:
    verdict = store.judge(record, path)
    status = verdict.status
    if status == RowStatus.NEW:
        status = RowStatus.BOOTSTRAP if bootstrapping else RowStatus.FAIL if strict else RowStatus.NEW
    return RowOutcome(record.id, status, verdict)


def _progress(out: Path, plan: Plan, job) -> str:
    """What is known of an unfinished job: its checkpoint's epoch, or that it never checkpointed."""
    checkpoint = checkpoint_path(out, plan.tier, plan.device, job.row, job.seed)
    if checkpoint.exists():
        return f"checkpoint at {checkpoint}: rerun the launch to resume it"
    return "no result and no checkpoint: it never ran an epoch, or was cancelled before it started"


def report(gathered: Gathered, out: Path, log: Callable[[str], None] = print) -> None:
    """The gather's verdict lines, loud findings and, when bootstrapping, how to promote."""
    counts = gathered.counts()
    log("gather: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if counts else "gather: no row")
    for outcome in sorted(gathered.outcomes, key=lambda o: o.status.rank):
        log(outcome.line())
        if outcome.verdict:
            for finding in outcome.verdict.findings:
                if Status(finding.status).loud:
                    log(f"  {finding.status.upper()} {finding.message()}")
    if gathered.bootstrap:
        log(f"BOOTSTRAP: the baselines hold no record of this tier on this device, so nothing above was gated. "
            f"Review the records, then make them the baselines: kdbench promote {gathered.records_dir} "
            f"--reason 'first run on this device'; the next run is gated on them, timing rows included.")
    log(f"records: {gathered.records_dir}")
