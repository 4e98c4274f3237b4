"""Model registry: entrypoints register by decorator, `create_model` builds by name."""
from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from zoo.errors import KdbenchInputError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


class UnknownModelError(KdbenchInputError, KeyError):
    """Raised for a model name that no entrypoint registered."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register `fn` under its own name; a second entrypoint with the same name is an error."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice ({_MODELS[name].__module__} and {fn.__module__})")
    _MODELS[name] = fn
    return fn


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_MODELS)


def build_model(spec, num_classes: int = 10) -> nn.Module:
    """The model a recipe's ModelSpec names (zoo.catalog.recipes), built with its arguments."""
    return create_model(spec.name, num_classes=num_classes, **dict(spec.kwargs))


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model `name` with `kwargs` passed to its entrypoint."""
    if name not in _MODELS:
        raise UnknownModelError(f"unknown model {name!r}; registered models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**kwargs)
