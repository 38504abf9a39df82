"""SumPotential: the sum of several potentials (e.g. a learned potential plus Lennard-Jones).

Energies in eV, forces in eV/Å, stress in eV/Å³, summed term by term; the inputs are those of
:class:`~mindsponge_mm.potentials.base.PotentialBase`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mindspore import nn

from ..errors import ConfigError
from .base import PotentialBase


class SumPotential(PotentialBase):
    """E, per-atom E, forces and stress summed over ``potentials`` (all with the same contract).

    The pair list is built once for ``cutoff`` = the largest member cutoff; each member ignores
    pairs beyond its own cutoff. ``elements`` is the intersection of the members' elements
    (None if every member takes any element). All members must share one dtype, and each
    member Cell may appear only once (MindSpore cannot call one Cell twice in a graph: build
    two instances instead). ``energy_forces`` sums the terms' ``energy_forces`` (a learned term
    then runs its graph without the strain).
    """

    name = "sum"

    def __init__(self, potentials: Sequence):
        super().__init__()
        members = list(potentials)
        if not members:
            raise ConfigError("a sum of potentials needs at least one term")
        if len({id(p) for p in members}) != len(members):
            raise ConfigError("the same potential object appears twice in a sum; build a second instance instead")
        for p in members:
            if not isinstance(p, PotentialBase):
                raise ConfigError(f"{type(p).__name__} is not a potential (a PotentialBase: LennardJones, a "
                                  f"learned Potential, a SumPotential, or potentials.as_potential(cell))")
        dtypes = sorted({p.dtype_name for p in members})
        if len(dtypes) > 1:
            raise ConfigError(f"the terms of a sum of potentials mix dtypes {dtypes}; give every term the same dtype")
        self.dtype_name = dtypes[0]
        self.terms = nn.CellList(members)
        self.n_terms = len(members)
        self.cutoff = max(float(p.cutoff) for p in members)
        self.cheap_pairs = all(p.cheap_pairs for p in members)
        sets = [set(p.elements) for p in members if p.elements is not None]
        self.elements = sorted(set.intersection(*sets)) if sets else None

    def check_elements(self, atomic_numbers: np.ndarray, atom_mask: np.ndarray) -> None:
        for p in self.terms:
            p.check_elements(atomic_numbers, atom_mask)

    def construct(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                  structure_index):
        """(energy [S] eV, energies [A] eV, forces [A, 3] eV/Å, stress [S, 3, 3] eV/Å³) summed over the terms."""
        energy, energies, forces, stress = self.terms[0](
            positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask, structure_index)
        for k in range(1, self.n_terms):
            e, ea, f, s = self.terms[k](
                positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask, structure_index)
            energy = energy + e
            energies = energies + ea
            forces = forces + f
            stress = stress + s
        return energy, energies, forces, stress

    def energy_forces(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                      structure_index):
        """(energy [S] eV, energies [A] eV, forces [A, 3] eV/Å) summed over the terms' ``energy_forces``."""
        total = self.terms[0].energy_forces(positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask,
                                            atom_mask, structure_index)
        for k in range(1, self.n_terms):
            e, ea, f = self.terms[k].energy_forces(positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j,
                                                   pair_mask, atom_mask, structure_index)
            total = (total[0] + e, total[1] + ea, total[2] + f)
        return total
