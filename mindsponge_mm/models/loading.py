"""One way to load any potential: a checkpoint path, a classical mapping with ``type``, or a potential.

MD (``md.potential``), the ASE calculator and the ``type: checkpoint`` entry of the potential
registry all go through :func:`load_potential`.
"""
from __future__ import annotations

import os
from typing import Mapping

from ..errors import ConfigError, UserError


def load_potential(spec, dtype: str | None = None):
    """A potential from ``spec``.

    Args:
        spec: the path of a checkpoint written by ``Potential.save`` (str or PathLike); a mapping
            with a ``type`` key (``{type: lennard_jones, ...}``, ``{type: sum, terms: [...]}``,
            ``{type: checkpoint, path: ...}``; see :func:`mindsponge_mm.potentials.from_config`);
            or a potential object, returned as it is.
        dtype: ``float32`` or ``float64``: a checkpoint is rebuilt in it (weights cast), and a
            mapping gets it as its ``dtype`` (and every term of a sum) unless it names one.
            ``None`` keeps the checkpoint's or the mapping's own.

    A missing or unreadable checkpoint is a one-line :class:`UserError`; an unknown ``type`` or
    option a :class:`ConfigError`.
    """
    from ..potentials import from_config
    from ..potentials.base import PotentialBase
    from .potential import Potential

    if isinstance(spec, (str, os.PathLike)):
        return Potential.load(spec, dtype=dtype)
    if isinstance(spec, Mapping):
        return from_config(_with_dtype(spec, dtype) if dtype is not None else spec)
    if not isinstance(spec, PotentialBase):
        raise UserError(f"{type(spec).__name__} is not a potential; give a Potential, a classical potential "
                        f"or a checkpoint path")
    if dtype is not None and spec.dtype_name != dtype:
        raise ConfigError(f"the given potential is {spec.dtype_name}, not {dtype}; build it with dtype={dtype!r}")
    return spec


def _with_dtype(spec: Mapping, dtype: str) -> dict:
    """``spec`` with ``dtype`` filled in where its type takes one (terms of a sum included)."""
    from ..potentials import POTENTIALS

    out = dict(spec)
    if out.get("type") == "sum" and isinstance(out.get("terms"), (list, tuple)):
        out["terms"] = [_with_dtype(t, dtype) if isinstance(t, Mapping) else t for t in out["terms"]]
        return out
    kind = out.get("type")
    if kind in POTENTIALS and "dtype" not in out and "dtype" in POTENTIALS.parameters(kind):
        out["dtype"] = dtype
    return out
