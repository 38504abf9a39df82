"""Potential: energy, forces and stress of any :class:`AtomisticModel`, by automatic differentiation.

Forces are -∂E/∂R. Stress is (1/V) ∂E/∂ε for a symmetric strain ε applied to positions and
cell together (R -> R (1 + ε), cell -> cell (1 + ε)); this is ASE's sign convention and unit
(eV/Å³). Non-periodic structures get zero stress.

The graph (energy, forces, stress) is compiled with ``ms.jit`` once per padded shape.
Checkpoints are safetensors files: the weights plus JSON metadata (model name,
hyperparameters, elements, cutoff, units, package version). No pickle.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from .. import __version__
from ..errors import UserError
from ..io_utils import atomic_path, read_safetensors
from ..nn.geometry import apply_strain, pair_structure, pair_vectors, periodic_volume
from ..potentials.base import PotentialBase
from .base import AtomisticModel
from .registry import MODELS, build

CHECKPOINT_FORMAT = "mindsponge_mm/potential"


class EnergyCell(nn.Cell):
    """[S + A]: energy per structure, then (detached) energy per atom, of a strained batch."""

    def __init__(self, model: AtomisticModel):
        super().__init__()
        self.model = model
        # atomic number -> species index, inside the graph (unknown and padding Z map to 0; the host
        # side checks real atoms in Potential.inputs)
        self.species_table = ms.Tensor(np.maximum(model.species_table, 0).astype(np.int32))

    def construct(self, positions, strain, cell, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                  structure_index):
        pair_structures = pair_structure(structure_index, idx_i)
        # r_ij (1 + ε): the same as straining R and the cell first
        vectors = apply_strain(pair_vectors(positions, cell, shifts, idx_i, idx_j, pair_structures), strain,
                               pair_structures)
        return self.energies(atomic_numbers, vectors, idx_i, idx_j, pair_mask, atom_mask, structure_index,
                             cell.shape[0])

    def unstrained(self, positions, cell, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask, structure_index):
        """The same [S + A] without a strain input: the graph for energy and forces only (training
        without stress labels differentiates this twice, so the strain path is left out)."""
        vectors = pair_vectors(positions, cell, shifts, idx_i, idx_j, pair_structure(structure_index, idx_i))
        return self.energies(atomic_numbers, vectors, idx_i, idx_j, pair_mask, atom_mask, structure_index,
                             cell.shape[0])

    def energies(self, atomic_numbers, vectors, idx_i, idx_j, pair_mask, atom_mask, structure_index, n_structures):
        species = ops.gather(self.species_table, atomic_numbers, 0)
        atom_energy = self.model(species, vectors, idx_i, idx_j, pair_mask, atom_mask)
        structure_energy = ops.unsorted_segment_sum(atom_energy, structure_index, n_structures)
        # per-atom energies ride along without a gradient (the gradient is that of Σ E_structure)
        return ops.concat([structure_energy, ops.stop_gradient(atom_energy)])


class Potential(PotentialBase):
    """Energy [S] (eV), per-atom energies [A], forces [A, 3] (eV/Å) and stress [S, 3, 3] (eV/Å³).

    ``construct`` takes tensors (for use inside training and MD graphs); :meth:`evaluate`
    takes a :class:`~mindsponge_mm.batch.Batch` and returns numpy arrays.
    """

    def __init__(self, model: AtomisticModel):
        super().__init__()
        self.energy_cell = EnergyCell(model)  # the only owner of the model's parameters in this Cell tree
        # value_and_grad of the vector [S] differentiates its sum. has_aux is avoided on purpose: in
        # MindSpore 2.10 the aux outputs of an inner value_and_grad get wrong outer gradients.
        self.grad_fn = ms.value_and_grad(self.energy_cell, grad_position=(0, 1))
        self.force_grad_fn = ms.value_and_grad(self.energy_cell.unstrained, grad_position=0)
        self._jit_construct = None
        self._jit_energy_forces = None

    @property
    def model(self) -> AtomisticModel:
        return self.energy_cell.model

    @property
    def cutoff(self) -> float:
        return self.model.cutoff

    @property
    def elements(self) -> list[int]:
        return self.model.elements

    def construct(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                  structure_index):
        """Tensors in, (energy [S] eV, energies [A] eV, forces [A, 3] eV/Å, stress [S, 3, 3] eV/Å³) out.

        positions [A, 3] Å, cell [S, 3, 3] Å, pbc [S, 3] bool, atomic_numbers [A] int32 (padding: 0),
        shifts [P, 3] (integer cell shifts as floats), idx_i/idx_j [P] int32, pair_mask [P] bool,
        atom_mask [A] bool, structure_index [A] int32 (``Batch.graph_inputs``). Every potential has
        this signature (the contract of :class:`~mindsponge_mm.potentials.base.PotentialBase`), so MD,
        training and sums of potentials can use any of them.
        """
        strain = cell * 0.0  # a zero strain that is a graph value (ops.zeros here breaks grad under jit)
        energies, (grad_r, grad_strain) = self.grad_fn(
            positions, strain, cell, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask, structure_index)
        n_structures = cell.shape[0]
        structure_energy, atom_energy = energies[:n_structures], energies[n_structures:]
        volume, periodic = periodic_volume(cell, pbc)
        factor = periodic.astype(cell.dtype) / volume
        stress = grad_strain * factor.reshape(-1, 1, 1)
        return structure_energy, atom_energy, -grad_r, stress

    def energy_forces(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                      structure_index):
        """(energy [S], energies [A], forces [A, 3]) of the same inputs as :meth:`construct`, without
        the stress (a smaller graph, and a much smaller one when it is differentiated again); overrides
        the contract's default, which runs the full call."""
        energies, grad_r = self.force_grad_fn(positions, cell, atomic_numbers, shifts, idx_i, idx_j, pair_mask,
                                              atom_mask, structure_index)
        n_structures = cell.shape[0]
        return energies[:n_structures], energies[n_structures:], -grad_r

    # ------------------------------------------------------------------ host side
    # inputs(batch) and evaluate(batch) come from potentials.base.PotentialBase
    @property
    def dtype_name(self) -> str:
        return self.model.dtype_name

    def check_elements(self, atomic_numbers: np.ndarray, atom_mask: np.ndarray) -> None:
        """A UserError for a real atom of an element the model lacks."""
        self.model.species(atomic_numbers, atom_mask)

    # ------------------------------------------------------------------ checkpoints
    def metadata(self) -> dict:
        m = self.model
        return {
            "format": CHECKPOINT_FORMAT,
            "package_version": __version__,
            "model": m.name,
            "hyperparameters": m.hyperparameters,
            "elements": m.elements,
            "cutoff": m.cutoff,
            "units": {"energy": "eV", "length": "Ang", "forces": "eV/Ang", "stress": "eV/Ang^3"},
        }

    def save(self, path: str | os.PathLike, extra: dict | None = None, extra_tensors: dict | None = None) -> Path:
        """Write weights and metadata to one safetensors file, atomically.

        ``extra`` joins the JSON metadata; ``extra_tensors`` (name -> array, e.g. optimizer state
        under ``train/...``) are stored beside the weights and ignored by :meth:`load`.
        """
        from safetensors.numpy import save_file

        path = Path(path)
        tensors = {name: p.asnumpy().copy() for name, p in self.model.parameters_and_names()}
        tensors.update(extra_tensors or {})
        meta = {**self.metadata(), **(extra or {})}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"mindsponge_mm": json.dumps(meta)})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, dtype: str | None = None) -> "Potential":
        """Rebuild the model from a checkpoint written by :meth:`save`.

        ``dtype`` (``float32``/``float64``) rebuilds it in another precision, the weights cast.
        """
        meta, tensors = read_checkpoint(path)
        hyper = MODELS[meta["model"]].checkpoint_hyperparameters(meta["hyperparameters"])
        if dtype is not None:
            hyper["dtype"] = dtype
        model = build(meta["model"], **hyper)
        params = dict(model.parameters_and_names())
        missing = set(params) - set(tensors)
        if missing:
            raise UserError(f"{path}: checkpoint lacks weights {sorted(missing)[:3]}; it does not match model {meta['model']!r}")
        for name, p in params.items():
            value = tensors[name]
            if tuple(value.shape) != tuple(p.shape):
                raise UserError(f"{path}: weight {name} has shape {value.shape}, the model expects {tuple(p.shape)}")
            p.copy_(ms.Tensor(value.astype(ms.dtype_to_nptype(p.dtype))))
        return cls(model)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """(metadata, tensors) of a checkpoint; a missing or foreign file is a one-line UserError."""
    meta, tensors = read_safetensors(path, "checkpoint not found; check the path")
    if not meta:
        raise UserError(f"{path}: not a mindsponge_mm checkpoint (no metadata); save it with Potential.save")
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("model") not in MODELS:
        raise UserError(f"{path}: unknown checkpoint format or model {meta.get('model')!r}")
    return meta, tensors

