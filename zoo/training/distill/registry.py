"""Distiller registry: classes register by decorator under their `name`; `create_distiller` builds by name."""
from __future__ import annotations

from zoo.catalog.recipes import Distill
from zoo.training.distill.base import Distiller

_DISTILLERS: dict[str, type[Distiller]] = {}


def register_distiller(cls: type[Distiller]) -> type[Distiller]:
    """Register `cls` under `cls.name`; a second class with the same name is an error."""
    if cls.name in _DISTILLERS:
        raise ValueError(f"distiller {cls.name!r} is registered twice ({_DISTILLERS[cls.name].__module__} and "
                         f"{cls.__module__})")
    _DISTILLERS[cls.name] = cls
    return cls


def list_distillers() -> list[str]:
    """Names of every registered distiller, sorted."""
    return sorted(_DISTILLERS)


def spread_family(settings: Distill | None) -> str:
    """The seed-spread family of a recipe's distillation (its distiller's `spread_family`): '' for most rows.
    Written into every pair record, where the verdicts read it (zoo.verdicts.gates.pool_key)."""
    return _DISTILLERS[settings.method].spread_family if settings else ""


def create_distiller(settings: Distill) -> Distiller:
    """The distiller `settings.method`, built with those settings."""
    if settings.method not in _DISTILLERS:
        raise ValueError(f"unknown distiller {settings.method!r}; registered distillers: {', '.join(sorted(_DISTILLERS))}")
    return _DISTILLERS[settings.method](settings)
