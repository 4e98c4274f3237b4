"""Bad benchmark options are usage errors up front (exit 4); a session touches no committed file."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _bench(*args, env=None, tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "CI"} | (env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "bench/", "-p", "no:cacheprovider",
                           "--results-dir", str(tmp_path / "results"), *args],
                          cwd=REPO, capture_output=True, text=True, env=environment, timeout=300)


@pytest.mark.parametrize(("args", "message"), [
    (["--seeds", "0"], "--seeds"),
    (["--device", "tpu"], "--device"),
    (["--baseline-reason", "why"], "--baseline-reason"),
])
def test_bad_options_exit_4_before_anything_runs(tmp_path, args, message):
    result = _bench(*args, "--collect-only", tmp_path=tmp_path)
    assert result.returncode == 4 and message in result.stderr


def test_missing_baselines_dir_warns_and_fails_under_strict(tmp_path):
    missing = str(tmp_path / "no-such-folder")
    loose = _bench("--baselines-dir", missing, "--collect-only", "-q", tmp_path=tmp_path)
    assert loose.returncode == 0 and "WARNING" in loose.stdout and "no-such-folder does not exist" in loose.stdout
    strict = _bench("--baselines-dir", missing, "--collect-only", env={"CI": "true"}, tmp_path=tmp_path)
    assert strict.returncode == 4 and "--strict-baselines" in strict.stderr


def test_a_session_matching_nothing_touches_no_report(tmp_path):
    before = {p.name: p.read_bytes() for p in (REPO / "reports").glob("*.md")}
    result = _bench("-k", "nosuchrow", tmp_path=tmp_path)
    assert result.returncode == 5
    assert {p.name: p.read_bytes() for p in (REPO / "reports").glob("*.md")} == before
    assert not (tmp_path / "results").exists()


def test_a_row_without_baseline_fails_under_strict(tmp_path, mnist_root):
    """In CI (strict) a NEW row fails; outside it is skipped and listed."""
    baselines = tmp_path / "baselines" / "quick" / "mnist" / "cpu"
    baselines.mkdir(parents=True)
    (baselines / "other.json").write_text("{}")  # the folder is there, this row's baseline is not
    args = ["-k", "test_pair and mnist-mlp800-lr0.01 and not kd", "--seeds", "1", "--baselines-dir",
            str(tmp_path / "baselines"), "--data-root", str(mnist_root)]
    strict = _bench(*args, env={"CI": "true"}, tmp_path=tmp_path)
    assert strict.returncode == 1 and "NEW mnist-mlp800-lr0.01 under --strict-baselines" in strict.stdout
    loose = _bench(*args, tmp_path=tmp_path)
    assert loose.returncode == 0 and "NEW mnist-mlp800-lr0.01" in loose.stdout


def test_a_bad_threshold_setting_is_a_usage_error_naming_the_key(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(REPO / "bench", project / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "baselines").mkdir()
    (project / "pyproject.toml").write_text("[tool.kdbench.min_ratio]\ntrain_images_per_s = 1.5e9\n")
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    result = subprocess.run([sys.executable, "-m", "pytest", "bench/", "--collect-only", "-q", "-p", "no:cacheprovider"],
                            cwd=project, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 4
    assert "min_ratio.train_images_per_s = 1500000000.0 is out of range" in result.stderr
