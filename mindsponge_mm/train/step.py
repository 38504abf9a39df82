"""The loss on energies and forces, and one compiled optimisation step.

The step is a single ``ms.jit`` graph: the forward pass, forces as -∂E/∂R (one
``value_and_grad`` inside the loss), the gradient of the loss with respect to the
weights (double backward) and the optimizer update.
"""
from __future__ import annotations

import mindspore as ms
from mindspore import nn, ops

from ..models.potential import Potential


class EnergyForceLoss(nn.Cell):
    """w_E · mean((ΔE / n_atoms)²) + w_F · mean(ΔF²) over real structures and atoms (eV², (eV/Å)²).

    Inputs are :meth:`Potential.inputs` followed by the reference ``energy`` [S] and ``forces`` [A, 3].
    """

    def __init__(self, potential: Potential, energy_weight: float = 1.0, forces_weight: float = 1.0):
        super().__init__()
        self.potential = potential
        self.energy_weight = float(energy_weight)
        self.forces_weight = float(forces_weight)

    def construct(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask, structure_index,
                  n_atoms, energy_ref, forces_ref):
        energy, _, forces, _ = self.potential(positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask,
                                              atom_mask, structure_index)
        dtype = energy.dtype
        real = (n_atoms > 0).astype(dtype)
        per_atom = (energy - energy_ref) / ops.maximum(n_atoms.astype(dtype), 1.0)
        e_loss = (per_atom * per_atom * real).sum() / ops.maximum(real.sum(), 1.0)
        mask = atom_mask.astype(dtype)[:, None]
        f_loss = ((forces - forces_ref) ** 2 * mask).sum() / ops.maximum(3.0 * mask.sum(), 1.0)
        return self.energy_weight * e_loss + self.forces_weight * f_loss


class TrainStep(nn.Cell):
    """loss = step(*inputs): value_and_grad of the loss w.r.t. the trainable weights, then the optimizer."""

    def __init__(self, loss: nn.Cell, optimizer: nn.Optimizer):
        super().__init__()
        self.loss = loss
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.grad_fn = ms.value_and_grad(self.loss, None, self.weights)

    def construct(self, *inputs):
        value, grads = self.grad_fn(*inputs)
        self.optimizer(grads)
        return value


def loss_inputs(potential: Potential, batch) -> tuple:
    """The tensors :class:`EnergyForceLoss` takes for a numpy :class:`~mindsponge_mm.batch.Batch` with targets."""
    dtype = potential.model.dtype_name
    return potential.inputs(batch) + (
        ms.Tensor(batch.n_atoms), ms.Tensor(batch.targets["energy"].astype(dtype)),
        ms.Tensor(batch.targets["forces"].astype(dtype)))
