"""Neighbor search: ``(i, j, shift)`` pairs within a cutoff, with full periodic boundary conditions.

* :func:`neighbor_list` and :func:`batch_neighbor_list`: numpy in, numpy out (the loader uses the batched form);
* :class:`NeighborList`: a fixed-capacity MindSpore Cell with a Verlet skin, for compiled graphs (MD).

Everything in the package calls neighbor search through these, so backends can change
without touching callers.
"""
from .api import BACKENDS, batch_neighbor_list, neighbor_list

__all__ = ["neighbor_list", "batch_neighbor_list", "NeighborList", "NeighborListOverflow", "BACKENDS"]


def __getattr__(name):  # the Cell imports MindSpore; numpy users should not pay for it
    if name in ("NeighborList", "NeighborListOverflow"):
        from . import cell

        return getattr(cell, name)
    raise AttributeError(name)
