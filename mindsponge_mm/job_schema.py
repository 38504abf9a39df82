"""The schema of the training job's YAML config (``mindsponge-mm run`` / ``train``): its sections
``run``, ``data``, ``model``, ``training``, ``evaluate`` and an optional ``md``.

The machinery (:class:`~mindsponge_mm.config.Field`, validation, overrides, ``load_config``)
lives in :mod:`mindsponge_mm.config`; the schema lives here, with the jobs, because it names the
model registry and the MD job's schema. The ``model`` section is validated against the
registered model constructor's signature.
"""
from __future__ import annotations

from .config import RUN_SCHEMA, Field, _validate_mapping
from .errors import ConfigError
from .train.loss import LOSSES
from .train.optimizers import OPTIMIZERS
from .train.schedules import SCHEDULERS

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

    The keys are the model constructor's arguments (the registry is the schema:
    :meth:`~mindsponge_mm.registry.Registry.validate`); ``elements`` and ``cutoff`` default to the
    dataset's elements and ``data.cutoff``. Sizes and other numbers with a default must be > 0 (≥ 0 for
    the keys a model class lists in ``ZERO_ALLOWED``).
    """
    from .models.registry import MODELS

    if values is None:
        return None
    where = f"{source}: {prefix.rstrip('.')}"
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping such as {{name: painn}}")
    if values.get("name") is None:
        raise ConfigError(f"{source}: {prefix}name is required but missing; one of {', '.join(MODELS.names())}")
    options = {k: v for k, v in values.items() if k != "name"}
    checked = MODELS.validate(values["name"], options, where=where, given=("elements", "cutoff"))
    params = MODELS.parameters(values["name"])
    zero_allowed = set(getattr(MODELS.get(values["name"]), "ZERO_ALLOWED", ()))
    for key, value in checked.items():
        default = params[key].default
        if (isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(default, (int, float))
                and not isinstance(default, bool) and key != "seed"):
            if key in zero_allowed and value < 0:
                raise ConfigError(f"{source}: {prefix}{key} = {value!r} is out of range; it must be >= 0")
            if key not in zero_allowed and value <= 0:
                raise ConfigError(f"{source}: {prefix}{key} = {value!r} is out of range; it must be > 0")
    return {"name": values["name"], **checked}


SCHEDULER_SCHEMA = {
    "type": Field(str, "plateau", choices=SCHEDULERS, doc="the other keys are the scheduler's arguments"),
    "warmup_epochs": Field(float, 0.0, minimum=0.0, doc="linear warm-up, epochs (fractions allowed)"),
    "min_lr": Field(float, 1e-6, minimum=0.0),
    "factor": Field(float, 0.5, exclusive_minimum=0.0, maximum=1.0, doc="plateau: lr multiplier"),
    "patience": Field(int, 5, minimum=0, doc="plateau: validations without improvement before lowering lr"),
}

LOSS_SCHEMA = {
    "type": Field(str, "mse", choices=LOSSES),
    "huber_delta": Field(float, 0.01, exclusive_minimum=0.0, doc="Huber threshold (units of the error)"),
    "energy_mode": Field(str, "per_atom", choices=("per_atom", "per_structure")),
    "energy_weight": Field(float, 1.0, minimum=0.0),
    "forces_weight": Field(float, 10.0, minimum=0.0),
    "stress_weight": Field(float, 0.0, minimum=0.0),
    "schedule": Field(list, [], doc="[{epoch: k, energy: w, forces: w, stress: w, lr: η}, ...] weight changes; lr: a stage with its own constant rate"),
}

TRAINING_SCHEMA = {
    "epochs": Field(int, 50, minimum=1),
    "optimizer": Field(str, "adam", choices=OPTIMIZERS),
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

# `mindsponge-mm md FILE`: a file with only run + md sections (a full job file uses JOB_SCHEMA)
MD_JOB_SCHEMA = {"run": RUN_SCHEMA, "md": validate_md_section}
