"""The `kdbench` command line: what answering `--help` costs, and how it reports a bad request."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "scipy", "pandas", "matplotlib", "fvcore")


@pytest.mark.parametrize("argv", [[], ["launch"], ["speed"], ["compare"], ["run"]])
def test_help_imports_no_heavy_module(argv):
    """`kdbench [COMMAND] --help` builds every parser without torch, scipy or pandas (they cost seconds to import):
    the commands import them when they run."""
    probe = "\n".join(["import sys", "from zoo import cli", "try:", "    cli.parser().parse_args(sys.argv[1:] + ['--help'])",
                       "except SystemExit:", "    pass", f"print('imported:', *(m for m in {HEAVY!r} if m in sys.modules))"])
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "imported:", f"kdbench {' '.join(argv)} --help {done.stdout.splitlines()[-1]}"


def test_rows_lists_the_catalogue_and_a_pattern_that_matches_nothing_is_a_usage_error(capsys):
    from zoo.cli import main

    assert main(["rows", "mnist-mlp800-kd-*", "--tier", "full"]) == 0
    out = capsys.readouterr().out
    assert "mnist-mlp800-kd-lr0.01" in out and "mnist-mlp1200-teacher" in out and "cifar10" not in out.split("rows.")[0]
    assert "--sweeps" in out  # the omit-a-class sweep row says how to select it
    assert main(["rows", "no-such-row"]) == 2
    assert "kdbench rows" in capsys.readouterr().err


def test_a_keyword_matching_no_row_points_to_kdbench_rows(tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "pytest", "bench/", "--collect-only", "-q", "-k", "nosuchrow",
                           "-p", "no:cacheprovider"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert "`kdbench rows` lists the row ids" in done.stdout


def test_a_device_this_machine_lacks_is_a_usage_error_naming_the_fix(tmp_path, capsys):
    import torch

    from zoo.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert main(["run", "mnist-mlp800-lr0.01", "--device", "cuda", "--tier", "quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "--device cpu" in err and "Traceback" not in err
