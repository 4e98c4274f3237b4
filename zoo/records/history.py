"""The history store: every result record of every session in one SQLite database.

The JSON records stay the source of truth: `History.rebuild` makes the database anew from them, and
ingesting the same file twice changes nothing (files are keyed by path and SHA-256). One ingest is
one transaction: a corrupt or half-written record raises `HistoryInputError` naming the file, and the
database keeps exactly what it held before.

    runs     one row per record: session, row id, tier, dataset, device, machine fingerprint, commit,
             date, fvcore version (which counted GMACs), load, the whole record as JSON
    samples  one row per (run, metric, seed): the values the gates and the drift detector use

Path: `--history` / `$KDBENCH_HISTORY`, default `results/history.sqlite`.
"""
from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from zoo.errors import KdbenchInputError
from zoo.records.io import sha256_file
from zoo.records.record import Record
from zoo.records.results import machine_fingerprint, project_root
from zoo.records.store import RecordFolderError, RecordStore, session_of

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS runs (
    run INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    kind TEXT NOT NULL, bench_id TEXT NOT NULL, tier TEXT NOT NULL, dataset TEXT NOT NULL, device TEXT NOT NULL,
    recipe_hash TEXT, machine TEXT NOT NULL, commit_sha TEXT, dirty INTEGER, date TEXT NOT NULL,
    fvcore TEXT, busy INTEGER, others_cores REAL, record TEXT NOT NULL,
    UNIQUE (path, sha256)
);
CREATE TABLE IF NOT EXISTS samples (
    run INTEGER NOT NULL REFERENCES runs(run) ON DELETE CASCADE,
    metric TEXT NOT NULL, position INTEGER NOT NULL, seed INTEGER, value REAL NOT NULL,
    PRIMARY KEY (run, metric, position)
);
CREATE INDEX IF NOT EXISTS runs_by_row ON runs (tier, dataset, device, bench_id, date);
"""


class HistoryInputError(KdbenchInputError, ValueError):
    """A record could not be ingested (corrupt, half-written, another schema); nothing was changed."""


def default_path() -> Path:
    """$KDBENCH_HISTORY, else results/history.sqlite of the project (zoo.records.results.project_root)."""
    return Path(os.environ.get("KDBENCH_HISTORY") or project_root() / "results" / "history.sqlite")


class History:
    """One SQLite file of runs. Readers see only whole ingests."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def connect(self) -> sqlite3.Connection:
        if self.path.exists() and self.path.stat().st_size and not self._is_sqlite():
            raise HistoryInputError(f"{self.path} is not an SQLite database (damaged?); rebuild it from the JSON "
                                    f"records: kdbench history --rebuild --results DIR")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA foreign_keys = ON")
        db.executescript(SCHEMA_SQL)
        return db

    def _is_sqlite(self) -> bool:
        with open(self.path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"

    def ingest(self, root: Path) -> int:
        """Add every record under the results folder `root`; returns how many were new."""
        try:
            listing = RecordStore(root).listing.complete()
        except RecordFolderError as err:
            raise HistoryInputError(f"not ingested, the history is unchanged: {err}") from err
        rows = [self._row(record, path, session_of(path, root)) for record, path in listing.entries]
        with closing(self.connect()) as db, db:
            added = 0
            for row, samples in rows:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO runs (session, path, sha256, kind, bench_id, tier, dataset, device, "
                    "recipe_hash, machine, commit_sha, dirty, date, fvcore, busy, others_cores, record) "
                    "VALUES (:session, :path, :sha256, :kind, :bench_id, :tier, :dataset, :device, :recipe_hash, "
                    ":machine, :commit_sha, :dirty, :date, :fvcore, :busy, :others_cores, :record)", row)
                if cursor.rowcount:
                    added += 1
                    db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)",
                                   [(cursor.lastrowid, *s) for s in samples])
            return added

    @staticmethod
    def _row(record: Record, path: Path, session: str) -> tuple[dict, list[tuple]]:
        seeds = record.seeds or []
        samples = []
        for metric in record.metrics:
            for i, value in enumerate(record.values(metric)):
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise HistoryInputError(f"not ingested, the history is unchanged: {path}: metric {metric!r} "
                                            f"holds {value!r}, not a number")
                samples.append((metric, i, seeds[i] if i < len(seeds) else None, float(value)))
        p, load = record.provenance, record.load or {}
        return {
            "session": session, "path": str(Path(path).resolve()), "sha256": sha256_file(path),
            "kind": record.kind, "bench_id": record.id, "tier": record.tier, "dataset": record.dataset,
            "device": record.device, "recipe_hash": record.recipe_hash, "machine": machine_fingerprint(record),
            "commit_sha": p.get("commit"), "dirty": int(bool(p.get("dirty"))), "date": p.get("date") or "",
            "fvcore": p.get("fvcore"), "busy": int(bool(load.get("busy"))),
            "others_cores": load.get("others_cores"), "record": json.dumps(record.to_json()),
        }, samples

    def rebuild(self, roots: list[Path]) -> int:
        """Make the database anew from the JSON records under `roots`, replacing the file atomically."""
        fresh = History(self.path.with_name(self.path.name + ".rebuild"))
        fresh.path.unlink(missing_ok=True)
        try:
            total = sum(fresh.ingest(root) for root in roots)
        except BaseException:
            fresh.path.unlink(missing_ok=True)
            raise
        os.replace(fresh.path, self.path)
        return total

    # ------------------------------------------------------------------------------------------ queries
    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        if not self.path.exists():
            raise HistoryInputError(f"no history store at {self.path}: run `pytest bench/` (it records there) "
                                    f"or `kdbench history --rebuild --results results`")
        with closing(self.connect()) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, params).fetchall()

    def session_summaries(self) -> list[sqlite3.Row]:
        """One row per session, oldest first: date, newest commit, tiers, machines, records, busy records."""
        return self.query(
            "SELECT session, MIN(date) AS date, MAX(commit_sha) AS commit_sha, GROUP_CONCAT(DISTINCT tier) AS tiers, "
            "GROUP_CONCAT(DISTINCT machine) AS machines, COUNT(*) AS records, SUM(busy) AS busy FROM runs "
            "GROUP BY session ORDER BY date")

    def row_keys(self) -> list[sqlite3.Row]:
        """Every (tier, dataset, device, bench_id, kind) the history holds, ordered by tier, dataset and row."""
        return self.query("SELECT DISTINCT tier, dataset, device, bench_id, kind FROM runs "
                          "ORDER BY tier, dataset, bench_id")

    def rows_with_metric(self, kind: str, metric: str) -> list[sqlite3.Row]:
        """(tier, dataset, device, bench_id) of every row of `kind` that recorded `metric`, in first-seen order."""
        return self.query("SELECT DISTINCT r.tier, r.dataset, r.device, r.bench_id FROM runs r JOIN samples s "
                          "ON s.run = r.run WHERE r.kind = ? AND s.metric = ? ORDER BY r.run", (kind, metric))

    def sessions(self) -> list[str]:
        """Sessions, oldest first."""
        return [r["session"] for r in self.query(
            "SELECT session, MIN(date) AS d FROM runs GROUP BY session ORDER BY d")]

    def records(self, session: str | None = None, bench_id: str | None = None) -> list[Record]:
        """Records, oldest first, optionally of one session and/or one row."""
        sql, params = "SELECT run, path, record FROM runs WHERE 1", []
        if session is not None:
            sql, params = sql + " AND session = ?", params + [session]
        if bench_id is not None:
            sql, params = sql + " AND bench_id = ?", params + [bench_id]
        return [self._record(r) for r in self.query(sql + " ORDER BY date, run", tuple(params))]

    def row_runs(self, tier: str, dataset: str, device: str, bench_id: str, kind: str) -> list[tuple[str, Record]]:
        """One row's records with their sessions, oldest first."""
        rows = self.query("SELECT run, path, session, record FROM runs WHERE tier = ? AND dataset = ? AND device = ? "
                          "AND bench_id = ? AND kind = ? ORDER BY date, run", (tier, dataset, device, bench_id, kind))
        return [(r["session"], self._record(r)) for r in rows]

    def latest_records(self) -> list[Record]:
        """The newest record of each (tier, dataset, device, row) over all sessions."""
        rows = self.query(
            "SELECT run, path, record FROM runs r WHERE run = (SELECT run FROM runs s WHERE s.tier = r.tier AND "
            "s.dataset = r.dataset AND s.device = r.device AND s.bench_id = r.bench_id "
            "ORDER BY date DESC, run DESC LIMIT 1)")
        return [self._record(r) for r in rows]

    def _record(self, row: sqlite3.Row) -> Record:
        return Record.from_json(json.loads(row["record"]), f"{self.path} run {row['run']} ({row['path']})")

    def series(self, tier: str, dataset: str, device: str, bench_id: str, metric: str) -> list[dict]:
        """One row's metric over sessions, oldest first: session, date, commit, machine, busy, values.

        Only runs of the row's newest recipe: a changed recipe measures something else and starts a new series.
        """
        rows = self.query(
            "SELECT r.run, r.session, r.date, r.commit_sha, r.machine, r.busy, r.recipe_hash, s.value FROM runs r "
            "JOIN samples s ON s.run = r.run WHERE r.tier = ? AND r.dataset = ? "
            "AND r.device = ? AND r.bench_id = ? AND s.metric = ? ORDER BY r.date, r.run, s.position",
            (tier, dataset, device, bench_id, metric))
        points: dict[int, dict] = {}
        for r in rows:
            point = points.setdefault(r["run"], {k: r[k] for k in ("session", "date", "commit_sha", "machine",
                                                                     "busy", "recipe_hash")} | {"values": []})
            point["values"].append(r["value"])
        series = list(points.values())
        return [p for p in series if p["recipe_hash"] == series[-1]["recipe_hash"]] if series else []

