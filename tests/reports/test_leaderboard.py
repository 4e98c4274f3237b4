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

BASELINES = Path(__file__).resolve().parents[2] / "baselines"


def test_quick_leaderboards_cover_every_row(tmp_path):
    paths, skipped = write_leaderboards(BASELINES / "quick", tmp_path, tier="quick")
    assert skipped == []
    assert {p.name for p in paths} == {"quick-mnist-cpu.md", "quick-cifar10-cpu.md", "claims-quick-cpu.md"}
    text = "".join(p.read_text() for p in paths)
    for pair in pairs_for("quick"):
        assert f"| {pair.id} " in text
    assert "Δ vs control" in text and "80% power" in text
    assert "study best" not in text and "does not run the study's recipes" in text  # quick: no study figure
    assert "vs baseline" not in text  # the baselines themselves


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
    assert "| 84.20 " in text and "| 84.74 " in text and "| 83.73 " in text and "+0.47" in text  # 84.2 - 83.732
    assert "best epoch on test" in text and "experiments/base_cnn/nodropout" in text
    assert "Corrected rows, beside no study figure: cifar10-cnn5-d0.5." in text


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


def _pair_record(pair_id: str, accuracy: list[float], **changes):
    base = load_record(BASELINES / "quick" / "cifar10" / "cpu" / "cifar10-cnn5-d0.json")
    return base.replace(id=pair_id, metrics=base.metrics | {"test_accuracy": accuracy}, **changes)


def test_a_kd_delta_is_taken_against_the_control_trained_alike():
    """cifar10-cnn5-d0.5-kd is augmented: its Δ is against cifar10-cnn5-d0.5, not the study's unaugmented
    control, even in records made when the catalogue still named that one."""
    from zoo.reports.leaderboard import render

    rows = [_pair_record("cifar10-cnn5-d0.5-noaug", [59.0, 59.2, 59.4]),
            _pair_record("cifar10-cnn5-d0.5", [52.0, 52.2, 52.4]),
            _pair_record("cifar10-cnn5-d0.5-kd", [54.0, 54.2, 54.4], teacher="cifar10-cnn5-teacher",
                         control="cifar10-cnn5-d0.5-noaug")]
    text = render("quick", "cifar10", "cpu", rows)
    assert "| cifar10-cnn5-d0.5-kd " in text and "+2.00 (p=" in text and "-5.00" not in text


def test_against_stored_baselines_each_row_shows_its_change_and_a_new_row_says_so(tmp_path):
    folder = tmp_path / "run" / "quick" / "cifar10" / "cpu"
    folder.mkdir(parents=True)
    stored = load_record(BASELINES / "quick" / "cifar10" / "cpu" / "cifar10-cnn5-d0.json")
    shifted = [v + 1.0 for v in stored.metrics["test_accuracy"]]
    for record in (_pair_record("cifar10-cnn5-d0", shifted), _pair_record("my-new-row", shifted)):
        (folder / f"{record.id}.json").write_text(json.dumps(record.to_json()))
    (board, _claims), _ = write_leaderboards(tmp_path / "run", tmp_path / "out", baselines=BASELINES)
    accuracy = board.read_text().split("## Accuracy")[1].split("##")[0]
    lines = {line.split("|")[1].strip(): line for line in accuracy.splitlines() if line.startswith("| ")}
    assert "+1.00 (p=" in lines["cifar10-cnn5-d0"] and "no baseline" in lines["my-new-row"]


def test_tables_fit_a_reader_at_120_characters(tmp_path):
    for tier in ("quick", "full"):
        for path in write_leaderboards(BASELINES / tier, tmp_path, tier=tier)[0]:
            wide = [line for line in path.read_text().splitlines() if line.startswith("|") and len(line) > 120]
            assert not wide, f"{path.name}: {wide[0]}"


def test_inference_shows_its_spread_over_rounds():
    from zoo.reports.leaderboard import speed_table

    record = load_record(BASELINES / "quick" / "mnist" / "cpu" / "infer-mlp800-b64.json")
    timed = record.replace(summary=record.summary | {"images_per_s_iqr": [18000.0, 20100.0]})
    table = speed_table([timed]).to_dict("records")[0]
    assert table["images/s (IQR over rounds)"] == "18,000 – 20,100"
