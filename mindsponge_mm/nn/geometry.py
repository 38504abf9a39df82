"""Pair geometry and scatter helpers that stay finite on padded (masked) pairs."""
from __future__ import annotations

from mindspore import ops


def safe_norm(vectors, pair_mask):
    """|v| for real pairs and 1 for masked ones, so that d and 1/d and all their derivatives stay finite.

    vectors [P, 3], pair_mask [P] bool -> [P].
    """
    sq = (vectors * vectors).sum(-1)
    return ops.sqrt(ops.where(pair_mask, sq, ops.ones_like(sq)))


def scatter_sum(values, index, n: int):
    """Sum rows of ``values`` [P, ...] into ``n`` segments by ``index`` [P] (twice differentiable)."""
    return ops.unsorted_segment_sum(values, index, n)
