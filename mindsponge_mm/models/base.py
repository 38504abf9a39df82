"""AtomisticModel: the common frame of every machine-learned potential in this package.

A model maps a padded flat graph to per-atom energies (eV)::

    species [A] int32     index of each atom's element in ``model.elements`` (padding: any index)
    vectors [P, 3]        r_ij = R[j] - R[i] + shift, Å (padding pairs: anything, masked)
    idx_i, idx_j [P]      pair atoms; messages flow j -> i
    pair_mask [P] bool, atom_mask [A] bool
    -> atom_energy [A]    eV, exactly 0 on padding atoms

Subclasses implement :meth:`AtomisticModel.atom_outputs` (the representation and its readout,
in scaled units); this class adds ``scale · y + shift + E0[element]`` and the masks.
Hyperparameters are recorded so that a checkpoint can rebuild the model.
"""
from __future__ import annotations

from typing import Sequence

import mindspore as ms
import numpy as np
from ase.data import atomic_numbers, chemical_symbols
from mindspore import Parameter, nn, ops

from ..errors import ConfigError, UserError
from ..nn.dense import ms_dtype


def parse_elements(elements: Sequence) -> list[int]:
    """Atomic numbers from symbols or numbers, sorted and unique."""
    out = []
    for e in elements:
        if isinstance(e, str):
            if e not in atomic_numbers:
                raise ConfigError(f"unknown element symbol {e!r} in model elements")
            out.append(atomic_numbers[e])
        else:
            z = int(e)
            if not 1 <= z < len(chemical_symbols):
                raise ConfigError(f"atomic number {z} in model elements is out of range 1..{len(chemical_symbols) - 1}")
            out.append(z)
    if not out:
        raise ConfigError("a model needs at least one element")
    return sorted(set(out))


class AtomisticModel(nn.Cell):
    """Base class; see the module docstring. ``cutoff`` in Å, ``dtype`` float32 or float64."""

    name = "base"

    def __init__(self, elements, cutoff: float, dtype: str = "float32", seed: int = 0):
        super().__init__()
        self.elements = parse_elements(elements)
        if not float(cutoff) > 0:
            raise ConfigError(f"cutoff must be a positive length in Å, got {cutoff}")
        self.cutoff = float(cutoff)
        self.dtype_name = str(dtype)
        if self.dtype_name not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {dtype!r}")
        self.ms_float = ms_dtype(self.dtype_name)
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)  # same seed -> same weights on every rank
        n = len(self.elements)
        self.n_elements = n
        table = np.full(len(chemical_symbols), -1, np.int64)
        table[self.elements] = np.arange(n)
        self.species_table = table  # host-side Z -> species index (-1: unknown)
        self.e0 = Parameter(ms.Tensor(np.zeros(n, self.dtype_name)), name="e0", requires_grad=False)
        self.scale = Parameter(ms.Tensor(np.ones((), self.dtype_name)), name="scale", requires_grad=False)
        self.shift = Parameter(ms.Tensor(np.zeros((), self.dtype_name)), name="shift", requires_grad=False)
        self.hyperparameters = {"elements": self.elements, "cutoff": self.cutoff, "dtype": self.dtype_name, "seed": self.seed}

    @classmethod
    def checkpoint_hyperparameters(cls, hyperparameters: dict) -> dict:
        """The constructor arguments for a checkpoint's stored hyperparameters (a model whose
        architecture changed fills in the version that older checkpoints hold)."""
        return dict(hyperparameters)

    @classmethod
    def defaults_from_data(cls, dataset, cutoff: float, spec: dict) -> dict:
        """Hyperparameters to fill in from the training data (an ``AtomsDataset``, ``cutoff`` in Å)
        where the config's ``spec`` leaves them out; jobs log and apply them. Default: none."""
        return {}

    # ------------------------------------------------------------------ host side
    def species(self, atomic_numbers_: np.ndarray, atom_mask: np.ndarray | None = None) -> np.ndarray:
        """Species indices [A] int32 for atomic numbers; a real atom of another element is a UserError."""
        z = np.asarray(atomic_numbers_)
        idx = self.species_table[np.clip(z, 0, len(self.species_table) - 1)]
        real = z > 0 if atom_mask is None else np.asarray(atom_mask, bool)
        bad = np.flatnonzero(real & (idx < 0))
        if bad.size:
            known = ", ".join(chemical_symbols[e] for e in self.elements)
            raise UserError(
                f"atom {bad[0]} is {chemical_symbols[z[bad[0]]] if 0 < z[bad[0]] < len(chemical_symbols) else z[bad[0]]}, "
                f"which this {self.name} model was not built for (elements: {known}); "
                f"train a model that includes it"
            )
        return np.where(idx < 0, 0, idx).astype(np.int32)

    def set_energy_offsets(self, atomrefs: dict | None = None, scale: float = 1.0, shift: float = 0.0) -> None:
        """E0 per element (eV, from dataset statistics), and the scale/shift of the per-atom output."""
        e0 = np.zeros(self.n_elements)
        for z, value in (atomrefs or {}).items():
            if int(z) in self.elements:
                e0[self.elements.index(int(z))] = value
        self.e0.copy_(ms.Tensor(e0.astype(self.dtype_name)))
        self.scale.copy_(ms.Tensor(np.array(scale, self.dtype_name)))
        self.shift.copy_(ms.Tensor(np.array(shift, self.dtype_name)))

    # ------------------------------------------------------------------ graph
    def atom_outputs(self, species, vectors, idx_i, idx_j, pair_mask, atom_mask):
        """[A] per-atom outputs in scaled units; implemented by each model."""
        raise NotImplementedError

    def construct(self, species, vectors, idx_i, idx_j, pair_mask, atom_mask):
        y = self.atom_outputs(species, vectors, idx_i, idx_j, pair_mask, atom_mask)
        energy = y * self.scale + self.shift + ops.gather(self.e0, species, 0)
        return energy * atom_mask.astype(energy.dtype)
