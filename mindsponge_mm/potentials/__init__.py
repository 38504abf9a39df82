"""Classical potentials and sums of potentials, and the contract every potential has.

* :class:`PotentialBase` (:mod:`.base`): the potential contract (graph inputs, outputs and units,
  ``cutoff``, ``elements``, ``dtype_name``, ``cheap_pairs``, ``energy_forces``, ``check_elements``,
  ``inputs``/``evaluate``); :func:`as_potential` adapts a plain Cell to it;
* :class:`LennardJones`: per-element-pair LJ with cutoff, optional shift and tail corrections;
* :class:`SumPotential`: the sum of any potentials (e.g. a learned potential plus LJ);
* :func:`build`: ``build("lennard_jones", epsilon={"Ar": 0.0104}, sigma={"Ar": 3.4}, cutoff=8.5)``,
  the YAML entry point (``potential: {type: lennard_jones, ...}``), also ``type: sum`` with
  ``terms: [...]`` and ``type: checkpoint`` with ``path: model.safetensors`` (registered by
  :mod:`mindsponge_mm.models`, so import it first).
"""
from __future__ import annotations

import difflib
import inspect
from typing import Callable, Mapping

from ..errors import ConfigError
from .base import CellPotential, HostEvaluation, PotentialBase, as_potential
from .lennard_jones import LennardJones
from .sum import SumPotential

POTENTIALS: dict[str, Callable] = {}


def register(name: str):
    """Decorator: make a potential class (or factory) buildable as ``build(name, ...)``."""

    def wrap(obj):
        POTENTIALS[name] = obj
        return obj

    return wrap


def build(name: str, **kwargs):
    """A registered potential from its YAML name and keyword arguments (one-line ConfigErrors)."""
    if name not in POTENTIALS:
        close = difflib.get_close_matches(str(name), list(POTENTIALS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; available: {', '.join(sorted(POTENTIALS))}"
        raise ConfigError(f"unknown potential type {name!r}{hint}")
    factory = POTENTIALS[name]
    sig = inspect.signature(factory.__init__ if inspect.isclass(factory) else factory)
    accepted = [p for p in sig.parameters if p != "self"]
    for key in kwargs:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(accepted)}"
            raise ConfigError(f"potential {name!r} has no option {key!r}{hint}")
    missing = [p for p, spec in sig.parameters.items()
               if p != "self" and spec.default is inspect.Parameter.empty and p not in kwargs]
    if missing:
        raise ConfigError(f"potential {name!r} needs {', '.join(missing)}")
    return factory(**kwargs)


def from_config(spec: Mapping):
    """A potential from a mapping with a ``type`` key, e.g. ``{"type": "lennard_jones", "cutoff": 8.5, ...}``."""
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ConfigError(f"a potential needs a mapping with a 'type' key (one of {', '.join(sorted(POTENTIALS))}), got {spec!r}")
    kwargs = dict(spec)
    return build(kwargs.pop("type"), **kwargs)


def _sum(terms):
    """``type: sum``: ``terms`` is a list of potential mappings (each with its own ``type``)."""
    if not isinstance(terms, (list, tuple)) or not terms:
        raise ConfigError("potential 'sum' needs terms: a non-empty list of potentials")
    return SumPotential([from_config(t) for t in terms])


register("lennard_jones")(LennardJones)
register("sum")(_sum)
# ``type: checkpoint`` (a learned potential saved by ``models.Potential.save``) is registered by
# ``mindsponge_mm.models`` when it is imported: this package sits beside models and never imports it.

__all__ = ["PotentialBase", "HostEvaluation", "CellPotential", "as_potential", "LennardJones", "SumPotential",
           "POTENTIALS", "build", "from_config", "register"]
