"""The neighbor-search entry points and backend dispatch.

Semantics are those of ``ase.neighborlist.neighbor_list('ijS', ...)``: the full list
(both i→j and j→i), integer cell shifts S with ``r_ij = R[j] - R[i] + S @ cell``, and
pairs with ``|r_ij| < cutoff`` (strict, like ASE).

Backends:

* ``"cpu"``: the C++ cell-list kernel (``kernels/cpu``), compiled on first use;
* ``"mindspore"``: the portable MindSpore-ops fallback (any device, no custom op);
* ``"ase"``, ``"vesin"``, ``"matscipy"``: references for tests and benchmarks;
* ``"auto"``: ``"cpu"``, or ``"mindspore"`` with a warning when the kernel cannot be built.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from ..errors import UserError

BACKENDS = ("auto", "cpu", "mindspore", "ase", "vesin", "matscipy")
_auto_choice: str | None = None


def resolve_backend(backend: str) -> str:
    """The concrete backend for a name; ``"auto"`` tries to build the C++ kernel once."""
    global _auto_choice
    if backend not in BACKENDS:
        raise UserError(f"unknown neighbor backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    if _auto_choice is None:
        from .aot import KernelBuildError, build

        try:
            build()
            _auto_choice = "cpu"
        except KernelBuildError as err:
            warnings.warn(f"{err}; using the MindSpore-ops neighbor fallback", stacklevel=3)
            _auto_choice = "mindspore"
    return _auto_choice


def _check_inputs(positions, cell, pbc, cutoff):
    positions = np.asarray(positions)
    if positions.dtype not in (np.float32, np.float64):
        positions = positions.astype(np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise UserError(f"positions must have shape [N, 3], got {positions.shape}")
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3) if np.size(cell) else np.zeros((3, 3))
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    if not np.isfinite(positions).all():
        bad = int(np.flatnonzero(~np.isfinite(positions).all(axis=1))[0])
        raise UserError(f"atom {bad} has a non-finite position {positions[bad].tolist()}; fix the structure")
    if not float(cutoff) > 0:
        raise UserError(f"cutoff must be a positive length in Å, got {cutoff}")
    for k in range(3):
        if pbc[k] and not np.linalg.norm(cell[k]) > 0:
            raise UserError(f"pbc[{k}] is True but cell vector {k} is zero; give the cell or set pbc[{k}] = False")
    return positions, cell, pbc


def neighbor_list(positions, cell, pbc, cutoff: float, *, self_interaction: bool = False, backend: str = "auto"):
    """Pairs within ``cutoff`` (Å) of one structure.

    Args:
        positions: [N, 3] Å, float32 or float64 (atoms may lie outside the cell).
        cell: [3, 3] Å, rows are lattice vectors (ignored along non-periodic axes).
        pbc: [3] bool.
    Returns:
        ``idx_i`` [P] int32, ``idx_j`` [P] int32, ``shifts`` [P, 3] int32 cell shifts.
    """
    positions, cell, pbc = _check_inputs(positions, cell, pbc, cutoff)
    offsets = np.array([0, len(positions)])
    return _pairs(positions, cell[None], pbc[None], offsets, cutoff, self_interaction, resolve_backend(backend))


def batch_neighbor_list(
    positions: Sequence[np.ndarray], cells: Sequence[np.ndarray], pbcs: Sequence[np.ndarray], cutoff: float,
    *, backend: str = "auto",
):
    """Neighbor lists of many structures in one call (one kernel launch, no Python loop per structure).

    Returns ``idx_i`` [P], ``idx_j`` [P] (indices into the concatenated atoms), ``shifts``
    [P, 3] and ``counts`` [S] (pairs per structure).
    """
    checked = [_check_inputs(r, c, p, cutoff) for r, c, p in zip(positions, cells, pbcs)]
    n_atoms = np.array([len(r) for r, _, _ in checked], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_atoms)])
    if not checked:
        empty = np.zeros(0, np.int32)
        return empty, empty, np.zeros((0, 3), np.int32), np.zeros(0, np.int64)
    dtype = np.float64 if any(r.dtype == np.float64 for r, _, _ in checked) else np.float32
    all_positions = np.concatenate([r for r, _, _ in checked]).astype(dtype, copy=False)
    cells_arr = np.stack([c for _, c, _ in checked])
    pbc_arr = np.stack([p for _, _, p in checked])
    idx_i, idx_j, shifts = _pairs(all_positions, cells_arr, pbc_arr, offsets, cutoff, False, resolve_backend(backend))
    structure_of_pair = np.searchsorted(offsets, idx_i, side="right") - 1
    counts = np.bincount(structure_of_pair, minlength=len(checked)).astype(np.int64)
    return idx_i, idx_j, shifts, counts


def _pairs(positions, cells, pbc, offsets, cutoff, self_interaction, backend):
    if backend == "cpu":
        from .aot import kernel_neighbor_pairs

        return kernel_neighbor_pairs(positions, cells, pbc, offsets, cutoff, self_interaction)
    if backend == "mindspore":
        from .fallback import fallback_neighbor_pairs

        return fallback_neighbor_pairs(positions, cells, pbc, offsets, cutoff, self_interaction)
    from .reference import reference_pairs

    return reference_pairs(backend, positions, cells, pbc, offsets, cutoff, self_interaction)
