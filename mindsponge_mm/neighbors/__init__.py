"""Neighbor search: ``(i, j, shift)`` pairs within a cutoff, with full periodic boundary conditions.

Everything in the package calls neighbor search through :func:`neighbor_list` (one
structure) or :func:`batch_neighbor_list` (many structures), so backends can change
without touching callers.
"""
from .api import batch_neighbor_list, neighbor_list

__all__ = ["neighbor_list", "batch_neighbor_list"]
