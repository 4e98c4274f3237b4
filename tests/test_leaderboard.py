"""Leaderboards are generated from records: every row, the study's figure labelled, KD deltas."""
from pathlib import Path

from zoo.leaderboard import latest_records, write_leaderboards
from zoo.pairs import pairs_for

BASELINES = Path(__file__).resolve().parents[1] / "baselines"


def test_quick_leaderboards_cover_every_row(tmp_path):
    paths = write_leaderboards(BASELINES, tmp_path, tier="quick")
    assert {p.name for p in paths} == {"quick-mnist-cpu.md", "quick-cifar10-cpu.md"}
    text = "".join(p.read_text() for p in paths)
    for pair in pairs_for("quick"):
        assert f"| {pair.id} " in text
    assert "study (reference)" in text and "Δ vs no-KD" in text and "80% power" in text


def test_newest_record_of_a_row_wins(tmp_path):
    source = BASELINES / "quick" / "mnist" / "cpu" / "mnist-mlp800-lr0.01.json"
    for name, date in (("old", "2020-01-01T00:00:00+00:00"), ("new", "2030-01-01T00:00:00+00:00")):
        folder = tmp_path / name / "quick" / "mnist" / "cpu"
        folder.mkdir(parents=True)
        text = source.read_text().replace(source.read_text().split('"date": "')[1].split('"')[0], date)
        (folder / source.name).write_text(text)
    (records,) = latest_records(tmp_path)
    assert records["provenance"]["date"].startswith("2030")
