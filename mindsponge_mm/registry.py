"""One registry for every component a YAML file names (DESIGN.md, "Registry").

A :class:`Registry` maps YAML names to classes or factory functions. The constructor's (or
factory's) signature is the schema of the component's section: the YAML key and the argument are
the same word, so a section is checked against the signature and there is no second list of keys
to keep in step.

>>> MODELS = Registry("model", noun="hyperparameter")
>>> @MODELS.register("schnet")
... class SchNet: ...
>>> MODELS.validate("schnett", {}, where="job.yaml: model")   # ConfigError:
... # job.yaml: model: unknown model 'schnett'; did you mean 'schnet'?

Every mistake is one :class:`~mindsponge_mm.errors.ConfigError` line: where (as the caller names
it: a file and key path), what is wrong and the fix (the closest name or key, or the choices).

This module is on the lowest layer: it imports nothing of the package but :mod:`errors`.
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Iterable, Iterator, Mapping

from .errors import ConfigError

_EMPTY = inspect.Parameter.empty
_NAMED_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
# simple annotations (written as strings under ``from __future__ import annotations``) -> type
_SIMPLE_TYPES = {"int": int, "float": float, "str": str, "bool": bool, int: int, float: float, str: str, bool: bool}
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true/false"}


def _closest(word: Any, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return close[0] if close else None


def _expected_type(param: inspect.Parameter) -> tuple[type | None, bool]:
    """(type, nullable) of a parameter from a simple annotation (``int``, ``float | None``) or its default."""
    ann = param.annotation
    if isinstance(ann, str):
        parts = [p.strip() for p in ann.split("|")]
        nullable = "None" in parts
        parts = [p for p in parts if p != "None"]
        if len(parts) == 1 and parts[0] in _SIMPLE_TYPES:
            return _SIMPLE_TYPES[parts[0]], nullable or param.default is None
    elif ann in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[ann], param.default is None
    default = param.default
    if default is not _EMPTY and default is not None and type(default) in _SIMPLE_TYPES:
        return type(default), False
    return None, True


class Registry:
    """Named components of one kind (models, potentials, integrators, ...).

    Args:
        kind: what a component is, in messages ("model", "integrator").
        noun: what its keyword arguments are called, in messages ("hyperparameter", "option").
        label: the kind as an unknown name is reported ("potential type"; default ``kind``).
    """

    def __init__(self, kind: str, *, noun: str = "option", label: str | None = None):
        self.kind, self.noun, self.label = kind, noun, label or kind
        self._entries: dict[str, Callable] = {}

    # ------------------------------------------------------------------ registering and looking up
    def register(self, name: str):
        """Decorator: make a class or factory function buildable by ``name``; returns it unchanged."""

        def wrap(obj):
            self._entries[name] = obj
            return obj

        return wrap

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self._entries

    def __getitem__(self, name: str) -> Callable:
        return self._entries[name]

    def get(self, name, default=None):
        """The class or factory registered as ``name``, or ``default`` (as ``dict.get``)."""
        return self._entries.get(name, default) if isinstance(name, str) else default

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The named keyword arguments of ``name``'s constructor or factory (not ``self``, ``*args``, ``**kw``)."""
        obj = self._entries[name]
        if inspect.isclass(obj):
            params = list(inspect.signature(obj.__init__).parameters.values())[1:]  # drop self
        else:
            params = list(inspect.signature(obj).parameters.values())
        return {p.name: p for p in params if p.kind in _NAMED_KINDS}

    def _takes_any_keyword(self, name: str) -> bool:
        obj = self._entries[name]
        sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
        return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())

    # ------------------------------------------------------------------ checking
    @staticmethod
    def _at(where: str) -> str:
        return f"{where}: " if where else ""

    def check_name(self, name, *, where: str = "") -> Callable:
        """The entry of ``name``; an unknown name is a ConfigError with the closest name."""
        if name in self:
            return self._entries[name]
        close = _closest(name, self._entries)
        hint = f"did you mean {close!r}?" if close else f"choose one of {', '.join(self.names())}"
        raise ConfigError(f"{self._at(where)}unknown {self.label} {name!r}; {hint}")

    def validate(self, name, section: Mapping, *, where: str = "", given: Iterable[str] = (),
                 types: bool = True) -> dict:
        """Check ``name`` and the keys of ``section`` against the constructor's signature.

        ``where`` names the section for messages (e.g. ``"job.yaml: model"``); ``given`` are
        arguments the caller adds itself (they count as present); ``types`` checks each value
        against a simple annotation (``int``, ``float``, ``str``, ``bool``, optionally ``| None``)
        or the type of its default. Returns the section as a dict (integers given for float
        arguments become floats). Raises a one-line ConfigError.
        """
        self.check_name(name, where=where)
        at = self._at(where)
        if not isinstance(section, Mapping):
            raise ConfigError(f"{at}the options of {self.kind} {name!r} must be a mapping, got {type(section).__name__}")
        params = self.parameters(name)
        if not self._takes_any_keyword(name):
            for key in section:
                if key not in params:
                    close = _closest(key, params)
                    hint = f"did you mean {close!r}?" if close else f"it takes {', '.join(params) or 'none'}"
                    raise ConfigError(f"{at}{self.kind} {name!r} has no {self.noun} {key!r}; {hint}")
        given = set(given)
        missing = [k for k, p in params.items() if p.default is _EMPTY and k not in section and k not in given]
        if missing:
            raise ConfigError(f"{at}{self.kind} {name!r} needs {', '.join(missing)}; add "
                              f"{'it' if len(missing) == 1 else 'them'}")
        out = dict(section)
        if types:
            for key, value in section.items():
                if key in params:
                    out[key] = self._check_type(params[key], value, where, key)
        return out

    @staticmethod
    def _check_type(param: inspect.Parameter, value, where: str, key: str):
        wanted, nullable = _expected_type(param)
        if wanted is None or (value is None and nullable):
            return value
        if wanted is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, wanted) and not (wanted is int and isinstance(value, bool)):
            return value
        path = f"{where}.{key}" if where else key
        raise ConfigError(f"{path} must be {_TYPE_NAMES[wanted]}, got {value!r}")

    # ------------------------------------------------------------------ building
    def build(self, name, **kwargs):
        """Validate ``name`` and the keyword arguments (names, not types), then construct."""
        self.validate(name, kwargs, types=False)
        return self._entries[name](**kwargs)
