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

_REQUIRED = object()


@dataclasses.dataclass(frozen=True)
class Field:
    """One config key: its type(s), default, and allowed range or choices."""

    types: type | tuple[type, ...]
    default: Any = _REQUIRED
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    exclusive_minimum: float | None = None
    choices: Sequence[Any] | None = None
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
    if field.choices is not None and value not in field.choices:
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


def load_config(path: str | os.PathLike, overrides: Sequence[str] = (), schema: dict | None = None) -> dict:
    """Load, override and validate a job config (schema default: :data:`JOB_SCHEMA`).

    An error in a key that a command-line override set is reported as the command line's, not
    the file's: ``command line (training.lr_typo=1): unknown key 'training.lr_typo'; ...``.
    """
    config = apply_overrides(load_yaml(path), overrides)
    try:
        return validate(config, JOB_SCHEMA if schema is None else schema, str(path))
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

DATA_SCHEMA = {
    "path": Field(str, doc="dataset file (.h5, .db, extxyz, ...) or bundled:NAME"),
    "units": Field(dict, {}, doc="units of the file's columns when it does not declare them"),
    "cutoff": Field(float, 5.0, exclusive_minimum=0.0, doc="neighbor cutoff, Å"),
    "batch_size": Field(int, 16, minimum=1),
    "split": Field(list, [0.8, 0.1, None], doc="(train, val, test) counts or fractions; null = the rest"),
    "shuffle": Field(bool, True),
    "atom_multiple": Field(int, 32, minimum=1, doc="atom capacity is rounded up to this multiple"),
    "pair_multiple": Field(int, 256, minimum=1, doc="pair capacity is rounded up to this multiple"),
    "steps_per_octave": Field(int, 4, minimum=0, doc="geometric bucketing of capacities; 0 = plain multiples"),
    "dtype": Field(str, "float32", choices=("float32", "float64")),
}



def validate_model_section(values, source: str, prefix: str) -> dict | None:
    """``model: {name: painn, n_features: 64, ...}``: the name and keys of a registered model.

    The keys are the model constructor's arguments (the registry is the schema); ``elements``
    and ``cutoff`` default to the dataset's elements and ``data.cutoff``.
    """
    import inspect

    from .models.registry import MODELS

    if values is None:
        return None
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.')} must be a mapping such as {{name: painn}}")
    name = values.get("name")
    if name is None:
        raise ConfigError(f"{source}: {prefix}name is required but missing; one of {', '.join(sorted(MODELS))}")
    if name not in MODELS:
        close = difflib.get_close_matches(str(name), list(MODELS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; available: {', '.join(sorted(MODELS))}"
        raise ConfigError(f"{source}: {prefix}name = {name!r} is not a model{hint}")
    params = inspect.signature(MODELS[name].__init__).parameters
    accepted = [p for p in params if p not in ("self",)]
    for key, value in values.items():
        if key == "name":
            continue
        if key not in accepted:
            close = difflib.get_close_matches(str(key), accepted, n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; valid keys: {', '.join(accepted)}"
            raise ConfigError(f"{source}: unknown key '{prefix}{key}' for model {name}{hint}")
        default = params[key].default
        if default is not inspect.Parameter.empty and default is not None and value is not None:
            kind = type(default)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                wanted = _TYPE_NAMES.get(kind, kind.__name__)
                raise ConfigError(f"{source}: {prefix}{key} must be {wanted}, got {value!r}")
            if kind in (int, float) and value <= 0 and key != "seed":
                raise ConfigError(f"{source}: {prefix}{key} = {value!r} is out of range; it must be > 0")
    return dict(values)


SCHEDULER_SCHEMA = {
    "type": Field(str, "plateau", choices=("constant", "cosine", "plateau")),
    "warmup_epochs": Field(float, 0.0, minimum=0.0, doc="linear warm-up, epochs (fractions allowed)"),
    "min_lr": Field(float, 1e-6, minimum=0.0),
    "factor": Field(float, 0.5, exclusive_minimum=0.0, maximum=1.0, doc="plateau: lr multiplier"),
    "patience": Field(int, 5, minimum=0, doc="plateau: validations without improvement before lowering lr"),
}

LOSS_SCHEMA = {
    "type": Field(str, "mse", choices=("mse", "huber")),
    "huber_delta": Field(float, 0.01, exclusive_minimum=0.0, doc="Huber threshold (units of the error)"),
    "energy_mode": Field(str, "per_atom", choices=("per_atom", "per_structure")),
    "energy_weight": Field(float, 1.0, minimum=0.0),
    "forces_weight": Field(float, 10.0, minimum=0.0),
    "stress_weight": Field(float, 0.0, minimum=0.0),
    "schedule": Field(list, [], doc="[{epoch: k, energy: w, forces: w, stress: w}, ...] weight changes"),
}

TRAINING_SCHEMA = {
    "epochs": Field(int, 50, minimum=1),
    "optimizer": Field(str, "adam", choices=("adam", "adamw")),
    "lr": Field(float, 1e-3, exclusive_minimum=0.0),
    "weight_decay": Field(float, 0.0, minimum=0.0),
    "clip_grad_norm": Field(float, 10.0, exclusive_minimum=0.0, nullable=True),
    "ema_decay": Field(float, 0.99, exclusive_minimum=0.0, maximum=0.99999, nullable=True),
    "early_stopping_patience": Field(int, None, minimum=1, nullable=True),
    "distributed": Field(bool, False, doc="data parallel under msrun (mccl on CPU, HCCL on Ascend)"),
    "init_from": Field(str, None, nullable=True,
                       doc="fine-tune: start from this checkpoint (trained or converted, e.g. MACE-MP-0); its "
                           "model, elements, cutoff and hyperparameters are used"),
    "refit_e0": Field(bool, True, doc="fine-tune: refit the per-element E0 on the new training split"),
    "freeze": Field(list, [], doc="fine-tune: weights kept fixed, by name prefix (e.g. [embedding, layers.0])"),
    "scheduler": SCHEDULER_SCHEMA,
    "loss": LOSS_SCHEMA,
}

EVALUATE_SCHEMA = {
    "split": Field(str, "test", choices=("train", "val", "test", "all")),
}

def validate_md_section(values, source: str, prefix: str) -> dict | None:
    """The optional ``md`` section (schema: :data:`mindsponge_mm.md.job.MD_SCHEMA`); absent -> None."""
    if values is None:
        return None
    from .md.job import MD_SCHEMA

    return _validate_mapping(values, MD_SCHEMA, source, prefix)


JOB_SCHEMA = {"run": RUN_SCHEMA, "data": DATA_SCHEMA, "model": validate_model_section,
              "training": TRAINING_SCHEMA, "evaluate": EVALUATE_SCHEMA, "md": validate_md_section}
