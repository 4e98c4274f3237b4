"""`kdbench init`: make a folder a kdbench project in one command.

It writes what a project needs to gate its own rows, and nothing of this repository's: the kdbench settings
(`[tool.kdbench]` in pyproject.toml, else kdbench.toml) naming an example row module, that module
(benchmarks/rows.py: a student of the project's own on MNIST, with and without KD), bench/test_kdbench.py (which
imports kdbench's shipped tests, zoo.suite), baselines/ and a GitHub Actions workflow that posts the verdicts as a
pull-request comment. A file that exists is kept, never overwritten, and said so.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from zoo.errors import KdbenchInputError
from zoo.records.io import write_text

TEMPLATES = Path(__file__).with_name("templates")
ROW_MODULE = "benchmarks.rows"
DESTINATIONS = {  # template (under templates/, without .tmpl) -> where it goes in the project
    "benchmarks/__init__.py": "benchmarks/__init__.py",
    "benchmarks/rows.py": "benchmarks/rows.py",
    "bench/test_kdbench.py": "bench/test_kdbench.py",
    "baselines/README.md": "baselines/README.md",
    "workflows/kdbench.yml": ".github/workflows/kdbench.yml",
}
IGNORED = "results/"  # each session's records, reports and history: never committed


class ScaffoldError(KdbenchInputError, ValueError):
    """The folder cannot be made a project as asked; the message says why and what to do."""


@dataclass
class Scaffold:
    """What `kdbench init` wrote and kept."""

    folder: Path
    name: str
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"kdbench project {self.name!r} in {self.folder}"]
        lines += [f"  wrote {path}" for path in self.written]
        lines += [f"  kept  {path} (exists; not overwritten)" for path in self.kept]
        lines += ["", "Next:",
                  f"  kdbench rows '{self.name}-*'                 the example rows (edit {ROW_MODULE.replace('.', '/')}.py)",
                  "  pytest bench/ --update-baselines            record the baselines, review and commit baselines/",
                  "  pytest bench/                               gate every row against them",
                  "  kdbench compare latest baselines --format markdown   the pull-request comment"]
        return "\n".join(lines)


def project_name(folder: Path) -> str:
    """A row-id prefix from the folder's name: lower case letters, digits and dashes."""
    name = re.sub(r"[^a-z0-9]+", "-", folder.resolve().name.lower()).strip("-")
    return name or "project"


def init_project(folder: Path, name: str | None = None) -> Scaffold:
    """Write the project's files into `folder` (created if missing); existing files are kept."""
    name = name or project_name(folder)
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ScaffoldError(f"--name {name!r}: a row-id prefix starts with a letter and has only a-z, 0-9 and '-'")
    folder.mkdir(parents=True, exist_ok=True)
    done = Scaffold(folder, name)
    _settings(folder, done)
    model = name.replace("-", "_") + "_mlp"
    for template, destination in DESTINATIONS.items():
        text = (TEMPLATES / f"{template}.tmpl").read_text().replace("{name}", name).replace("{model}", model)
        _write(folder, destination, text, done)
    _ignore_results(folder, done)
    return done


def _write(folder: Path, relative: str, text: str, done: Scaffold) -> None:
    path = folder / relative
    if path.exists():
        done.kept.append(relative)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, text)
    done.written.append(relative)


def _settings(folder: Path, done: Scaffold) -> None:
    """`row_modules` in the project's kdbench settings: a [tool.kdbench] table appended to pyproject.toml, or a
    kdbench.toml beside it; settings already there are kept and must name the row module themselves."""
    section = f'row_modules = ["{ROW_MODULE}"]\n'
    pyproject = folder / "pyproject.toml"
    if (folder / "kdbench.toml").exists():
        done.kept.append(f"kdbench.toml (add {section.strip()} if it lacks it)")
        return
    if not pyproject.exists():
        _write(folder, "kdbench.toml", "# kdbench settings (zoo.verdicts.thresholds lists the others)\n" + section,
               done)
        return
    try:
        table = tomllib.loads(pyproject.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ScaffoldError(f"{pyproject}: not valid TOML ({err}); mend it, then run kdbench init again") from err
    if "kdbench" in table.get("tool", {}):
        done.kept.append(f"pyproject.toml [tool.kdbench] (add {section.strip()} if it lacks it)")
        return
    write_text(pyproject, pyproject.read_text().rstrip("\n") + "\n\n[tool.kdbench]\n" + section)
    done.written.append("pyproject.toml [tool.kdbench]")


def _ignore_results(folder: Path, done: Scaffold) -> None:
    gitignore = folder / ".gitignore"
    lines = gitignore.read_text().splitlines() if gitignore.exists() else []
    if IGNORED in lines or f"/{IGNORED}" in lines:
        return
    write_text(gitignore, "\n".join([*lines, IGNORED]) + "\n")
    done.written.append(f".gitignore ({IGNORED})")
