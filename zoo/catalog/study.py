"""The study's own records: what each of its figures measured, read from its code release.

`records.csv` (in `$KDBENCH_STUDY`, default `../shared/study/` beside the repository) lists every
experiment folder of the study's code release with its recipe and two accuracies: of the epoch with
the best *test* accuracy (the figure the poster prints) and of the last epoch. A pair that runs a
record's recipe carries a `StudyRef` naming that record; the figures are read here, never typed into
the pair table. MNIST has no records (its scripts kept none): its references are the poster's figures,
labelled as such.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from zoo.errors import KdbenchInputError
from zoo.records.results import project_root

POSTER_ONLY = "poster figure (the script kept no record)"


def study_dir() -> Path:
    """The study's records: $KDBENCH_STUDY, else ../shared/study beside the project (the current checkout)."""
    return Path(os.environ.get("KDBENCH_STUDY", project_root().parent / "shared" / "study"))


class StudyRecordError(KdbenchInputError, LookupError):
    """records.csv is missing or lacks the record a pair names."""


@cache
def records(path: Path | None = None) -> dict[str, dict]:
    """records.csv as {folder: row}, accuracies as floats (None where the record has none)."""
    path = Path(path or study_dir() / "records.csv")
    if not path.is_file():
        raise StudyRecordError(f"{path} not found: set KDBENCH_STUDY to the folder holding the study's records.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in ("best_epoch_acc", "last_epoch_acc"):
            row[key] = float(row[key]) if row.get(key) else None
    return {row["folder"]: row for row in rows}


def grid_size(folder: str) -> int:
    """Number of alpha x T cells recorded under the grid folder that holds `folder`."""
    parent = folder.rsplit("/", 1)[0]
    return sum(1 for f in records() if f.startswith(parent + "/alpha_"))


@dataclass(frozen=True)
class StudyRef:
    """The study's figure for a row: the record it traces to and how the study chose it.

    `record` is a folder of records.csv, or (MNIST) the script, with `poster` its printed figure.
    `grid_cell`: the record is the best cell of an alpha x T grid, picked on the test set.
    """

    record: str
    grid_cell: bool = False
    poster: float | None = None

    def _row(self) -> dict | None:
        if self.poster is not None:
            return None
        try:
            return records()[self.record]
        except KeyError:
            raise StudyRecordError(f"records.csv has no record {self.record!r}") from None

    @property
    def best(self) -> float | None:
        """The study's figure: its best test epoch (the poster's number)."""
        row = self._row()
        return self.poster if row is None else row["best_epoch_acc"]

    @property
    def last(self) -> float | None:
        """The study's last-epoch accuracy, comparable with kdbench's (None where not recorded)."""
        row = self._row()
        return None if row is None else row["last_epoch_acc"]

    @property
    def selection(self) -> str:
        if self.poster is not None:
            return POSTER_ONLY
        if self.grid_cell:
            return f"best of {grid_size(self.record)} grid cells on test (each at its best epoch)"
        return "best epoch on test"

    def as_dict(self) -> dict:
        return {"record": self.record, "best": self.best, "last": self.last, "selection": self.selection}
