"""Rows from anywhere: an installed package or a module of the project adds rows to the catalogue, which
`pytest bench/`, `kdbench rows` and `kdbench launch` then run like the study's own.

A module adds its rows by calling `zoo.catalog.pairs.register_rows(...)` when imported (models, datasets and
distillers register the same way, in `zoo.training.registry`, `zoo.training.data` and
`zoo.training.distill.registry`). kdbench imports such modules from two places:

    # an installed package's pyproject.toml
    [project.entry-points."kdbench.rows"]
    my_rows = "my_package.kdbench_rows"

    # the project's own pyproject.toml (or kdbench.toml), modules found from the project folder
    [tool.kdbench]
    row_modules = ["benchmarks.rows"]
"""
from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from pathlib import Path

from zoo.records.results import ProjectSettingsError, project_table

ENTRY_POINT_GROUP = "kdbench.rows"


class RowSourceError(ValueError):
    """A row module named in the settings or an entry point cannot be imported; the message names which."""


def configured_row_modules(project: Path) -> list[str]:
    """`row_modules` of the project's kdbench settings, checked to be a list of module names."""
    table, path = project_table(project)
    modules = table.get("row_modules", [])
    if not isinstance(modules, list) or not all(isinstance(m, str) and m for m in modules):
        raise ProjectSettingsError(f"{path}: row_modules must be a list of module names, such as "
                                   f"[\"benchmarks.rows\"], got {modules!r}")
    return modules


def load_row_sources(project: Path) -> list[str]:
    """Import every row module of the entry-point group and of the project's settings (once each: a module
    registers its rows when first imported); the sources loaded, for the session header."""
    loaded = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            point.load()
        except Exception as err:
            raise RowSourceError(f"entry point {point.name} = {point.value!r} ({ENTRY_POINT_GROUP}) failed to "
                                 f"import: {type(err).__name__}: {err}") from err
        loaded.append(f"{point.value} (entry point)")
    modules = configured_row_modules(project)
    if modules and str(project) not in sys.path:
        sys.path.insert(0, str(project))
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:
            raise RowSourceError(f"row_modules: {name!r} (from {project}) failed to import: "
                                 f"{type(err).__name__}: {err}") from err
        loaded.append(name)
    return loaded
