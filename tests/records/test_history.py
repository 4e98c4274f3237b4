"""The history store, drift detection, the `kdbench` command and the Bencher export, on real records."""
import copy
import json
import shutil
import sqlite3
from pathlib import Path

import jsonschema
import pytest

from zoo.cli import main
from zoo.records.bencher import to_bmf
from zoo.records.history import History, HistoryInputError
from zoo.records.results import load_record
from zoo.verdicts.drift import change_points

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
MNIST = BASELINES / "quick" / "mnist" / "cpu"
ROW = "mnist-mlp800-kd-lr0.01"
BMF_SCHEMA = {  # Bencher Metric Format, as its reference documents it (draft-07)
    "$schema": "http://json-schema.org/draft-07/schema", "type": "object",
    "patternProperties": {".+": {"type": "object", "patternProperties": {".+": {
        "type": "object", "required": ["value"],
        "properties": {"value": {"type": "number"}, "lower_value": {"type": "number"},
                       "upper_value": {"type": "number"}}}}}}}


def session(results: Path, name: str, day: int, shift: float = 0.0) -> Path:
    """A session folder holding the MNIST baselines as its results, dated `day`, accuracy shifted by `shift`."""
    folder = results / name / "quick" / "mnist" / "cpu"
    folder.mkdir(parents=True)
    for path in MNIST.glob("mnist-*.json"):
        record = json.loads(path.read_text())
        record["provenance"]["date"] = f"2026-12-{day:02d}T00:00:00+00:00"
        record["metrics"]["test_accuracy"] = [v + shift for v in record["metrics"]["test_accuracy"]]
        (folder / path.name).write_text(json.dumps(record))
    return results / name


def test_ingest_is_idempotent_and_rebuild_gives_the_same_store(tmp_path):
    results = tmp_path / "results"
    session(results, "s1", 1)
    session(results, "s2", 2)
    history = History(tmp_path / "h.sqlite")
    first = history.ingest(results)
    assert first > 0 and history.ingest(results) == 0
    assert history.sessions() == ["s1", "s2"]
    assert [p["session"] for p in history.series("quick", "mnist", "cpu", ROW, "test_accuracy")] == ["s1", "s2"]
    rebuilt = History(tmp_path / "rebuilt.sqlite")
    assert rebuilt.rebuild([results]) == first
    assert rebuilt.latest_records() and {r.id for r in rebuilt.latest_records()} == {
        r.id for r in history.latest_records()}


