"""The result record: one typed Record for every kind of run, stored as one JSON file with a schema version.

kinds: "pair" (a row of the table: a model trained on its seeds), "speed" (inference throughput or batch-1
latency), "engine" (kdbench's training loop against a plain PyTorch loop), "loader" (kdbench's data path
against a per-sample DataLoader) and "ab" (a block of kdbench's work timed in pairs against the same block of a
base tree, zoo.paired: judged on its own pairs, never against a stored baseline). A baseline is a record that
--update-baselines or `kdbench promote` stored under baselines/. Records are built here and in zoo.runs.row_records
only through this type, read only through `Record.from_json` (via zoo.records.store), and written only by `to_json`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import KdbenchInputError
from zoo.records.io import CorruptFileError

SCHEMA = 2
"""The JSON layout this kdbench reads and writes; a record of another schema is refused with how to re-record."""
KINDS = ("pair", "speed", "engine", "loader", "ab")
SELF_CONTAINED = ("ab",)
"""Kinds that carry their own reference (the base timed beside the candidate): judged without a stored baseline."""


class RecordError(CorruptFileError):
    """A file that is not a readable kdbench record; the message names it and says what to do."""


class IncompatibleBaselineError(KdbenchInputError, ValueError):
    """A record of another schema, or a baseline that measured something else than the run compared with it;
    the message says why and how to fix it."""


@dataclass(frozen=True)
class Record:
    """One benchmark run. Metric values are a number or one number per seed (zoo.records.metrics)."""

    kind: str
    id: str
    tier: str
    dataset: str
    device: str
    metrics: dict[str, Any]
    provenance: dict[str, Any]  # commit, date, machine, CPU identity, versions (zoo.records.results.provenance)
    seeds: list[int] = field(default_factory=list)
    recipe: dict[str, Any] = field(default_factory=dict)  # as Recipe.as_dict(), or the timing benchmark's settings
    recipe_hash: str | None = None
    code_version: str | None = None  # zoo.runs.code_version.CODE_VERSION of the training code that ran
    dataset_fingerprint: str | None = None
    switches: dict[str, Any] = field(default_factory=dict)  # amp, channels_last, compile
    student: str | None = None  # the model that was trained or timed
    summary: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)  # the machine load during the timings
    machine_probe: dict[str, Any] = field(default_factory=dict)  # the host-speed probe beside each timing
    # rows of the table (kind "pair")
    dataset_source: str | None = None
    teacher: str | None = None
    control: str | None = None
    scheme: str | None = None
    plain_kd: str | None = None
    study: dict[str, Any] | None = None
    correction: str | None = None
    note: str | None = None
    spread_family: str = ""  # seeds pool only with rows of the same family (zoo.verdicts.gates.pool_key)
    measured_now: list[str] = field(default_factory=list)
    carried_from_cache: dict[str, str] = field(default_factory=dict)  # metric -> why it was not measured now
    unsupported_ops: dict[str, int] = field(default_factory=dict)  # ops fvcore did not count
    runs: list[dict[str, Any]] = field(default_factory=list)  # every seed's training report
    test_logits: dict[str, Any] | None = None  # the reference to the logits file beside it (zoo.records.logits)
    # set when it became a baseline, or after a confirming rerun
    baseline_reason: str | None = None
    promoted: dict[str, str] | None = None
    first_attempt: dict[str, Any] | None = None
    schema: int = SCHEMA

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(tier, dataset, device, id): where the record lives, and what 'the same row' means."""
        return self.tier, self.dataset, self.device, self.id

    @property
    def date(self) -> str:
        return self.provenance.get("date", "")

    def values(self, metric: str) -> list | None:
        """The values of `metric` as a list (a single value, e.g. params, is stored as a number); None if absent.
        As stored: checking them is the caller's."""
        if metric not in self.metrics:
            return None
        raw = self.metrics[metric]
        return raw if isinstance(raw, list) else [raw]

    def replace(self, **changes) -> Record:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The stored form: every field that holds more than its default (a reader gets the default back)."""
        return {f.name: value for f in dataclasses.fields(self)
                if (value := getattr(self, f.name)) != _default(f) or f.name in _REQUIRED or f.name == "schema"}

    @classmethod
    def from_json(cls, data: Any, source: object = "record") -> Record:
        """The record stored as `data` (read from `source`, named in errors); refused if not of this schema."""
        if not isinstance(data, dict) or "schema" not in data:
            raise RecordError(f"{source} is not a kdbench record (no 'schema' field)")
        if data["schema"] != SCHEMA:
            raise IncompatibleBaselineError(f"{source} has schema {data['schema']}, this kdbench writes schema {SCHEMA}; "
                                          f"re-record it with --update-baselines")
        missing = [k for k in _REQUIRED if k not in data]
        if missing or not isinstance(data.get("metrics"), dict) or not isinstance(data.get("provenance"), dict):
            raise RecordError(f"{source} is a damaged kdbench record (missing {missing or ['metrics']}); "
                              f"restore it from git or re-record it")
        unknown = sorted(set(data) - _FIELDS)
        if unknown:
            raise RecordError(f"{source} has fields this kdbench does not know: {unknown}; it was written by "
                              f"another version")
        if data["kind"] not in KINDS:
            raise RecordError(f"{source} is of kind {data['kind']!r}; kdbench records are {', '.join(KINDS)}")
        return cls(**{k: v for k, v in data.items() if v is not None})


_REQUIRED = ("kind", "id", "tier", "dataset", "device", "metrics", "provenance")
_FIELDS = {f.name for f in dataclasses.fields(Record)}


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default
