"""A normal (non-editable) install: the wheel carries every sub-package of zoo, each imports from it, and
its pytest plugin runs bench/ from a folder holding only bench/ and baselines/."""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def package_modules(root: Path) -> list[str]:
    """Every module of the zoo package in a source tree or an unpacked wheel, as dotted names."""
    return sorted(".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
                  for p in (root / "zoo").rglob("*.py"))


def build_wheel(folder: Path) -> Path:
    """`pip wheel` of a copy of the checkout without its build outputs (a stale build/lib would leak into it)."""
    source = folder.parent / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", "build", "results", "*.egg-info", "__pycache__",
                                                                ".tox", ".ruff_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(folder), str(source)], check=True, cwd=folder.parent)
    (wheel,) = folder.glob("kdbench-*.whl")
    return wheel


def test_the_wheel_holds_and_imports_every_module(tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    target = tmp_path / "installed"
    zipfile.ZipFile(wheel).extractall(target)
    expected = package_modules(REPO)
    assert package_modules(target) == expected, "the wheel lacks modules of the checkout"
    # -S: no site processing, so the checkout's editable install (a .pth finder) cannot answer the imports;
    # the interpreter's site-packages (torch, numpy, ...) is appended after the unpacked wheel.
    check = ("import importlib, sys\n"
             f"sys.path[:0] = [{str(target)!r}]; sys.path.append({sysconfig.get_paths()['purelib']!r})\n"
             f"for name in {expected!r}:\n"
             "    module = importlib.import_module(name)\n"
             f"    assert module.__file__.startswith({str(target)!r}), (name, module.__file__)\n")
    subprocess.run([sys.executable, "-S", "-c", check], check=True, cwd=tmp_path)


def test_kdbench_init_from_the_installed_wheel_makes_a_project_that_runs_its_own_rows(tmp_path):
    """A virtual environment (torch and the other dependencies from this interpreter's site-packages) with the
    wheel installed without -e; `kdbench init` makes a project folder that holds no file of this checkout. pytest
    finds the harness through the pytest11 entry point and the shipped tests (zoo.suite) through the scaffolded
    bench/, and the project runs its own rows only."""
    wheel = build_wheel(tmp_path / "dist")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    project = tmp_path / "theirs"
    subprocess.run([str(venv / "bin" / "kdbench"), "init", str(project)], check=True, capture_output=True)
    where = subprocess.run([str(python), "-c", "import zoo.suite.rows as m; print(m.__file__)"], cwd=project,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv)), f"the suite was imported from {where}, not from the installed wheel"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTHONPATH")}
    run = subprocess.run([str(python), "-m", "pytest", "bench/", "--collect-only", "-q", "-p", "no:cacheprovider"],
                         cwd=project, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    collected = [line for line in run.stdout.splitlines() if "::" in line]
    assert "bench/test_kdbench.py::test_pair[theirs-student-kd]" in collected
    assert not any("mnist-mlp800" in line for line in collected), "a project runs its own rows, not the study's"
    assert f"--baselines-dir {project / 'baselines'} holds no baseline of the 'quick' tier" in run.stdout
