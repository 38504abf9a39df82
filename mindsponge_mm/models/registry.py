"""The model registry: YAML names -> classes; ``build(name, **hyperparameters)``."""
from __future__ import annotations

import difflib
import inspect

from ..errors import ConfigError

MODELS: dict[str, type] = {}


def register(name: str):
    """Class decorator: make a model buildable as ``build(name, ...)`` and from YAML ``model: {name: ...}``."""

    def wrap(cls):
        MODELS[name] = cls
        return cls

    return wrap


def build(name: str, **hyperparameters):
    """Construct a registered model; unknown names and keys are one-line ConfigErrors."""
    if name not in MODELS:
        close = difflib.get_close_matches(str(name), list(MODELS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; available: {', '.join(sorted(MODELS))}"
        raise ConfigError(f"unknown model {name!r}{hint}")
    cls = MODELS[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in hyperparameters:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(accepted)}"
            raise ConfigError(f"model {name!r} has no hyperparameter {key!r}{hint}")
    missing = [p for p, spec in inspect.signature(cls.__init__).parameters.items()
               if p != "self" and spec.default is inspect.Parameter.empty and p not in hyperparameters]
    if missing:
        raise ConfigError(f"model {name!r} needs {', '.join(missing)}")
    return cls(**hyperparameters)
