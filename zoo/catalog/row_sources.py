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
    select_rows = ["mine-*"]   # optional: the rows this project runs (shell patterns)

A project runs the rows its `select_rows` patterns match; without them, the rows its own row modules registered; a
project without row modules (kdbench's own repository) runs every row of the catalogue.
"""
from __future__ import annotations

import fnmatch
import importlib
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from zoo.catalog.pairs import PAIRS, Pair
from zoo.errors import KdbenchInputError
from zoo.records.results import ProjectSettingsError, project_table

ENTRY_POINT_GROUP = "kdbench.rows"


class RowSourceError(KdbenchInputError, ValueError):
    """A row module named in the settings or an entry point cannot be imported; the message names which."""


@dataclass(frozen=True)
class RowSources:
    """The row modules a project loaded, and which rows of the catalogue it runs."""

    loaded: tuple[str, ...] = ()
    selection: tuple[str, ...] = ()
    """Row-id patterns this project runs; () runs every row."""

    def selects(self, pair: Pair) -> bool:
        return not self.selection or any(fnmatch.fnmatchcase(pair.id, pattern) for pattern in self.selection)


def _string_list(table: dict, key: str, path: Path | None, example: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ProjectSettingsError(f"{path}: {key} must be a list of {example}, got {value!r}")
    return tuple(value)


def load_row_sources(project: Path) -> RowSources:
    """Import every row module of the entry-point group and of the project's settings (once each: a module
    registers its rows when first imported), and choose the rows the project runs."""
    loaded = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            point.load()
        except Exception as err:
            raise RowSourceError(f"entry point {point.name} = {point.value!r} ({ENTRY_POINT_GROUP}) failed to "
                                 f"import: {type(err).__name__}: {err}") from err
        loaded.append(f"{point.value} (entry point)")
    table, path = project_table(project)
    modules = _string_list(table, "row_modules", path, 'module names, such as ["benchmarks.rows"]')
    patterns = _string_list(table, "select_rows", path, 'row-id patterns, such as ["mine-*"]')
    if modules and str(project) not in sys.path:
        sys.path.insert(0, str(project))
    own = []
    for name in modules:
        own += _rows_of_module(name, project)
        loaded.append(name)
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(pair.id, p) for pair in PAIRS)]
    if unmatched:
        raise ProjectSettingsError(f"{path}: select_rows {unmatched} match no row of the catalogue (`kdbench rows` lists them)")
    return RowSources(tuple(loaded), patterns or tuple(own))


_ROWS_OF_MODULE: dict[str, tuple[str, ...]] = {}


def _rows_of_module(name: str, project: Path) -> tuple[str, ...]:
    """The ids of the rows the module `name` registered when imported (it is imported once per process)."""
    if name not in _ROWS_OF_MODULE:
        before = {pair.id for pair in PAIRS}
        try:
            importlib.import_module(name)
        except Exception as err:
            raise RowSourceError(f"row_modules: {name!r} (from {project}) failed to import: "
                                 f"{type(err).__name__}: {err}") from err
        _ROWS_OF_MODULE[name] = tuple(pair.id for pair in PAIRS if pair.id not in before)
    return _ROWS_OF_MODULE[name]
