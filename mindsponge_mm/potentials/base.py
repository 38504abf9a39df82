"""What every potential shares: the host-side ``inputs``/``evaluate`` and small graph helpers.

A potential is an ``nn.Cell`` whose ``construct`` takes the tensors of a
:class:`~mindsponge_mm.batch.Batch`::

    positions [A, 3] Å, cell [S, 3, 3] Å, pbc [S, 3] bool, atomic_numbers [A] int32 (padding 0),
    shifts [P, 3] (integer cell shifts as floats), idx_i/idx_j [P] int32 (a FULL pair list),
    pair_mask [P] bool, atom_mask [A] bool, structure_index [A] int32

and returns ``(energy [S] eV, energies [A] eV, forces [A, 3] eV/Å, stress [S, 3, 3] eV/Å³)``
(ASE sign: stress = (1/V) ∂E/∂ε; zero for non-periodic structures). It has ``cutoff`` (Å;
pairs beyond it are ignored), ``elements`` (atomic numbers, or None for any element) and
``dtype_name`` ("float32" or "float64"). :class:`HostEvaluation` adds ``inputs(batch)`` and
``evaluate(batch)``; a subclass only says how to check elements (:meth:`check_elements`).
A potential may also offer ``energy_forces`` (the same inputs, without the stress, as a smaller
graph; the learned ``Potential`` does): training without stress and MD of molecules use it where
it exists and the full call elsewhere, so any Cell with the contract above still works.
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import nn

from ..batch import Batch


class HostEvaluation:
    """Mixin for potential Cells: numpy batch in, numpy results out, one compiled graph per shape."""

    _jit_construct = None
    _jit_energy_forces = None

    def check_elements(self, atomic_numbers: np.ndarray, atom_mask: np.ndarray) -> None:
        """Raise a UserError when a real atom has an element this potential lacks (default: any is fine)."""

    @property
    def np_dtype(self):
        return np.float64 if self.dtype_name == "float64" else np.float32

    def inputs(self, batch: Batch) -> tuple:
        """The tensors ``construct`` takes, from a numpy batch (checks the elements first)."""
        self.check_elements(np.asarray(batch.atomic_numbers), np.asarray(batch.atom_mask))
        return tuple(ms.Tensor(a) for a in batch.graph_inputs(self.np_dtype))

    def evaluate(self, batch: Batch) -> dict[str, np.ndarray]:
        """energy [S], energies [A], forces [A, 3], stress [S, 3, 3] as numpy (padding included).

        A batch with no periodic structure runs the smaller ``energy_forces`` graph where the
        potential has one (its stress is zero by definition; PaiNN on 50 ethanol: 64 instead of
        75 ms per call); otherwise the full call."""
        if getattr(self, "compiled_shapes", None) is None:
            self.compiled_shapes = set()
        self.compiled_shapes.add(batch.shape)
        inputs = self.inputs(batch)
        if hasattr(self, "energy_forces") and not np.asarray(batch.pbc).any():
            if self._jit_energy_forces is None:
                # jit a wrapper Cell, never the bound method: MindSpore 2.10 caches the graph of a
                # jitted method and then fails ("TupleGetItem ... index") when a training or MD graph
                # calls the same method inside
                self._jit_energy_forces = ms.jit(_EnergyForcesGraph(self).construct)
            energy, energies, forces = self._jit_energy_forces(*inputs)
            stress = np.zeros((len(batch.cell), 3, 3), self.np_dtype)
        else:
            if self._jit_construct is None:
                self._jit_construct = ms.jit(self.construct)
            energy, energies, forces, stress = self._jit_construct(*inputs)
        # Read the forces first: in MindSpore 2.10, reading a sliced energy output first can cost a
        # second pass through the graph (measured: 2-3x slower evaluate on CPU).
        forces = forces.asnumpy()
        return {"energy": energy.asnumpy(), "energies": energies.asnumpy(), "forces": forces,
                "stress": stress if isinstance(stress, np.ndarray) else stress.asnumpy()}


class _EnergyForcesGraph(nn.Cell):
    """(energy, energies, forces) of a potential with ``energy_forces``, as its own top-level graph."""

    def __init__(self, potential):
        super().__init__()
        self.potential = potential

    def construct(self, *inputs):
        return self.potential.energy_forces(*inputs)
