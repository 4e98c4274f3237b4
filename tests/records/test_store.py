"""The record store: one reader of records folders, one error policy, the newest record per row, the project root."""
import json
import shutil
from pathlib import Path

import pytest

from zoo.records.record import Record, RecordError
from zoo.records.results import load_record, project_root
from zoo.records.store import RecordFolderError, RecordStore, layout_root, session_of
from zoo.verdicts.baselines import BaselineStore

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
MNIST = BASELINES / "quick" / "mnist" / "cpu"
ROW = "mnist-mlp800-kd-lr0.01"


def session(results: Path, name: str, date: str, rows: list[str]) -> Path:
    """A session folder holding copies of some MNIST baselines as its results, dated `date`."""
    folder = results / name / "quick" / "mnist" / "cpu"
    folder.mkdir(parents=True)
    for row in rows:
        record = json.loads((MNIST / f"{row}.json").read_text())
        record["provenance"]["date"] = date
        (folder / f"{row}.json").write_text(json.dumps(record))
    return folder


def test_the_newest_record_of_each_row_wins_across_sessions(tmp_path):
    results = tmp_path / "results"
    session(results, "s1", "2026-12-01T00:00:00+00:00", [ROW, "mnist-mlp800-lr0.01"])
    newer = session(results, "s2", "2026-12-02T00:00:00+00:00", [ROW])
    (results / "s2" / "reports").mkdir()
    (results / "s2" / "reports" / "notes.json").write_text("{}")  # reports are never records
    listing = RecordStore(results).listing.complete()
    assert len(listing.entries) == 3 and not listing.problems
    newest = listing.newest()
    assert newest[("quick", "mnist", "cpu", ROW)][1] == newer / f"{ROW}.json"
    assert session_of(newer / f"{ROW}.json", results) == "s2" and layout_root(newer / f"{ROW}.json").name == "s2"


def test_a_damaged_record_is_named_never_dropped_silently(tmp_path):
    folder = session(tmp_path / "results", "s1", "2026-12-01T00:00:00+00:00", [ROW, "mnist-mlp800-lr0.01"])
    (folder / "mnist-mlp800-lr0.01.json").write_text('{"schema": 2, "kind": "pa')  # half-written
    listing = RecordStore(tmp_path / "results").listing
    assert [r.id for r in listing.records] == [ROW]  # what could be read, for reports that list the rest
    assert len(listing.problems) == 1 and "mnist-mlp800-lr0.01.json" in listing.problem_lines()[0]
    with pytest.raises(RecordFolderError, match=r"1 record\(s\) cannot be read: .*mnist-mlp800-lr0.01.json"):
        listing.complete()


def test_the_gate_refuses_a_pool_with_a_damaged_baseline(tmp_path):
    baselines = tmp_path / "baselines"
    shutil.copytree(BASELINES / "quick" / "mnist", baselines / "quick" / "mnist")
    record = load_record(MNIST / f"{ROW}.json")
    (baselines / "quick" / "mnist" / "cpu" / "mnist-mlp800-lr0.1.json").write_text("not json")
    with pytest.raises(RecordFolderError, match="mnist-mlp800-lr0.1.json"):
        BaselineStore(baselines).judge(record)


def test_the_project_root_is_the_nearest_folder_holding_baselines(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "baselines").mkdir(parents=True)
    (project / "bench" / "deep").mkdir(parents=True)
    assert project_root(project / "bench" / "deep") == project
    assert project_root(tmp_path) == tmp_path  # no baselines/ above: the start folder itself
    monkeypatch.chdir(project / "bench")
    assert project_root() == project


def test_every_committed_baseline_loads_as_a_record_and_round_trips():
    """The typed Record reads every stored record as it is (schema 2, no migration); writing it back keeps every
    field that holds more than its default."""
    files = sorted(BASELINES.rglob("*.json"))
    assert len(files) > 50
    for path in files:
        stored = json.loads(path.read_text())
        record = load_record(path)
        written = record.to_json()
        assert all(written[k] == stored[k] for k in written), path
        assert all(stored[k] in (None, "", [], {}) for k in set(stored) - set(written)), path
        assert Record.from_json(written, path) == record


def test_a_record_with_an_unknown_field_or_kind_is_refused_naming_the_file(tmp_path):
    stored = json.loads((MNIST / f"{ROW}.json").read_text())
    with pytest.raises(RecordError, match="here.json has fields this kdbench does not know: \\['surprise'\\]"):
        Record.from_json(stored | {"surprise": 1}, tmp_path / "here.json")
    with pytest.raises(RecordError, match="of kind 'training'"):
        Record.from_json(stored | {"kind": "training"}, tmp_path / "here.json")
