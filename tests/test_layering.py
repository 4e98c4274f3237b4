"""The packages of zoo import one way (tools/code-shape: LAYERS, from errors up to the CLI): no circle, no upward
import, a deferred or TYPE_CHECKING import included; and the check fails on a tree that breaks it."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def code_shape(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / "code-shape"), str(root), "--check"],
                          capture_output=True, text=True, timeout=60)


def test_the_packages_import_one_way():
    done = code_shape(REPO)
    assert done.returncode == 0, done.stdout
    assert "no circle, no upward import" in done.stdout


def test_an_upward_import_inside_a_function_fails_the_check(tmp_path):
    for package, text in {"training": "def f():\n    from zoo.runs.runner import Session\n", "runs": ""}.items():
        (tmp_path / "zoo" / package).mkdir(parents=True)
        (tmp_path / "zoo" / package / "engine.py").write_text(text)
    done = code_shape(tmp_path)
    assert done.returncode == 1 and "upward import: training -> runs (zoo/training/engine.py)" in done.stdout
