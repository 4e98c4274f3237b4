"""Leaderboards are generated from records: every row, the study's figure labelled, KD deltas."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.catalog.pairs import pairs_for
from zoo.records.results import load_record
from zoo.reports.leaderboard import LeaderboardSourceError, latest_records, write_leaderboards
from zoo.verdicts.gates import seed_spreads

BASELINES = Path(__file__).resolve().parents[1] / "baselines"


def test_quick_leaderboards_cover_every_row(tmp_path):
    paths, skipped = write_leaderboards(BASELINES / "quick", tmp_path, tier="quick")
    assert skipped == []
    assert {p.name for p in paths} == {"quick-mnist-cpu.md", "quick-cifar10-cpu.md", "claims-quick-cpu.md"}
    text = "".join(p.read_text() for p in paths)
    for pair in pairs_for("quick"):
        assert f"| {pair.id} " in text
    assert "Δ vs no-KD" in text and "80% power" in text
    assert "study best / last" not in text and "does not run the study's recipes" in text  # quick: no study figure


def test_newest_record_of_a_row_wins(tmp_path):
    source = BASELINES / "quick" / "mnist" / "cpu" / "mnist-mlp800-lr0.01.json"
    for name, date in (("old", "2020-01-01T00:00:00+00:00"), ("new", "2030-01-01T00:00:00+00:00")):
        folder = tmp_path / name / "quick" / "mnist" / "cpu"
        folder.mkdir(parents=True)
        text = source.read_text().replace(source.read_text().split('"date": "')[1].split('"')[0], date)
        (folder / source.name).write_text(text)
    (records,), _ = latest_records(tmp_path)
    assert records.provenance["date"].startswith("2030")


def test_skipped_input_is_reported_and_an_empty_source_fails(tmp_path):
    folder = tmp_path / "quick" / "mnist" / "cpu"
    folder.mkdir(parents=True)
    shutil.copy(BASELINES / "quick" / "mnist" / "cpu" / "mnist-mlp800-lr0.01.json", folder)
    (folder / "damaged.json").write_text('{"schema": ')
    (folder / "foreign.json").write_text(json.dumps({"schema": 1, "id": "old"}))
    paths, skipped = write_leaderboards(tmp_path, tmp_path / "out")
    assert [p.name for p in paths] == ["quick-mnist-cpu.md", "claims-quick-cpu.md"]
    assert {s.split(":")[0].rsplit("/", 1)[1] for s in skipped} == {"damaged.json", "foreign.json"}
    with pytest.raises(LeaderboardSourceError, match="neither a history store nor a folder"):
        write_leaderboards(tmp_path / "nothing-here", tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LeaderboardSourceError, match="no readable record"):
        write_leaderboards(empty, tmp_path / "out")
    cli = subprocess.run([sys.executable, "-m", "zoo.cli", "leaderboard", "--from", str(empty), "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert cli.returncode != 0 and "no readable record" in cli.stderr


def test_a_partial_session_drops_no_row(tmp_path):
    """Two sessions, each with some rows: the leaderboard shows the newest result of every row."""
    for session, name in (("s1", "mnist-mlp800-lr0.01.json"), ("s2", "mnist-mlp800-lr0.1.json")):
        folder = tmp_path / session / "quick" / "mnist" / "cpu"
        folder.mkdir(parents=True)
        shutil.copy(BASELINES / "quick" / "mnist" / "cpu" / name, folder)
    (path, _claims), _ = write_leaderboards(tmp_path, tmp_path / "out")
    text = path.read_text()
    assert "| mnist-mlp800-lr0.01 " in text and "| mnist-mlp800-lr0.1 " in text


def test_full_tier_shows_study_best_last_and_selection_and_corrected_rows_none():
    from zoo.catalog.pairs import get_pair
    from zoo.reports.leaderboard import render

    base = load_record(BASELINES / "quick" / "mnist" / "cpu" / "mnist-mlp800-lr0.01.json")
    rows = []
    for pair_id in ("cifar10-cnn5-d0", "cifar10-cnn5-d0.5"):
        pair = get_pair(pair_id)
        rows.append(base.replace(id=pair_id, tier="full", recipe=pair.recipes["full"].as_dict(),
                                 study=pair.study.as_dict() if pair.study else None, correction=pair.correction,
                                 metrics=base.metrics | {"test_accuracy": [84.0, 84.2, 84.4]}))
    text = render("full", "cifar10", "cpu", rows)
    assert "84.74 / 83.73" in text and "best epoch on test" in text and "+0.47" in text  # 84.2 - 83.732
    assert "corrected row: no study figure" in text and "experiments/base_cnn/nodropout" in text


def test_reports_pool_seeds_exactly_as_the_gate_does(tmp_path):
    """One pooling function: the leaderboard's seed sd is the gate's, data-free rows in a pool of their own."""
    write_leaderboards(BASELINES / "quick", tmp_path, tier="quick")
    text = (tmp_path / "quick-mnist-cpu.md").read_text()
    records = [load_record(p) for p in sorted((BASELINES / "quick" / "mnist" / "cpu").glob("*.json"))]
    pools = seed_spreads([r for r in records if r.kind == "pair"])
    assert {"test_accuracy", "test_accuracy@data-free"} <= set(pools)
    assert pools["test_accuracy"].sigma < pools["test_accuracy@data-free"].sigma
    for key, family in (("test_accuracy", "rows the gate pools together"),
                        ("test_accuracy@data-free", "data-free rows, which the gate pools apart")):
        assert f"{family}: {pools[key].sigma:.3f} pt (df {pools[key].df};" in text
