"""`kdbench init` (zoo.project.scaffold): a folder becomes a project whose own rows kdbench lists and runs; what
exists is kept, never overwritten."""
import subprocess
import sys

import pytest

from zoo import cli
from zoo.project.scaffold import ScaffoldError, init_project


def test_init_writes_a_project_whose_rows_kdbench_lists(tmp_path, capsys):
    folder = tmp_path / "My KD lab"
    assert cli.main(["init", str(folder)]) == 0
    said = capsys.readouterr().out
    for path in ("kdbench.toml", "benchmarks/rows.py", "bench/test_kdbench.py", "baselines/README.md",
                 ".github/workflows/kdbench.yml"):
        assert (folder / path).is_file() and f"wrote {path}" in said
    assert (folder / ".gitignore").read_text() == "results/\n"
    assert 'row_modules = ["benchmarks.rows"]' in (folder / "kdbench.toml").read_text()
    assert "def my_kd_lab_mlp(" in (folder / "benchmarks" / "rows.py").read_text()
    # in a process of its own: the project's row module registers its model and rows in the global catalogue
    listed = subprocess.run([sys.executable, "-m", "zoo.cli", "rows"], cwd=folder, capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "my-kd-lab-student-kd" in listed.stdout and "2 rows" in listed.stdout


def test_init_keeps_what_exists_and_adds_its_section_to_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "theirs"\n')
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "test_kdbench.py").write_text("# theirs\n")
    (tmp_path / ".gitignore").write_text("*.pt\n")
    done = init_project(tmp_path, "theirs")
    assert "bench/test_kdbench.py" in done.kept and (tmp_path / "bench" / "test_kdbench.py").read_text() == "# theirs\n"
    assert (tmp_path / "pyproject.toml").read_text().endswith('[tool.kdbench]\nrow_modules = ["benchmarks.rows"]\n')
    assert (tmp_path / ".gitignore").read_text() == "*.pt\nresults/\n"
    again = init_project(tmp_path, "theirs")
    assert not again.written and any("[tool.kdbench]" in kept for kept in again.kept)


@pytest.mark.parametrize("name", ["9lives", "Has Space", "under_score", ""])
def test_a_bad_name_is_refused(tmp_path, name):
    with pytest.raises(ScaffoldError, match="--name"):
        init_project(tmp_path, name or "-")