@pytest.mark.parametrize("damage", ["truncated", "not a number"])
def test_a_corrupt_record_is_refused_by_name_and_the_store_keeps_what_it_had(tmp_path, damage):
    results = tmp_path / "results"
    session(results, "s1", 1)
    history = History(tmp_path / "h.sqlite")
    history.ingest(results)
    before = history.query("SELECT COUNT(*) AS n FROM runs")[0]["n"]
    bad = session(results, "s2", 2) / "quick" / "mnist" / "cpu" / f"{ROW}.json"
    text = bad.read_text()
    damaged = text[: len(text) // 2] if damage == "truncated" else text.replace('"test_accuracy": [', '"test_accuracy": ["x", ')
    bad.write_text(damaged)
    with pytest.raises(HistoryInputError, match=f"history is unchanged.*{ROW}.json"):
        history.ingest(results)
    assert history.query("SELECT COUNT(*) AS n FROM runs")[0]["n"] == before  # nothing of s2 went in
    assert main(["history", "--db", str(tmp_path / "h.sqlite"), "--ingest", str(results)]) == 2


def test_a_damaged_database_file_is_named_with_the_fix(tmp_path):
    db = tmp_path / "h.sqlite"
    db.write_text("not a database")
    with pytest.raises(HistoryInputError, match="not an SQLite database.*--rebuild"):
        History(db).ingest(tmp_path)


def test_drift_finds_steps_and_slow_decay_but_not_one_bad_night_or_seed_noise():
    assert change_points([0.0] * 10, noise=1.0) == []
    assert change_points([0.0] * 5 + [4.0] * 5, noise=1.0) == [5]  # a step of 4 noise units
    assert change_points([0.0] * 5 + [-6.0] + [0.0] * 4, noise=1.0) == []  # one bad night: the snapshot gate's job
    assert change_points([-0.5 * i for i in range(12)], noise=1.0)  # 0.5 noise units a night, for 12 nights
    rng = __import__("random").Random(0)
    false = sum(bool(change_points([rng.gauss(0, 1) for _ in range(20)], noise=1.0)) for _ in range(200))
    assert false <= 4  # an unchanged row redrawn every night (every change perturbs training): <= 2% alarms


def test_cli_history_compare_promote_trend_export_on_real_records(tmp_path, capsys):
    results, db, baselines = tmp_path / "results", str(tmp_path / "h.sqlite"), tmp_path / "baselines"
    shutil.copytree(BASELINES / "quick" / "mnist", baselines / "quick" / "mnist")
    for day in range(1, 4):
        session(results, f"s{day}", day)
    for day in range(4, 7):
        session(results, f"s{day}", day, shift=-1.0)  # every MNIST row one point lower from s4 on
    common = ["--db", db, "--baselines", str(baselines)]
    assert main(["history", "--rebuild", "--results", str(results), "--db", db]) == 0
    assert main(["history", ROW, *common]) == 0
    out = capsys.readouterr().out
    assert "from session" in out and "s4" in out and "-1" in out  # the step, located
    assert main(["compare", "s6", "s1", *common, "--check"]) == 1  # 1 pt lower on every row: fails
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "detectable" in out
    assert main(["compare", "s2", "baselines", *common, "--check", "--format", "markdown"]) == 0
    assert "| row" in capsys.readouterr().out
    assert main(["compare", "nope", "baselines", *common]) == 2
    assert "neither a session" in capsys.readouterr().err
    assert main(["trend", "--out", str(tmp_path / "png"), *common]) == 0
    assert any(p.name.startswith("accuracy-quick-mnist") for p in (tmp_path / "png").iterdir())
    assert main(["export", "s1", "--out", str(tmp_path / "bmf.json"), *common]) == 0
    assert main(["promote", "s1", "--reason", "test", *common]) == 0
    promoted = json.loads((baselines / "quick" / "mnist" / "cpu" / f"{ROW}.json").read_text())
    assert promoted["promoted"]["reason"] == "test" and "s1" in promoted["promoted"]["from"]


def test_promote_refuses_too_few_seeds_and_writes_nothing(tmp_path, capsys):
    results, baselines = tmp_path / "results", tmp_path / "baselines"
    shutil.copytree(BASELINES / "quick" / "mnist", baselines / "quick" / "mnist")
    path = session(results, "s1", 1) / "quick" / "mnist" / "cpu" / f"{ROW}.json"
    record = json.loads(path.read_text())
    record["seeds"], record["metrics"]["test_accuracy"] = [0], record["metrics"]["test_accuracy"][:1]
    path.write_text(json.dumps(record))
    before = {p: p.read_bytes() for p in baselines.rglob("*.json")}
    assert main(["promote", str(results / "s1"), "--reason", "x", "--baselines", str(baselines),
                 "--db", str(tmp_path / "h.sqlite")]) == 1
    assert "nothing promoted" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in baselines.rglob("*.json")} == before


def test_bencher_export_has_the_documented_shape():
    records = [load_record(p) for p in sorted(MNIST.glob("*.json"))]
    report = to_bmf(records)
    jsonschema.validate(report, BMF_SCHEMA)
    kd = report[f"kdbench/quick/mnist/cpu/{ROW}"]
    assert kd["accuracy"]["lower_value"] < kd["accuracy"]["value"] < kd["accuracy"]["upper_value"]
    assert all(len(slug) <= 64 for measures in report.values() for slug in measures)
    broken = copy.deepcopy(report)
    broken[next(iter(broken))]["accuracy"] = {"lower_value": 1.0}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, BMF_SCHEMA)


def test_history_is_a_real_sqlite_database(tmp_path):
    history = History(tmp_path / "h.sqlite")
    history.ingest(session(tmp_path / "results", "s1", 1).parent)
    with sqlite3.connect(tmp_path / "h.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM samples WHERE metric = 'test_accuracy'").fetchone()[0] > 0


def test_evidence_reports_count_alarms_and_state_the_detectable_drop(tmp_path):
    from zoo.reports.evidence import aa_report, detectable_report, sensitivity_report
    from zoo.verdicts.gates import pool_key

    base = [load_record(p) for p in sorted(MNIST.glob("mnist-*.json"))]
    shifted = copy.deepcopy(base)
    for record in shifted:
        record.metrics["test_accuracy"] = [v - 3.0 for v in record.metrics["test_accuracy"]]
    aa = aa_report({"s1": base, "s2": base}, base, {"s1": "idle", "s2": "idle"})
    assert "2 unchanged reruns" in aa and "| test_accuracy " in aa
    sensitivity = sensitivity_report({"minus-3": shifted}, base)
    trained = [r for r in base if r.metrics.get("test_accuracy") and pool_key("test_accuracy", r) == "test_accuracy"]
    assert sensitivity.count("| yes ") >= len(trained)  # data-free rows (sd ~1.8 pt, 3 seeds) detect ~6 pt, not 3
    detectable = detectable_report(base)
    assert "| mnist-mlp800-lr0.01 " in detectable and "detectable drop" in detectable
