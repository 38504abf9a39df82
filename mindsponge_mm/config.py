"""YAML job configs: loading, ``key.sub=value`` overrides, and schema validation.

A config is a mapping of sections (``run``, ``data``, ...). Each section's schema is a
mapping of key -> :class:`Field`. Validation fills defaults and rejects unknown keys
(with a "did you mean" hint), wrong types, missing required keys and out-of-range
values, each with a one-line :class:`~mindsponge_mm.errors.ConfigError` that names
the file and the key path.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
from pathlib import Path
from typing import Any, Sequence

import yaml

from .errors import ConfigError
from .registry import Registry

_REQUIRED = object()


@dataclasses.dataclass(frozen=True)
class Field:
    """One config key: its type(s), default, and allowed range or choices."""

    types: type | tuple[type, ...]
    default: Any = _REQUIRED
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    exclusive_minimum: float | None = None
    choices: Sequence[Any] | Registry | None = None  # a Registry: one of its names (with "did you mean")
    nullable: bool = False
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true/false", list: "a list", dict: "a mapping"}


def _type_ok(value, types) -> bool:
    types = types if isinstance(types, tuple) else (types,)
    for t in types:
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t not in (int, float) and isinstance(value, t):
            return True
    return False


def _check_field(field: Field, value, where: str):
    if value is None and field.nullable:
        return None
    if not _type_ok(value, field.types):
        types = field.types if isinstance(field.types, tuple) else (field.types,)
        wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        raise ConfigError(f"{where} must be {wanted}, got {value!r}")
    if isinstance(field.choices, Registry):
        field.choices.check_name(value, where=where)
    elif field.choices is not None and value not in field.choices:
        raise ConfigError(f"{where} must be one of {', '.join(map(str, field.choices))}; got {value!r}")
    if field.minimum is not None and value < field.minimum:
        raise ConfigError(f"{where} = {value!r} is out of range; it must be >= {field.minimum}")
    if field.maximum is not None and value > field.maximum:
        raise ConfigError(f"{where} = {value!r} is out of range; it must be <= {field.maximum}")
    if field.exclusive_minimum is not None and not value > field.exclusive_minimum:
        raise ConfigError(f"{where} = {value!r} is out of range; it must be > {field.exclusive_minimum}")
    return float(value) if field.types is float else value


def validate(config: dict, schema: dict, source: str = "config") -> dict:
    """A validated deep copy of ``config`` with defaults filled in."""
    return _validate_mapping(config, schema, source, "")


def _validate_mapping(values, schema: dict, source: str, prefix: str) -> dict:
    where_self = f"{source}: {prefix.rstrip('.') or 'top level'}"
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where_self} must be a mapping of keys to values, got {type(values).__name__}")
    for key in values:
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; valid keys: {', '.join(schema)}"
            raise ConfigError(f"{source}: unknown key '{prefix}{key}'{hint}")
    out = {}
    for key, spec in schema.items():
        where = f"{source}: {prefix}{key}"
        if callable(spec) and not isinstance(spec, Field):  # a section validated by its own function
            out[key] = spec(values.get(key), source, f"{prefix}{key}.")
        elif isinstance(spec, dict):
            out[key] = _validate_mapping(values.get(key), spec, source, f"{prefix}{key}.")
        elif key in values:
            out[key] = _check_field(spec, values[key], where)
        elif spec.required:
            raise ConfigError(f"{where} is required but missing; add it to the config")
        else:
            out[key] = copy.deepcopy(spec.default)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"data.batch_size=16"`` -> (["data", "batch_size"], 16); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    path = [k for k in key.strip().split(".")]
    if not all(path):
        raise ConfigError(f"override {text!r} has an empty key; write e.g. data.batch_size=16")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def apply_overrides(config: dict, overrides: Sequence[str]) -> dict:
    """A copy of ``config`` with dotted ``key=value`` overrides applied."""
    config = copy.deepcopy(config)
    for text in overrides:
        path, value = parse_override(text)
        node = config
        for k in path[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[path[-1]] = value
    return config


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping with ``yaml.safe_load``; every failure is a one-line ConfigError."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found; check the path (bundled examples are in configs/)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: malformed YAML{at}: {problem}; fix the syntax") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read config ({err})") from None
    if data is None:
        raise ConfigError(f"{path}: the config file is empty; see configs/quickstart.yaml for an example")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    return data


def load_config(path: str | os.PathLike, overrides: Sequence[str] = (), *, schema: dict) -> dict:
    """Load, override and validate a job config against its job's ``schema``.

    Each job owns its schema: :data:`mindsponge_mm.job_schema.JOB_SCHEMA` (train / run),
    :data:`mindsponge_mm.job_schema.MD_JOB_SCHEMA` (md) and
    :data:`mindsponge_mm.generative.job.GENERATE_SCHEMA` (generate).

    An error in a key that a command-line override set is reported as the command line's, not
    the file's: ``command line (training.lr_typo=1): unknown key 'training.lr_typo'; ...``.
    """
    config = apply_overrides(load_yaml(path), overrides)
    try:
        return validate(config, schema, str(path))
    except ConfigError as err:
        text = str(err)
        for override in reversed(list(overrides)):
            key = override.split("=", 1)[0].strip()
            if text.startswith(f"{path}: ") and re.search(re.escape(key) + r"(?![\w])", text):
                raise ConfigError(f"command line ({override}): {text[len(str(path)) + 2:]}") from None
        raise


RUN_SCHEMA = {
    "seed": Field(int, 0, minimum=0, doc="seed of every random choice of the job"),
    "output": Field(str, "runs/job", doc="run directory"),
    "device": Field(str, "auto", choices=("auto", "cpu", "gpu", "ascend"), doc="MindSpore device target"),
}
