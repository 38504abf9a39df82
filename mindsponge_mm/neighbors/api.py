"""The neighbor-search entry points and backend dispatch.

Semantics are those of ``ase.neighborlist.neighbor_list('ijS', ...)``: the full list
(both i→j and j→i), integer cell shifts S with ``r_ij = R[j] - R[i] + S @ cell``,
and pairs with ``d < cutoff``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import UserError

BACKENDS = ("auto", "ase")


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise UserError(f"unknown neighbor backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return "ase" if backend == "auto" else backend


def neighbor_list(positions, cell, pbc, cutoff: float, *, self_interaction: bool = False, backend: str = "auto"):
    """Pairs within ``cutoff`` (Å) of one structure.

    Args:
        positions: [N, 3] Å. cell: [3, 3] Å, rows are lattice vectors. pbc: [3] bool.
    Returns:
        ``idx_i`` [P] int32, ``idx_j`` [P] int32, ``shifts`` [P, 3] int32 cell shifts.
    """
    _check_backend(backend)
    from ase.neighborlist import primitive_neighbor_list

    positions = np.asarray(positions, dtype=np.float64)
    if len(positions) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros((0, 3), np.int32)
    i, j, s = primitive_neighbor_list(
        "ijS", np.asarray(pbc, bool), np.asarray(cell, np.float64), positions, float(cutoff),
        self_interaction=self_interaction, use_scaled_positions=False,
    )
    return i.astype(np.int32), j.astype(np.int32), s.astype(np.int32)


def batch_neighbor_list(
    positions: Sequence[np.ndarray], cells: Sequence[np.ndarray], pbcs: Sequence[np.ndarray], cutoff: float,
    *, backend: str = "auto",
):
    """Neighbor lists of many structures, concatenated, with atom indices offset per structure.

    Returns ``idx_i`` [P], ``idx_j`` [P] (indices into the concatenated atoms),
    ``shifts`` [P, 3] and ``counts`` [S] (pairs per structure).
    """
    lists = [neighbor_list(r, c, p, cutoff, backend=backend) for r, c, p in zip(positions, cells, pbcs)]
    counts = np.array([len(i) for i, _, _ in lists], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum([len(r) for r in positions])[:-1]]).astype(np.int32)
    shift = np.repeat(starts, counts)
    idx_i = np.concatenate([l[0] for l in lists]) + shift if lists else np.zeros(0, np.int32)
    idx_j = np.concatenate([l[1] for l in lists]) + shift if lists else np.zeros(0, np.int32)
    shifts = np.concatenate([l[2] for l in lists]) if lists else np.zeros((0, 3), np.int32)
    return idx_i.astype(np.int32), idx_j.astype(np.int32), shifts.astype(np.int32), counts
