"""The potential contract, written once: :class:`PotentialBase`, what every potential is.

A potential is an ``nn.Cell``. Its graph inputs are the ten tensors named by
:data:`~mindsponge_mm.batch.GRAPH_INPUTS`, in that order (``Batch.graph_inputs`` produces them)::

    positions [A, 3] Å, cell [S, 3, 3] Å, pbc [S, 3] bool, atomic_numbers [A] int32 (padding 0),
    shifts [P, 3] (integer cell shifts as floats), idx_i/idx_j [P] int32 (a FULL pair list),
    pair_mask [P] bool, atom_mask [A] bool, structure_index [A] int32

* ``construct(*inputs)`` -> ``(energy [S] eV, energies [A] eV, forces [A, 3] eV/Å, stress [S, 3, 3] eV/Å³)``
  (ASE sign: stress = (1/V) ∂E/∂ε; zero for non-periodic structures);
* ``energy_forces(*inputs)`` -> ``(energy, energies, forces)``: the same without the stress. The
  default runs the full call and drops the stress; the learned ``models.Potential`` overrides it
  with a smaller graph (no strain), and :class:`~mindsponge_mm.potentials.SumPotential` sums its
  terms' ``energy_forces``. MD of molecules and training without stress labels call it;
* ``cutoff`` (Å; pairs beyond it are ignored), ``elements`` (atomic numbers, or None for any
  element), ``dtype_name`` ("float32" or "float64"), ``cheap_pairs`` (True when a pair costs about
  what packing it does, so MD hands the potential the whole neighbor list; default False);
* ``check_elements(atomic_numbers, atom_mask)``: a UserError for a real atom of an element the
  potential lacks;
* host side: ``inputs(batch)`` (the graph inputs as tensors) and ``evaluate(batch)`` (numpy results,
  one compiled graph per padded shape).

Callers (MD, training, the ASE calculator, generative scoring, sums) rely on this class and never
probe for attributes. :func:`as_potential` adapts a plain Cell with the ``construct`` above and a
``cutoff`` (test potentials, user code) to the contract.
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from ase.data import chemical_symbols
from mindspore import nn

from ..batch import GRAPH_INPUTS, Batch
from ..errors import UserError


def _required(name: str, what: str) -> property:
    """A contract attribute: set by the subclass (``self.name = ...``) or overridden as a property.

    Reading it before it is set raises NotImplementedError naming the class and the attribute."""
    slot = "_contract_" + name

    def get(self):
        try:
            return self.__dict__[slot]
        except KeyError:
            raise NotImplementedError(f"{type(self).__name__} does not set {name!r} ({what}); every potential "
                                      f"must (see mindsponge_mm.potentials.base.PotentialBase)") from None

    def put(self, value):
        self.__dict__[slot] = value

    return property(get, put, doc=what)


class PotentialBase(nn.Cell):
    """Base class of every potential; see the module docstring for the contract.

    A subclass sets ``cutoff``, ``elements`` and ``dtype_name`` (attributes or properties) and
    implements ``construct``; it may override ``energy_forces``, ``check_elements`` and
    ``cheap_pairs``.
    """

    GRAPH_INPUTS = GRAPH_INPUTS  # names and order of the graph inputs (defined in mindsponge_mm.batch)
    cheap_pairs = False

    cutoff = _required("cutoff", "interaction cutoff in Å")
    elements = _required("elements", "atomic numbers the potential has parameters for, or None for any")
    dtype_name = _required("dtype_name", '"float32" or "float64"')

    _jit_construct = None
    _jit_energy_forces = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.compiled_shapes: set = set()  # padded shapes evaluate() has run (one compiled graph each)

    def construct(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                  structure_index):
        """(energy [S] eV, energies [A] eV, forces [A, 3] eV/Å, stress [S, 3, 3] eV/Å³) of the graph inputs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement construct(positions, cell, pbc, "
                                  f"atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask, structure_index)")

    def energy_forces(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                      structure_index):
        """(energy [S] eV, energies [A] eV, forces [A, 3] eV/Å): the full call without its stress."""
        energy, energies, forces, _ = self.construct(positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j,
                                                     pair_mask, atom_mask, structure_index)
        return energy, energies, forces

    def check_elements(self, atomic_numbers: np.ndarray, atom_mask: np.ndarray) -> None:
        """Raise a UserError when a real atom (``atom_mask``) has an element outside ``elements``."""
        if self.elements is None:
            return
        z = np.asarray(atomic_numbers)
        bad = np.flatnonzero(np.asarray(atom_mask, bool) & ~np.isin(z, list(self.elements)))
        if bad.size:
            zb = int(z[bad[0]])
            name = chemical_symbols[zb] if 0 < zb < len(chemical_symbols) else str(zb)
            known = ", ".join(chemical_symbols[int(e)] for e in sorted(self.elements))
            raise UserError(f"atom {bad[0]} is {name}, which this {type(self).__name__} has no parameters for "
                            f"(elements: {known}); use a potential that covers {name}")

    # ------------------------------------------------------------------ host side
    @property
    def np_dtype(self):
        return np.float64 if self.dtype_name == "float64" else np.float32

    def inputs(self, batch: Batch) -> tuple:
        """The tensors ``construct`` takes (``Batch.graph_inputs``), from a numpy batch (checks the elements first)."""
        self.check_elements(np.asarray(batch.atomic_numbers), np.asarray(batch.atom_mask))
        return tuple(ms.Tensor(a) for a in batch.graph_inputs(self.np_dtype))

    def evaluate(self, batch: Batch) -> dict[str, np.ndarray]:
        """energy [S], energies [A], forces [A, 3], stress [S, 3, 3] as numpy (padding included).

        A batch with no periodic structure runs the ``energy_forces`` graph (its stress is zero by
        definition; for PaiNN on 50 ethanol the smaller graph took 64 instead of 75 ms per call);
        otherwise the full call."""
        self.compiled_shapes.add(batch.shape)
        inputs = self.inputs(batch)
        if not np.asarray(batch.pbc).any():
            if self._jit_energy_forces is None:
                self._jit_energy_forces = ms.jit(_EnergyForcesGraph(self).construct)
            energy, energies, forces = self._jit_energy_forces(*inputs)
            stress = np.zeros((len(batch.cell), 3, 3), self.np_dtype)
        else:
            if self._jit_construct is None:
                self._jit_construct = ms.jit(_FullGraph(self).construct)
            energy, energies, forces, stress = self._jit_construct(*inputs)
        # Read the forces first: in MindSpore 2.10, reading a sliced energy output first can cost a
        # second pass through the graph (measured: 2-3x slower evaluate on CPU).
        forces = forces.asnumpy()
        return {"energy": energy.asnumpy(), "energies": energies.asnumpy(), "forces": forces,
                "stress": stress if isinstance(stress, np.ndarray) else stress.asnumpy()}


