"""Geometry of a padded batch, in graph ops: pair vectors, strain, volume, and helpers that stay finite
on padded (masked) pairs.

The one home of these formulas for models, potentials, MD and the neighbor list. Units: positions
and cells in Å, volumes in Å³; strain is dimensionless. Shapes: A atoms, S structures, P pairs
(the names of :mod:`mindsponge_mm.batch`). Everything here is differentiable (twice where the
models need it) and written for speed on the CPU: ``ops.split`` rather than slices (a slice's
gradient is a full-width zero tensor there) and per-row products rather than tiny batched matmuls.
"""
from __future__ import annotations

from mindspore import ops


def row_times_matrix(v, m):
    """Row vectors [P, 3] times 3x3 matrices stored row-major as [P, 9] -> [P, 3] (v · M per row).

    ``ops.split`` rather than slices: a slice's gradient is a full-width zero tensor on CPU."""
    v0, v1, v2 = ops.split(v, 1, 1)
    m0, m1, m2 = ops.split(m, 3, 1)
    return v0 * m0 + v1 * m1 + v2 * m2


def det3(m):
    """Determinant of [S, 3, 3] matrices -> [S], from plain ops (portable, differentiable)."""
    return (m[:, 0, 0] * (m[:, 1, 1] * m[:, 2, 2] - m[:, 1, 2] * m[:, 2, 1])
            - m[:, 0, 1] * (m[:, 1, 0] * m[:, 2, 2] - m[:, 1, 2] * m[:, 2, 0])
            + m[:, 0, 2] * (m[:, 1, 0] * m[:, 2, 1] - m[:, 1, 1] * m[:, 2, 0]))


def cell_volume(cell):
    """|det(cell)| [S] Å³ of cells [S, 3, 3] (rows are lattice vectors); 0 for a zero cell."""
    return ops.abs(det3(cell))


def periodic_volume(cell, pbc):
    """(volume [S] Å³, with 1 for non-periodic structures; periodic [S] bool: any axis periodic).

    The volume is safe to divide by: ``periodic / volume`` is the stress factor (0 for molecules)."""
    volume = cell_volume(cell)
    periodic = pbc.any(-1)
    return ops.where(periodic, volume, ops.ones_like(volume)), periodic


def pair_structure(structure_index, idx_i):
    """[P] int32: the structure of each pair (that of its atom i)."""
    return ops.gather(structure_index, idx_i, 0)


def pair_vectors(positions, cell, shifts, idx_i, idx_j, pair_structures):
    """r_ij = R[j] - R[i] + shifts_ij · cell [P, 3] (Å).

    positions [A, 3] Å, cell [S, 3, 3] Å, shifts [P, 3] (integer shifts in the float dtype),
    idx_i/idx_j [P] int32, pair_structures [P] int32 (:func:`pair_structure`)."""
    pair_cell = ops.gather(cell.reshape(cell.shape[0], 9), pair_structures, 0)  # [P, 9]: cell rows
    return ops.gather(positions, idx_j, 0) - ops.gather(positions, idx_i, 0) + row_times_matrix(shifts, pair_cell)


def apply_strain(vectors, strain, pair_structures):
    """``vectors`` [P, 3] times (1 + ε) of their structure, ε the symmetric part of ``strain`` [S, 3, 3].

    Straining the pair vectors is the same as straining positions and cell together
    (R -> R (1 + ε), cell -> cell (1 + ε)); the stress is (1/V) ∂E/∂ε at ε = 0 (ASE's sign).
    Written with 2-D column products (:func:`row_times_matrix`): tiny batched matmuls are slow on CPU.
    """
    n_structures = strain.shape[0]
    eye = ops.eye(3, 3, vectors.dtype).reshape(1, 9)
    deform = eye + 0.5 * (strain + strain.transpose(0, 2, 1)).reshape(n_structures, 9)  # rows of (1 + ε)
    return row_times_matrix(vectors, ops.gather(deform, pair_structures, 0))


def safe_norm(vectors, pair_mask):
    """|v| for real pairs and 1 for masked ones, so that d and 1/d and all their derivatives stay finite.

    vectors [P, 3], pair_mask [P] bool -> [P].
    """
    sq = (vectors * vectors).sum(-1)
    return ops.sqrt(ops.where(pair_mask, sq, ops.ones_like(sq)))


def scatter_sum(values, index, n: int):
    """Sum rows of ``values`` [P, ...] into ``n`` segments by ``index`` [P] (twice differentiable)."""
    return ops.unsorted_segment_sum(values, index, n)
