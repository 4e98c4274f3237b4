"""The statuses kdbench speaks, with their order and their rules, declared once (a leaf: imports nothing of zoo).

`Status` is a finding's, the outcome of one check of one metric; `RowStatus` is a row's, the outcome of all of
its findings (or why there were none). Both are `StrEnum`s: they are stored and compared as their lowercase
values ("regressed", "not gated"), and shown upper-case.
"""
from __future__ import annotations

from enum import StrEnum


class _Ordered:
    """What both enums share: their members' order is their urgency, and they are shown upper-case."""

    @property
    def rank(self) -> int:
        """0 for the most urgent: sort by it."""
        return list(type(self)).index(self)

    @property
    def label(self) -> str:
        return self.value.upper()


class Status(_Ordered, StrEnum):
    """One check's outcome, most urgent first (the order of the members is the order every table uses)."""

    REGRESSED = "regressed"  # worse beyond its margin, with significance
    CHANGED = "changed"  # moved far beyond what its seeds explain, the better way: not noise, so not passed unseen
    INVALID = "invalid"  # a missing, empty or non-finite value, or a baseline that is no reference
    WARN = "warn"  # worse beyond its margin at the warn level only
    IMPROVED = "improved"  # better beyond its margin, with significance
    NOT_GATED = "not gated"  # cannot be judged here; the finding says why
    OK = "ok"

    @property
    def fails(self) -> bool:
        """A finding with this status fails its row."""
        return self in (Status.REGRESSED, Status.CHANGED, Status.INVALID)

    @property
    def alarming(self) -> bool:
        """Fails, or warns: what the regressions page and the PR comment mark."""
        return self.fails or self is Status.WARN

    @property
    def loud(self) -> bool:
        """Shown in the test output and the session summary although the row passes."""
        return self in (Status.WARN, Status.IMPROVED, Status.NOT_GATED)


class RowStatus(_Ordered, StrEnum):
    """A row's outcome, most urgent first."""

    FAIL = "fail"  # a finding fails
    INCOMPLETE = "incomplete"  # a launch's row missing a seed's result
    INCOMPATIBLE = "incompatible"  # its baseline is of another recipe, dataset, schema or run switches
    NEW = "new"  # no baseline: recorded and shown; a failure under --strict-baselines (CI)
    WARN = "warn"  # passes, with a warning shown
    BOOTSTRAP = "bootstrap"  # the first records of a tier on a device, to be promoted
    UPDATED = "updated"  # stored as the baseline
    PASS = "pass"

    def fails(self, strict: bool = False) -> bool:
        """Whether the row fails; a NEW row only under strict baselines."""
        return self in (RowStatus.FAIL, RowStatus.INCOMPLETE, RowStatus.INCOMPATIBLE) or (
            strict and self is RowStatus.NEW)


    @classmethod
    def of(cls, findings) -> RowStatus:
        """FAIL if any finding fails, WARN if any warns, else PASS."""
        statuses = {Status(f.status) for f in findings}
        if any(s.fails for s in statuses):
            return cls.FAIL
        return cls.WARN if Status.WARN in statuses else cls.PASS
