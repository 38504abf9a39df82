"""Test helpers for the MD tests: a cheap, smooth, analytic pair potential with the potential contract."""
import mindspore as ms
import numpy as np
from mindspore import nn, ops


class SmoothLJ(nn.Cell):
    """Lennard-Jones times a CHARMM switch between r_on and r_c (C¹ at both ends), analytic forces/stress.

    u(r) = 4 ε [(σ/r)¹² − (σ/r)⁶] S(r²),  S(q) = (rc² − q)² (rc² + 2q − 3ron²) / (rc² − ron²)³  for ron < r < rc.
    """

    def __init__(self, epsilon=0.0104, sigma=3.4, cutoff=7.0, r_on=6.0, dtype="float32"):
        super().__init__()
        self.cutoff = float(cutoff)
        self.dtype_name = dtype
        f = np.dtype(dtype).type
        self.eps, self.sig2 = ms.Tensor(f(epsilon)), ms.Tensor(f(sigma * sigma))
        self.rc2, self.ron2 = ms.Tensor(f(cutoff**2)), ms.Tensor(f(r_on**2))
        self.inv_d3 = ms.Tensor(f(1.0 / (cutoff**2 - r_on**2) ** 3))
        self.one = ms.Tensor(f(1.0))

    def construct(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                  structure_index):
        n_s = cell.shape[0]
        pair_s = ops.gather(structure_index, idx_i, 0)
        cell_p = ops.gather(cell, pair_s, 0)
        d = (ops.gather(positions, idx_j, 0) - ops.gather(positions, idx_i, 0)
             + ops.squeeze(ops.matmul(ops.expand_dims(shifts, 1), cell_p), 1))
        q = (d * d).sum(-1)
        live = ops.logical_and(pair_mask, q < self.rc2)
        q = ops.where(live, q, self.rc2)
        y = self.sig2 / q
        x3 = y * y * y  # not ** 3: Pow is not bit-reproducible on the CPU
        u = 4.0 * self.eps * (x3 * x3 - x3)
        du_dq = 4.0 * self.eps * (-6.0 * x3 * x3 + 3.0 * x3) / q
        inside = q > self.ron2
        a = self.rc2 - q
        s = ops.where(inside, a * a * (self.rc2 + 2.0 * q - 3.0 * self.ron2) * self.inv_d3, self.one)
        ds = ops.where(inside, 6.0 * a * (self.ron2 - q) * self.inv_d3, self.one * 0.0)
        w = live.astype(q.dtype)
        e_pair = u * s * w
        g = (du_dq * s + u * ds) * w  # dE_pair/dq
        energies = 0.5 * ops.unsorted_segment_sum(e_pair, idx_i, positions.shape[0])
        energy = ops.unsorted_segment_sum(energies, structure_index, n_s)
        # E = ½ Σ_ordered u(q_ij): F_i = Σ_j 2 g d_ij
        forces = ops.unsorted_segment_sum(2.0 * ops.expand_dims(g, 1) * d, idx_i, positions.shape[0])
        virial = ops.unsorted_segment_sum(ops.expand_dims(ops.expand_dims(g, 1), 2)
                                          * ops.expand_dims(d, 2) * ops.expand_dims(d, 1), pair_s, n_s)  # ½Σ 2g d⊗d
        det = (cell[:, 0, 0] * (cell[:, 1, 1] * cell[:, 2, 2] - cell[:, 1, 2] * cell[:, 2, 1])
               - cell[:, 0, 1] * (cell[:, 1, 0] * cell[:, 2, 2] - cell[:, 1, 2] * cell[:, 2, 0])
               + cell[:, 0, 2] * (cell[:, 1, 0] * cell[:, 2, 1] - cell[:, 1, 1] * cell[:, 2, 0]))
        stress = virial / ops.reshape(ops.abs(det), (-1, 1, 1))
        return energy, energies, forces, stress


def argon(n_replicas=1, a=5.8, repeat=2, rattle=0.1, seed=0):
    from ase.build import bulk

    base = bulk("Ar", "fcc", a=a, cubic=True) * (repeat, repeat, repeat)
    frames = []
    for k in range(n_replicas):
        atoms = base.copy()
        atoms.rattle(rattle, seed=seed + k)
        frames.append(atoms)
    return frames
