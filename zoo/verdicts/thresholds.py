"""Thresholds as configuration: the levels, margins and speed ratios the checks judge by.

Defaults are below, each with the evidence behind it. A project overrides them in `kdbench.toml` (top-level
keys) or, without that file, in `pyproject.toml` under `[tool.kdbench]`, globally and per row pattern:

    [tool.kdbench]
    alpha_fail = 0.001                      # a significant drop beyond its margin fails at p below this
    alpha_warn = 0.05                       # ... and warns at p below this
    [tool.kdbench.margin]                   # per seed metric: a smaller drop never warns or fails
    test_accuracy = 0.1
    [tool.kdbench.min_ratio]                # per speed metric: the ratio to the baseline below which it fails
    train_images_per_s = 0.7
    [tool.kdbench.change]                   # a quality metric far better than its baseline is CHANGED
    seed_sds = 4                            # ... beyond this many pooled seed sds; it fails unless warn = true
    [tool.kdbench.speed]                    # the paired A/B of a candidate against its base (zoo.paired)
    margin = 1.05                           # a slowdown by more than this factor fails, with significance
    [[tool.kdbench.rows]]                   # the rows whose id matches `match` (a glob), in file order
    match = "cifar10-*"
    min_ratio = { train_images_per_s = 0.6 }

Every finding names the setting that judged it and where it came from. A key kdbench does not know, a value
of the wrong type or out of range, or a row pattern without `match` is a ThresholdConfigError naming the file
and the key.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path

from zoo.records.metrics import METRICS
from zoo.records.results import ProjectSettingsError, project_table
from zoo.verdicts.stats import ALPHA_FAIL, ALPHA_WARN

DEFAULTS: dict[str, float] = {
    "alpha_fail": ALPHA_FAIL,
    "alpha_warn": ALPHA_WARN,
    # margin.<metric> and min_ratio.<metric>: each metric's default threshold, declared with it (zoo.records.metrics)
    **{metric.setting: metric.threshold for metric in METRICS.values() if metric.setting},
    # The paired A/B (zoo.paired, zoo.verdicts.paired): pairs of blocks timed back to back, base and candidate.
    "speed.margin": 1.05,  # a block slower by more than this factor, with significance, fails (asv flags at 1.1)
    "speed.alpha": 0.01,  # one-sided level of each bound of the ratio's interval
    "speed.pairs": 10,  # pairs per block; 2^-pairs must be below alpha for the interval to exist
    "speed.max_pairs": 40,  # pairs a block whose interval still straddles the margin may grow to
    "speed.block_seconds": 0.25,  # one side's share of a pair, sized on the base
    "speed.slices": 4,  # turns per side in a pair, interleaved: a pair's two sides are never further apart than a turn
    # A quality metric far better than its baseline (zoo.verdicts.gates.Spread): a change, not luck
    "change.seed_sds": 4.0,  # better by more than this many pooled seed sds, at p < alpha_fail: CHANGED, which fails.
    # An unsoftened teacher raised MNIST accuracy 8.5 pt (75 sds), dropped augmentation raised the CIFAR CNN's 5-6.5
    # pt (about 6 sds); unchanged reruns raised no IMPROVED at all (reports/evidence/aa.md, and on another CPU)
    "change.warn": 0.0,  # true: CHANGED only warns (a row pattern whose metric is expected to move)
    # kdbench launch (zoo.runs.plan)
    "launch.budget_hours": 24.0,  # device-hours a plan may cost before it is refused (--budget; --over-budget runs it)
}
"""Every setting and its default. margin.<metric> is in the metric's unit (log units for log-scale metrics)."""

BOOLEAN = frozenset({"change.warn"})
"""Settings written true or false (held as 1.0 and 0.0)."""


class ThresholdConfigError(ProjectSettingsError):
    """A bad threshold setting; the message names the file, the key and what is allowed."""


@dataclass(frozen=True)
class Setting:
    key: str
    value: float
    source: str  # "default", or the file (and row pattern) that set it

    def __str__(self) -> str:
        value = str(bool(self.value)).lower() if self.key in BOOLEAN else f"{self.value:.4g}"
        return f"{self.key} = {value}, {self.source}"


@dataclass(frozen=True)
class Thresholds:
    """The settings that judge one row."""

    settings: dict[str, Setting]

    def __getitem__(self, key: str) -> Setting:
        return self.settings[key]


@dataclass(frozen=True)
class ThresholdConfig:
    """The project's settings: global ones and (pattern, settings) pairs applied to matching rows in order."""

    file: Path | None = None
    settings: dict[str, float] = field(default_factory=dict)
    rows: tuple[tuple[str, dict[str, float]], ...] = ()

    def project_wide(self) -> Thresholds:
        """The settings before any row pattern: those of a whole run (the paired A/B's pairs and turns)."""
        return self.for_row(None)

    def for_row(self, row_id: str | None) -> Thresholds:
        chosen = {key: Setting(key, value, "default") for key, value in DEFAULTS.items()}
        chosen |= {key: Setting(key, value, str(self.file)) for key, value in self.settings.items()}
        for pattern, settings in self.rows:
            if row_id is not None and fnmatch.fnmatchcase(row_id, pattern):
                chosen |= {key: Setting(key, value, f"{self.file} rows {pattern!r}") for key, value in settings.items()}
        _check_levels(chosen, self.file)
        return Thresholds(chosen)


