"""The record store: the one reader of a folder of result records (a results root, one session, baselines/).

It lists, loads and validates records and picks the newest of each row; nothing else walks a records folder.
One error policy: a damaged record, or one of another schema, never disappears silently. A `Listing` keeps
every record it could read and names every file it could not; a caller that must not go on with part of the
folder (the history store, `kdbench compare`, the gate's baselines) calls `Listing.complete()`, which raises
one `RecordFolderError` naming every such file; reports show what they could read and list the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from zoo.errors import KdbenchInputError
from zoo.records.record import Record
from zoo.records.results import load_record, record_path

RowKey = tuple[str, str, str, str]
"""(tier, dataset, device, row id): where a row's record lives, and what 'the same row' means."""


class RecordFolderError(KdbenchInputError, ValueError):
    """A records folder holds damaged or foreign-schema records; the message names each file and the fix."""




def layout_root(record_file: Path) -> Path:
    """The folder a record's <tier>/<dataset>/<device>/<id>.json layout starts in: its session folder in a
    results root, or the baselines folder."""
    return Path(record_file).parents[3]


def session_of(path: Path, root: Path) -> str:
    """A record's session: the folder directly under the results root that holds it."""
    parts = Path(path).resolve().relative_to(Path(root).resolve()).parts
    return parts[0] if len(parts) > 1 else Path(root).name


@dataclass
class Listing:
    """The records of a folder as (record, file) pairs in file order, and the files that could not be read."""

    entries: list[tuple[Record, Path]] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # (file, why), one per unreadable file

    @property
    def records(self) -> list[Record]:
        return [record for record, _ in self.entries]

    def complete(self) -> Listing:
        """This listing, if every file was read; else a RecordFolderError naming every file that was not."""
        if self.problems:
            raise RecordFolderError(f"{len(self.problems)} record(s) cannot be read: " + "; ".join(self.problem_lines()))
        return self

    def problem_lines(self) -> list[str]:
        """Each unreadable file as '<file>: <why>'."""
        return [f"{path}: {why}" for path, why in self.problems]

    def of_kind(self, kind: str) -> list[Record]:
        return [record for record, _ in self.entries if record.kind == kind]

    def newest(self) -> dict[RowKey, tuple[Record, Path]]:
        """The newest record of each row (by provenance date; a later file wins a tie)."""
        newest: dict[RowKey, tuple[Record, Path]] = {}
        for record, path in self.entries:
            if record.key not in newest or record.date >= newest[record.key][0].date:
                newest[record.key] = record, path
        return newest


class RecordStore:
    """A folder of records laid out as <tier>/<dataset>/<device>/<id>.json (at any depth below the root).

    Generated reports inside it (any `reports/` folder) are not records. Listings are read once per store:
    make a new store to see files written since.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.rglob("*.json") if "reports" not in p.relative_to(self.root).parts)

    @cached_property
    def listing(self) -> Listing:
        """Every record under the root, and every file that is not a readable record of this schema."""
        listing = Listing()
        for path in self.files():
            try:
                listing.entries.append((load_record(path), path))
            except (OSError, ValueError) as err:
                listing.problems.append((path, str(err)))
        return listing

    def group(self, tier: str, dataset: str, device: str) -> Listing:
        """The records of one (tier, dataset, device) folder: the set a row's seed spread is pooled over."""
        folder = self.root / tier / dataset / device
        listing = self.listing
        return Listing([(r, p) for r, p in listing.entries if p.parent == folder],
                       [(p, why) for p, why in listing.problems if p.parent == folder])

    def path(self, record: Record) -> Path:
        """Where `record` (or the record of its row) lives in this store."""
        return record_path(self.root, record.key)
