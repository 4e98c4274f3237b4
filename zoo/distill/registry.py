"""Distiller registry: classes register by decorator under their `name`; `create_distiller` builds by name."""
from __future__ import annotations

from zoo.distill.base import Distiller
from zoo.recipes import Distill

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
    _import_builtin()
    return sorted(_DISTILLERS)


def spread_family(distill: dict | None) -> str:
    """The seed-spread family of a recipe's distillation settings (as a record stores them): '' for most."""
    if not distill:
        return ""
    _import_builtin()
    cls = _DISTILLERS.get(distill.get("method", "hinton"))
    return cls.spread_family if cls else ""


def create_distiller(settings: Distill) -> Distiller:
    """The distiller `settings.method`, built with those settings."""
    _import_builtin()
    if settings.method not in _DISTILLERS:
        raise ValueError(f"unknown distiller {settings.method!r}; registered distillers: {', '.join(sorted(_DISTILLERS))}")
    return _DISTILLERS[settings.method](settings)


def _import_builtin() -> None:
    """Import the modules whose decorators fill the registry."""
    from zoo.distill import attention, datafree, fitnets, hinton  # noqa: F401
