"""An ASE calculator for any potential of this package (learned, classical or a sum).

>>> from mindsponge_mm.interfaces.ase import Calculator
>>> atoms.calc = Calculator("model.safetensors")        # or Calculator(potential)
>>> atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

Energies in eV, forces in eV/Å, stress in eV/Å³ (Voigt order xx, yy, zz, yz, xz, xy, ASE sign;
only for structures with a 3-D cell and some periodic axis), per-atom energies in eV.
Each call builds the neighbor list with :mod:`mindsponge_mm.neighbors` and a padded one-structure
batch. The atom capacity depends only on the number of atoms and the pair capacity only grows
(in buckets), so repeated calls on the same atoms reuse one compiled graph.
"""
from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator as _AseCalculator
from ase.calculators.calculator import all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from ..batch import pad_pairs, round_up
from ..data.collate import collate
from ..models import load_potential


class Calculator(_AseCalculator):
    """ASE calculator around ``potential`` (a potential object or a checkpoint path).

    Args:
        potential: ``models.Potential``, ``potentials.LennardJones``, ``potentials.SumPotential`` …,
            or the path of a checkpoint written by ``Potential.save``.
        neighbor_backend: neighbor search backend (see :mod:`mindsponge_mm.neighbors`).
        atom_multiple: the atom capacity (atoms + 1 padding atom) is rounded up to a multiple of this.
        pair_multiple: pair capacities are bucketed to multiples of this (and grow only, by an
            eighth at a time).

    The default capacities are tight: a model's work grows with the padded sizes (PaiNN on one
    ethanol: 15.9-18.7 ms per call with 16 atoms and 128 pairs, 20.8-24.7 ms with 32 and 512, on
    2 CPU cores), while the atom count of an ASE run never changes and the pair capacity grows in steps.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]
    nolabel = True

    def __init__(self, potential, neighbor_backend: str = "auto", atom_multiple: int = 8, pair_multiple: int = 32,
                 **kwargs):
        super().__init__(**kwargs)
        self.potential = load_potential(potential)
        self.neighbor_backend = neighbor_backend
        self.atom_multiple = int(atom_multiple)
        self.pair_multiple = int(pair_multiple)
        self._pair_capacity: dict[int, int] = {}  # atom capacity -> pair capacity in use

    @property
    def compiled_shapes(self) -> set:
        """The padded shapes the potential has compiled for (one per atom count, normally)."""
        return self.potential.compiled_shapes

    def batch(self, atoms):
        """The padded one-structure :class:`~mindsponge_mm.batch.Batch` of ``atoms``."""
        frame = {"atomic_numbers": atoms.numbers, "positions": atoms.positions, "cell": atoms.cell[:],
                 "pbc": atoms.pbc}
        self.potential.check_elements(atoms.numbers, np.ones(len(atoms), bool))
        batch = collate([frame], self.potential.cutoff, n_structures=1, dtype=self.potential.dtype_name,
                        atom_multiple=self.atom_multiple, pair_multiple=self.pair_multiple, steps_per_octave=0,
                        neighbor_backend=self.neighbor_backend)
        key = batch.shape[0]
        capacity = max(self._pair_capacity.get(key, 0), batch.shape[2])
        # grow in generous steps (an eighth more) so small fluctuations do not recompile
        if capacity > self._pair_capacity.get(key, 0):
            capacity = round_up(capacity + capacity // 8, self.pair_multiple)
        self._pair_capacity[key] = capacity
        return pad_pairs(batch, capacity)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        n = len(atoms)
        out = self.potential.evaluate(self.batch(atoms))
        energy = float(out["energy"][0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": np.asarray(out["forces"][:n], np.float64).copy(),
            "energies": np.asarray(out["energies"][:n], np.float64).copy(),
        }
        if atoms.pbc.any() and atoms.cell.rank == 3:
            self.results["stress"] = full_3x3_to_voigt_6_stress(np.asarray(out["stress"][0], np.float64))
