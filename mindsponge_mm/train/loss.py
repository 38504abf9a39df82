"""The training loss: a weighted sum of energy, force and stress errors (MSE or Huber).

    L = w_E · Σ_s ρ(ΔE_s / n_s) / N_S  +  w_F · Σ_a,k ρ(ΔF_ak) / (3 N_A)  +  w_S · Σ_s Σ_kl ρ(Δσ_s,kl) / (9 N_σ)

with ΔE per atom (``energy_mode="per_atom"``, n_s the atom count) or per structure
(n_s = 1), ρ(x) = x² (MSE) or the Huber function with threshold δ. Units: eV, eV/Å, eV/Å³.

The normalisers N_S, N_A, N_σ (real structures, real atoms, structures with a stress label)
are *inputs*, not computed from the batch: under data parallelism every rank passes the
counts of the combined batch, so the sum of the ranks' gradients is exactly the gradient
of the combined batch's loss. The weights (w_E, w_F, w_S) live in a non-trainable
Parameter so that a schedule can change them between steps without recompiling.
"""
from __future__ import annotations

import functools

import numpy as np
import mindspore as ms
from mindspore import Parameter, nn, ops

from ..errors import ConfigError
from ..registry import Registry

# ``training.loss.type`` -> PotentialLoss with that error function (rho)
LOSSES = Registry("loss", label="loss type")
ENERGY_MODES = ("per_atom", "per_structure")


class PotentialLoss(nn.Cell):
    """Scalar loss of a :class:`~mindsponge_mm.models.Potential` (or any potential of its signature).

    ``construct`` takes the potential's ten inputs, then ``n_atoms [S]`` int32, ``energy_ref [S]``,
    ``forces_ref [A, 3]``, ``stress_ref [S, 3, 3]``, ``stress_mask [S]`` (1.0 where a stress label
    exists) and ``norms [3]`` = (N_S, N_A, N_σ), and returns the loss (eV² or (eV/Å)²).
    ``stress=False`` (no stress term at any epoch) leaves the stress out of the graph; the stress
    inputs are then ignored.
    """

    def __init__(self, potential, weights=(1.0, 1.0, 0.0), kind: str = "mse", huber_delta: float = 0.01,
                 energy_mode: str = "per_atom", stress: bool = True):
        super().__init__()
        LOSSES.check_name(kind, where="training.loss.type")
        if energy_mode not in ENERGY_MODES:
            raise ConfigError(f"training.loss.energy_mode must be one of {', '.join(ENERGY_MODES)}, got {energy_mode!r}")
        self.potential = potential
        self.dtype_name = dtype = potential.dtype_name
        self.weights = Parameter(ms.Tensor(np.asarray(weights, dtype)), name="loss_weights", requires_grad=False)
        self.huber = kind == "huber"
        self.delta = float(huber_delta)
        self.per_atom = energy_mode == "per_atom"
        # without stress labels the strain derivative is left out of the graph (potential.energy_forces)
        self.stress = bool(stress)

    def set_weights(self, energy: float, forces: float, stress: float) -> None:
        """New weights, effective at the next step (in-place: compiled graphs see them)."""
        self.weights.copy_(ms.Tensor(np.asarray([energy, forces, stress], self.dtype_name)))

    def rho(self, x):
        if not self.huber:
            return x * x
        ax = ops.abs(x)
        return ops.where(ax <= self.delta, 0.5 * x * x, self.delta * (ax - 0.5 * self.delta))

    def construct(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                  structure_index, n_atoms, energy_ref, forces_ref, stress_ref, stress_mask, norms):
        n_s, n_a, n_sigma = ops.split(ops.maximum(norms, 1.0), 1)
        w_e, w_f, w_s = ops.split(self.weights, 1)
        if self.stress:
            energy, _, forces, stress = self.potential(positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j,
                                                       pair_mask, atom_mask, structure_index)
            s_mask = stress_mask.reshape(-1, 1, 1)
            s_term = w_s * (self.rho(stress - stress_ref) * s_mask).sum() / (9.0 * n_sigma)
        else:
            energy, _, forces = self.potential.energy_forces(positions, cell, pbc, atomic_numbers, shifts, idx_i,
                                                             idx_j, pair_mask, atom_mask, structure_index)
            s_term = w_s * 0.0
        dtype = energy.dtype
        real = (n_atoms > 0).astype(dtype)
        if self.per_atom:
            de = (energy - energy_ref) / ops.maximum(n_atoms.astype(dtype), 1.0)
        else:
            de = energy - energy_ref
        e_loss = (self.rho(de) * real).sum() / n_s
        mask = ops.expand_dims(atom_mask.astype(dtype), 1)
        f_loss = (self.rho(forces - forces_ref) * mask).sum() / (3.0 * n_a)
        return (w_e * e_loss + w_f * f_loss + s_term).reshape(())


for _kind in ("mse", "huber"):
    LOSSES.register(_kind)(functools.partial(PotentialLoss, kind=_kind))


def loss_inputs(potential, batch, norms=None) -> tuple:
    """The tensors :class:`PotentialLoss` takes for a numpy :class:`~mindsponge_mm.batch.Batch`.

    Missing labels (no forces, no stress) become zeros with a zero mask; the loss weights must
    then be zero for them (the trainer checks this before training). ``norms`` defaults to this
    batch's own counts.
    """
    dtype = np.dtype(potential.model.dtype_name)
    s_cap, a_cap = len(batch.n_atoms), len(batch.atom_mask)
    t = batch.targets
    energy = t["energy"] if "energy" in t else np.zeros(s_cap)
    forces = t["forces"] if "forces" in t else np.zeros((a_cap, 3))
    stress = t["stress"] if "stress" in t else np.zeros((s_cap, 3, 3))
    stress_mask = (batch.structure_mask & batch.pbc.any(-1)) if "stress" in t else np.zeros(s_cap, bool)
    if norms is None:
        norms = (batch.structure_mask.sum(), batch.atom_mask.sum(), stress_mask.sum())
    extra = (batch.n_atoms.astype(np.int32), energy.astype(dtype), forces.astype(dtype), stress.astype(dtype),
             stress_mask.astype(dtype), np.asarray(norms, dtype))
    return potential.inputs(batch) + tuple(ms.Tensor(np.ascontiguousarray(a)) for a in extra)