HostEvaluation = PotentialBase  # the earlier name of the contract


# Both compiled host-side graphs jit a wrapper Cell, never a bound method of the potential: MindSpore 2.10
# caches the graph of a jitted method and then fails ("TupleGetItem ... index") when a training or MD
# graph calls the same method inside (the default energy_forces calls construct). The wrappers call the
# potential's methods by name, not the Cell itself: jitting a bound method (``ms.jit(p.energy_forces)``)
# sets ``p.__parse_method__``, and a later graph that calls ``p(...)`` then parses that method instead
# of construct (seen: the full call returned energy_forces' three outputs).
class _FullGraph(nn.Cell):
    """The full call of a potential as its own top-level graph."""

    def __init__(self, potential):
        super().__init__()
        self.potential = potential

    def construct(self, *inputs):
        return self.potential.construct(*inputs)


class _EnergyForcesGraph(_FullGraph):
    """(energy, energies, forces) of a potential as its own top-level graph."""

    def construct(self, *inputs):
        return self.potential.energy_forces(*inputs)


class CellPotential(PotentialBase):
    """A plain Cell with the contract's ``construct`` and a ``cutoff`` (Å), as a :class:`PotentialBase`.

    ``dtype_name`` (default float32), ``elements`` (default None) and ``cheap_pairs`` (default False)
    are taken from the Cell where it has them."""

    def __init__(self, cell: nn.Cell):
        super().__init__()
        self.cell = cell
        self.cutoff = float(cell.cutoff)
        self.dtype_name = str(getattr(cell, "dtype_name", "float32"))
        self.elements = getattr(cell, "elements", None)
        self.cheap_pairs = bool(getattr(cell, "cheap_pairs", False))

    def construct(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                  structure_index):
        return self.cell(positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                         structure_index)


def as_potential(potential) -> PotentialBase:
    """``potential`` itself when it is a :class:`PotentialBase`; a plain Cell with the contract's
    ``construct`` and a ``cutoff`` wrapped in :class:`CellPotential`; a UserError otherwise."""
    if isinstance(potential, PotentialBase):
        return potential
    if isinstance(potential, nn.Cell) and hasattr(potential, "cutoff"):
        return CellPotential(potential)
    raise UserError(f"{type(potential).__name__} is not a potential; give a Potential, a classical potential "
                    f"(potentials.LennardJones, SumPotential) or a Cell with a cutoff and the potential's construct")
