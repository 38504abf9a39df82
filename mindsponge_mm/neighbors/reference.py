"""Reference neighbor lists from other libraries, for tests and benchmarks only.

``ase`` is always installed; ``vesin`` and ``matscipy`` are used when importable.
Each structure is searched separately and the results are concatenated.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError


def _one(backend: str, positions, cell, pbc, cutoff, self_interaction):
    if backend == "ase":
        from ase.neighborlist import primitive_neighbor_list

        return primitive_neighbor_list("ijS", pbc, cell, positions, cutoff, self_interaction=self_interaction)
    if self_interaction:
        raise UserError(f"backend {backend!r} does not support self_interaction")
    if backend == "vesin":
        from vesin import NeighborList

        periodic = bool(np.all(pbc))
        if np.any(pbc) and not periodic:
            raise UserError("vesin supports only fully periodic or fully non-periodic systems")
        box = cell if periodic else np.zeros((3, 3))
        return NeighborList(cutoff=cutoff, full_list=True).compute(points=positions, box=box, periodic=periodic,
                                                                   quantities="ijS")
    if backend == "matscipy":
        from matscipy.neighbours import neighbour_list

        return neighbour_list("ijS", positions=positions, cell=cell, pbc=pbc, cutoff=cutoff)
    raise UserError(f"unknown reference backend {backend!r}")


def reference_pairs(backend, positions, cells, pbc, offsets, cutoff, self_interaction=False):
    """Concatenated (idx_i, idx_j, shifts) of a reference library over all structures."""
    parts = []
    for s in range(len(offsets) - 1):
        a, b = int(offsets[s]), int(offsets[s + 1])
        if b == a:
            continue
        i, j, S = _one(backend, np.asarray(positions[a:b], np.float64), np.asarray(cells[s], np.float64),
                       np.asarray(pbc[s], bool), float(cutoff), self_interaction)
        parts.append((np.asarray(i) + a, np.asarray(j) + a, np.asarray(S)))
    if not parts:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros((0, 3), np.int32)
    return tuple(np.concatenate([p[k] for p in parts]).astype(np.int32) for k in range(3))
