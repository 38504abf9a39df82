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

from typing import Mapping

from ..errors import ConfigError
from ..registry import Registry
from .base import CellPotential, HostEvaluation, PotentialBase, as_potential
from .lennard_jones import LennardJones
from .sum import SumPotential

# YAML ``type`` -> potential class or factory; ``register``/``build`` are the registry's methods
POTENTIALS = Registry("potential", label="potential type")
register = POTENTIALS.register
build = POTENTIALS.build


def from_config(spec: Mapping):
    """A potential from a mapping with a ``type`` key, e.g. ``{"type": "lennard_jones", "cutoff": 8.5, ...}``."""
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ConfigError(f"a potential needs a mapping with a 'type' key (one of {', '.join(POTENTIALS.names())}), got {spec!r}")
    kwargs = dict(spec)
    name = kwargs.pop("type")
    kwargs = POTENTIALS.validate(name, kwargs)  # the name, keys and simple types
    return POTENTIALS[name](**kwargs)


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
