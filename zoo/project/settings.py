"""The one settings model: the options of a benchmark session, declared once, read by the pytest plugin and by
every `kdbench` command alike.

Each option is declared once (OPTIONS: its flag, default, environment variable, help and parser), registered
as a pytest option (`pytest bench/ --tier full`) and as a command-line argument (`kdbench launch --tier full`)
from that declaration, and parsed by the same function. `Settings.build` turns the given values into one typed
object together with the project (the nearest folder at or above the starting one that holds baselines/), its
`[tool.kdbench]` settings (thresholds, row modules, the rows it runs) and the folders, so that a session and a
command started anywhere in the project judge by the same settings. A bad value is a `SettingsError` naming
the option, file or key: a usage error (pytest exit 4, kdbench exit 2), never a traceback.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.catalog.recipes import TIERS
from zoo.errors import KdbenchInputError
from zoo.records.results import default_cache_dir, project_root

if TYPE_CHECKING:  # the parsers (kdbench --help, pytest's option parsing) import neither torch nor scipy
    import torch

    from zoo.catalog.pairs import Pair
    from zoo.catalog.row_sources import RowSources
    from zoo.verdicts.thresholds import ThresholdConfig


class SettingsError(KdbenchInputError, ValueError):
    """A bad option or project setting; the message names it and what would work."""


DEVICE_CHOICES = "auto, cpu, cuda, cuda:N"


def parse_device(text: str) -> str:
    """auto, cpu, cuda or cuda:N, as given; anything else is a SettingsError naming the choices."""
    index = text.removeprefix("cuda:") if text.startswith("cuda:") else ""
    if text in ("auto", "cpu", "cuda") or index.isdigit():
        return text
    raise SettingsError(f"--device {text!r} is not supported; choose from {DEVICE_CHOICES}")


def parse_seeds(text: str | None) -> tuple[int, ...] | int | None:
    """'3' -> 3 (seeds 0..2); '0,4' -> (0, 4); None -> None (the recipe's count). Anything else is an error."""
    if text is None:
        return None
    usage = f"--seeds takes a count >= 1 (3) or a list of distinct seeds >= 0 (0,1,2), got {text!r}"
    parts = [p.strip() for p in str(text).split(",")]
    if not all(p.isdigit() for p in parts):  # rejects '', '3,', ',', '-1', '1.5'
        raise SettingsError(usage)
    numbers = [int(p) for p in parts]
    if len(numbers) == 1:
        if numbers[0] < 1:
            raise SettingsError(usage)
        return numbers[0]
    if len(set(numbers)) != len(numbers):
        raise SettingsError(f"{usage}: a repeated seed repeats one run and fakes a zero spread")
    return tuple(numbers)


def parse_tier(text: str) -> str:
    if text not in TIERS:
        raise SettingsError(f"--tier {text!r}: choose from {', '.join(TIERS)}")
    return text


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None


@dataclass(frozen=True)
class Option:
    """One option of a session: how it is written, its default, its environment variable and its parser."""

    flag: str
    help: str
    default: Any = None
    env: str | None = None
    parse: Callable[[Any], Any] = lambda value: value
    switch: bool = False  # a flag without a value (store_true)
    aliases: tuple[str, ...] = ()
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def default_value(self) -> Any:
        return os.environ.get(self.env, self.default) if self.env else self.default

    def kwargs(self) -> dict:
        help_text = self.help + (f" (env {self.env})" if self.env else "")
        if self.switch:
            return {"action": "store_true", "help": help_text, "dest": self.dest}
        return {"default": None, "help": help_text, "dest": self.dest, "metavar": self.metavar}


OPTIONS: dict[str, Option] = {o.dest: o for o in (
    Option("--tier", "tier to run: quick (default, CPU minutes), full (the study's recipes), fast (short GPU "
           "schedules)", default="quick", parse=parse_tier, metavar="{quick,full,fast}"),
    Option("--full", "the study's own recipes: --tier full (GPU for CIFAR)", switch=True),
    Option("--device", f"{DEVICE_CHOICES}; auto: cuda if available, else cpu", default="auto", parse=parse_device),
    Option("--data-root", "folder holding MNIST/ and the CIFAR-10 archives; unset: download into the cache dir",
           env="KDBENCH_DATA", parse=_path),
    Option("--cache-dir", "teachers and decoded datasets; on a cluster a folder every node shares",
           env="KDBENCH_CACHE", parse=_path),
    Option("--seeds", "seeds to run: a count N (seeds 0..N-1) or a list '0,3,5'; default: the recipe's count "
           "(kdbench launch: from power)", parse=parse_seeds),
    Option("--sweeps", "also the rows marked `sweep` (the omit-class, partial-data and alpha x T schemes; about 25 "
           "CPU minutes in the quick tier); `-m sweep` runs only them", switch=True),
    Option("--distillers", "also the rows marked `distillers` (methods other than Hinton KD); `-m distillers` runs "
           "only them", switch=True),
    Option("--baselines-dir", "baselines root (default: baselines/ of the project, the nearest folder at or above "
           "the current directory that holds one)", parse=_path, aliases=("--baselines",)),
)}
SESSION_OPTIONS = tuple(OPTIONS)
"""The options of a benchmark session: every one in pytest; `kdbench launch` and `run` take them all too."""


def add_pytest_options(group) -> None:
    """Register every option in a pytest option group (pytest_addoption); aliases are CLI-only."""
    for option in OPTIONS.values():
        group.addoption(option.flag, **option.kwargs())


def add_arguments(parser, names: tuple[str, ...] = SESSION_OPTIONS) -> None:
    """Register the named options on an argparse parser, with their aliases."""
    for name in names:
        option = OPTIONS[name]
        parser.add_argument(option.flag, *option.aliases, **option.kwargs())


def given(values: Mapping[str, Any] | Any) -> dict[str, Any]:
    """The options' values from a mapping, an argparse Namespace or a pytest Config (missing ones: None)."""
    if hasattr(values, "getoption"):
        return {name: values.getoption(OPTIONS[name].flag) for name in OPTIONS}
    if not isinstance(values, Mapping):
        values = vars(values)
    return {name: values.get(name) for name in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """A session's settings: the options (given, else their environment variable, else their default), the
    project they run in, its [tool.kdbench] thresholds and row sources, and its folders."""

    project: Path
    tier: str
    device: str
    data_root: Path | None
    cache_dir: Path
    seeds: tuple[int, ...] | int | None
    sweeps: bool
    distillers: bool
    baselines_dir: Path
    thresholds: ThresholdConfig
    rows: RowSources

    @classmethod
    def build(cls, values: Mapping[str, Any] | Any, start: Path | None = None) -> Settings:
        """Settings from option values (a mapping, Namespace or pytest Config), for the project at or above
        `start` (default: the current directory). Loads the project's row modules into the catalogue."""
        from zoo.catalog.row_sources import load_row_sources
        from zoo.verdicts.thresholds import load_thresholds

        values = given(values)
        raw = {name: value if value not in (None, False) else OPTIONS[name].default_value()
               for name, value in values.items()}
        parsed = {name: OPTIONS[name].parse(value) if value is not None else None for name, value in raw.items()}
        tier, given_tier = parsed["tier"], values["tier"]
        if parsed["full"]:
            if given_tier not in (None, "full"):
                raise SettingsError(f"--full contradicts --tier {given_tier}")
            tier = "full"
        project = project_root(start)
        thresholds = load_thresholds(project)  # a bad setting or row module raises a KdbenchInputError naming it
        rows = load_row_sources(project)
        return cls(project=project, tier=tier, device=parsed["device"], data_root=parsed["data_root"],
                   cache_dir=parsed["cache_dir"] or default_cache_dir(), seeds=parsed["seeds"],
                   sweeps=bool(parsed["sweeps"]), distillers=bool(parsed["distillers"]),
                   baselines_dir=parsed["baselines_dir"] or project / "baselines", thresholds=thresholds, rows=rows)

    def seeds_for(self, recipe_seeds: int) -> list[int]:
        """The seeds a row runs: --seeds, else its recipe's count."""
        if self.seeds is None:
            return list(range(recipe_seeds))
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def opted_in(self) -> set[str]:
        """The opt-in markers whose option is on (sweep, distillers)."""
        return {marker for marker, on in (("sweep", self.sweeps), ("distillers", self.distillers)) if on}

    def pairs(self) -> list[Pair]:
        """The rows of the tier this project runs (its [tool.kdbench] select_rows, else its own row modules' rows, else
        every row), opt-in ones included."""
        from zoo.catalog.pairs import pairs_for

        return [pair for pair in pairs_for(self.tier) if self.rows.selects(pair)]

    def torch_device(self) -> torch.device:
        """The device as torch names it (auto: cuda if available); one this machine lacks is a SettingsError."""
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu":
            return torch.device("cpu")
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(self.device.removeprefix("cuda:")) if ":" in self.device else 0
        if index >= available:
            why = " (this torch is built without CUDA)" if torch.version.cuda is None else ""
            raise SettingsError(f"--device {self.device}: this machine has {available} CUDA device(s){why}; choose "
                                f"from {DEVICE_CHOICES} (e.g. --device cpu), or submit the jobs to GPU nodes with "
                                f"kdbench launch --executor slurm")
        return torch.device(self.device)
