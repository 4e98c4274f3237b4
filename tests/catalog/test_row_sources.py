"""Rows from anywhere: a project's own row module (`[tool.kdbench] row_modules`) or an installed package's entry
point (`kdbench.rows`) adds rows that `kdbench rows` lists and `pytest bench/` collects, with no copy of bench/."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zoo.catalog.pairs import PAIRS, Pair, register_rows
from zoo.catalog.recipes import ModelSpec, Recipe

REPO = Path(__file__).resolve().parents[2]
ROW_MODULE = textwrap.dedent('''
    """The rows of a project of someone else's: a student of their own width on MNIST, with and without KD."""
    from zoo.catalog.pairs import Pair, register_rows
    from zoo.catalog.recipes import Distill, ModelSpec, Recipe

    QUICK = Recipe(epochs=1, batch_size=128, optimizer="sgd", lr=0.1, train_subset=0.05, seeds=3)
    register_rows(
        Pair("theirs-mlp800", "mnist", ModelSpec.of("mlp800"), {"quick": QUICK}),
        Pair("theirs-mlp800-kd", "mnist", ModelSpec.of("mlp800"),
             {"quick": QUICK.replace(distill=Distill(alpha=0.5, temperature=4))},
             teacher={"quick": "mnist-mlp1200-teacher"}, control="theirs-mlp800"),
    )
''')


def project(folder: Path, settings: str) -> Path:
    (folder / "baselines").mkdir(parents=True)
    (folder / "benchmarks").mkdir()
    (folder / "benchmarks" / "__init__.py").write_text("")
    (folder / "benchmarks" / "rows.py").write_text(ROW_MODULE)
    (folder / "pyproject.toml").write_text(f"[project]\nname = \"theirs\"\n\n[tool.kdbench]\n{settings}\n")
    return folder


def run(folder: Path, *argv: str) -> subprocess.CompletedProcess:
    """Runs in the project folder outside CI: its baselines folder is empty, which --strict-baselines (on when CI is
    set) refuses, and these tests ask only what is listed and collected."""
    env = {name: value for name, value in os.environ.items() if name != "CI"}
    return subprocess.run([sys.executable, *argv], cwd=folder, capture_output=True, text=True, timeout=300, env=env)


def test_a_projects_row_module_adds_rows_that_kdbench_lists_and_pytest_collects(tmp_path):
    folder = project(tmp_path, 'row_modules = ["benchmarks.rows"]')
    listed = run(folder, "-m", "zoo.cli", "rows", "theirs-*")
    assert listed.returncode == 0, listed.stderr
    assert "theirs-mlp800-kd" in listed.stdout and "mnist-mlp1200-teacher" in listed.stdout and "2 rows" in listed.stdout
    collected = run(folder, "-m", "pytest", str(REPO / "bench" / "test_pairs.py"), "--collect-only", "-q",
                    "-p", "no:cacheprovider", "-k", "theirs")
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
    assert "test_pair[theirs-mlp800]" in collected.stdout and "test_pair[theirs-mlp800-kd]" in collected.stdout


@pytest.mark.parametrize(("settings", "message"), [
    ('row_modules = ["benchmarks.missing"]', "row_modules: 'benchmarks.missing'"),
    ('row_modules = "benchmarks.rows"', "row_modules must be a list of module names"),
])
def test_a_bad_row_module_is_a_usage_error_naming_it(tmp_path, settings, message):
    folder = project(tmp_path, settings)
    listed = run(folder, "-m", "zoo.cli", "rows")
    assert listed.returncode == 2 and message in listed.stderr, listed.stderr
    collected = run(folder, "-m", "pytest", str(REPO / "bench" / "test_pairs.py"), "--collect-only", "-q",
                    "-p", "no:cacheprovider")
    assert collected.returncode == 4 and message in collected.stderr, collected.stderr[-2000:]


def test_registering_a_row_checks_the_whole_table_and_keeps_it_on_error():
    before = list(PAIRS)
    quick = {"quick": Recipe(epochs=1, batch_size=32, optimizer="sgd", lr=0.1)}
    with pytest.raises(ValueError, match="duplicate pair ids"):
        register_rows(Pair("mnist-mlp800-lr0.01", "mnist", ModelSpec.of("mlp800"), quick))
    with pytest.raises(KeyError, match="unknown pair 'no-such-teacher'"):
        register_rows(Pair("orphan-kd", "mnist", ModelSpec.of("mlp800"),
                           {"quick": quick["quick"].replace(distill=PAIRS[3].recipes["quick"].distill)},
                           teacher={"quick": "no-such-teacher"}))
    assert before == PAIRS