DEFAULT_CONFIG = ThresholdConfig()


NOT_THRESHOLDS = ("row_modules", "select_rows")
"""Keys of the kdbench settings that are not thresholds: zoo.catalog.row_sources reads them."""


def load_thresholds(project: Path) -> ThresholdConfig:
    """The settings of the project folder `project`: its kdbench.toml, else pyproject.toml's [tool.kdbench]."""
    try:
        table, path = project_table(project)
    except ProjectSettingsError as err:
        raise ThresholdConfigError(str(err)) from err
    for key in NOT_THRESHOLDS:
        table.pop(key, None)
    return _parse(table, path) if table else ThresholdConfig()


def _parse(table: dict, path: Path) -> ThresholdConfig:
    where = f"{path} [tool.kdbench]" if path.name == "pyproject.toml" else str(path)
    rows = table.pop("rows", [])
    if not isinstance(rows, list):
        raise ThresholdConfigError(f"{where}: `rows` must be an array of tables ([[tool.kdbench.rows]])")
    parsed_rows = []
    for i, row in enumerate(rows):
        row = dict(row)
        pattern = row.pop("match", None)
        if not isinstance(pattern, str) or not pattern:
            raise ThresholdConfigError(f"{where}: rows[{i}] needs `match`, a glob of row ids such as \"cifar10-*\"")
        parsed_rows.append((pattern, _settings(row, f"{where} rows[{i}] ({pattern!r})")))
    config = ThresholdConfig(path, _settings(table, where), tuple(parsed_rows))
    _check_levels({k: Setting(k, v, "") for k, v in (DEFAULTS | config.settings).items()}, path)
    return config


def _settings(table: dict, where: str) -> dict[str, float]:
    """Flatten {alpha_fail, margin: {...}, min_ratio: {...}} to dotted keys, each checked."""
    flat: dict[str, object] = {}
    for key, value in table.items():
        if key in ("margin", "min_ratio", "speed", "change") and isinstance(value, dict):
            flat |= {f"{key}.{metric}": v for metric, v in value.items()}
        else:
            flat[key] = value
    settings = {}
    for key, value in flat.items():
        if key not in DEFAULTS:
            group = key.split(".", 1)[0]
            known = sorted(k for k in DEFAULTS if k.split(".", 1)[0] == group) or sorted(DEFAULTS)
            hint = (f" ({key.split('.', 1)[1]!r} is not a metric of zoo.records.metrics)"
                    if "." in key and key.split(".", 1)[1] not in METRICS else "")
            raise ThresholdConfigError(f"{where}: unknown setting {key!r}{hint}; known: {', '.join(known)}")
        if key in BOOLEAN:
            if not isinstance(value, bool):
                raise ThresholdConfigError(f"{where}: {key} must be true or false, got {value!r}")
            settings[key] = float(value)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ThresholdConfigError(f"{where}: {key} must be a finite number, got {value!r}")
        low, high = _RANGES.get(key) or _RANGES[key.split(".", 1)[0]]
        if not low < value <= high:
            raise ThresholdConfigError(f"{where}: {key} = {value!r} is out of range; it must be > {low} and <= {high}")
        settings[key] = float(value)
    return settings


_RANGES = {"alpha_fail": (0.0, 0.5), "alpha_warn": (0.0, 0.5), "margin": (-1e-300, 1e6), "min_ratio": (0.0, 10.0),
           "speed.margin": (1.0, 10.0), "speed.alpha": (0.0, 0.25), "speed.pairs": (1.0, 1000.0),
           "speed.max_pairs": (1.0, 1000.0), "speed.block_seconds": (0.0, 600.0),
           "speed.slices": (0.0, 100.0), "launch.budget_hours": (0.0, 1e6), "change.seed_sds": (0.0, 1e6)}
"""Allowed (exclusive low, inclusive high) per setting, or per kind of setting; a margin may be 0."""


def _check_levels(settings: dict[str, Setting], file: Path | None) -> None:
    for key in ("speed.pairs", "speed.max_pairs", "speed.slices"):
        if settings[key].value != int(settings[key].value):
            raise ThresholdConfigError(f"{file}: {key} must be a whole number, got {settings[key].value:g}")
    alpha, pairs = settings["speed.alpha"].value, settings["speed.pairs"].value
    if 2.0 ** -pairs > alpha:
        raise ThresholdConfigError(f"{file}: speed.pairs = {pairs:g} pairs cannot reach speed.alpha = {alpha:g} (their "
                                   f"smallest p is 2^-pairs = {2.0 ** -pairs:.2g}); raise speed.pairs or speed.alpha")
    if settings["speed.max_pairs"].value < pairs:
        raise ThresholdConfigError(f"{file}: speed.max_pairs ({settings['speed.max_pairs'].value:g}) must not be below "
                                   f"speed.pairs ({pairs:g})")
    if settings["alpha_fail"].value > settings["alpha_warn"].value:
        raise ThresholdConfigError(f"{file}: alpha_fail ({settings['alpha_fail'].value:g}) must not exceed "
                                   f"alpha_warn ({settings['alpha_warn'].value:g}): a failure is also a warning")
