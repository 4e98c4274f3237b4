"""The committed reports/ are what the committed baselines generate, byte for byte, and nothing else: a report
left stale by a promotion, or one drawn from a session no one can rerun, fails here. reports/evidence/ holds
measured evidence and reports/screenshots/ pictures of pages; neither is generated from baselines."""
import subprocess
import sys
from pathlib import Path

from zoo.reports.leaderboard import write_leaderboards

REPO = Path(__file__).resolve().parents[2]
NOT_GENERATED = ("evidence", "screenshots")


def test_every_committed_report_is_regenerated_from_the_baselines(tmp_path):
    written, skipped = write_leaderboards(REPO / "baselines", tmp_path)
    assert skipped == []
    generated = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in written}
    committed = {p.relative_to(REPO / "reports").as_posix(): p.read_bytes()
                 for p in (REPO / "reports").rglob("*") if p.is_file() and p.relative_to(REPO / "reports").parts[0]
                 not in NOT_GENERATED}
    assert sorted(committed) == sorted(generated), "reports/ holds files the baselines do not generate, or lacks some"
    stale = [name for name in committed if committed[name] != generated[name]]
    assert not stale, (f"stale: {stale}; run `kdbench leaderboard --from baselines --out reports --write-reports` "
                       f"and commit the result")


def test_writing_into_the_committed_reports_needs_an_explicit_flag(tmp_path):
    refused = subprocess.run([sys.executable, "-m", "zoo.cli", "leaderboard", "--from", "baselines", "--out",
                              "reports"], cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 2 and "--write-reports" in refused.stderr
    elsewhere = subprocess.run([sys.executable, "-m", "zoo.cli", "leaderboard", "--from", "baselines", "--out",
                                str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert (tmp_path / "quick-mnist-cpu.md").is_file()
