"""The portable neighbor search, written only in MindSpore ops (runs on any device target).

Brute force over all atom pairs of a structure and all periodic images within range:
O(N² · K) time and memory for N atoms and K images, with a fixed pair capacity so the
output shape is static inside compiled graphs. Use it where the AOT kernel is not
available (Ascend without the registered op, or a machine without a compiler); the
C++ kernel is O(N).

Positions are first wrapped into the cell along periodic axes (integer parts m), so the
image range depends only on the cell: ``S = w + m_i - m_j`` for image w.
"""
from __future__ import annotations

import math

import mindspore as ms
import numpy as np
from mindspore import ops

# ---------------------------------------------------------------------- host-side set-up


def completion_basis(cells: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """[S, 3, 3] rows that replace non-periodic cell rows: unit vectors orthogonal to the other rows."""
    out = np.zeros_like(np.asarray(cells, dtype=np.float64))
    for s, (cell, p) in enumerate(zip(np.asarray(cells, np.float64), np.asarray(pbc, bool))):
        periodic = [cell[k] for k in range(3) if p[k]]
        if len(periodic) == 2:
            n = np.cross(periodic[0], periodic[1])
            fill = [n / np.linalg.norm(n)]
        elif len(periodic) == 1:
            a = periodic[0] / np.linalg.norm(periodic[0])
            e = np.eye(3)[int(np.argmin(np.abs(a)))]
            u = np.cross(a, e)
            u /= np.linalg.norm(u)
            fill = [u, np.cross(a, u)]
        else:
            fill = list(np.eye(3)) if len(periodic) == 0 else []
        k_fill = 0
        for k in range(3):
            if not p[k]:
                out[s, k] = fill[k_fill] if len(periodic) else np.eye(3)[k]
                k_fill += 1
    return out


def image_range(cells: np.ndarray, pbc: np.ndarray, cutoff: float) -> np.ndarray:
    """[3] largest image index needed along each axis, over all structures (0 on non-periodic axes)."""
    cells = np.asarray(cells, np.float64)
    pbc = np.asarray(pbc, bool)
    basis = np.where(pbc[:, :, None], cells, completion_basis(cells, pbc))
    out = np.zeros(3, np.int64)
    for b, p in zip(basis, pbc):
        volume = abs(np.linalg.det(b))
        for k in range(3):
            if p[k]:
                thickness = volume / np.linalg.norm(np.cross(b[(k + 1) % 3], b[(k + 2) % 3]))
                out[k] = max(out[k], math.ceil(cutoff / thickness * (1 + 1e-9)))
    return out


def image_list(max_image) -> np.ndarray:
    """[K, 3] all integer images with |w_k| <= max_image[k]; the zero image first."""
    ranges = [np.arange(-n, n + 1) for n in np.asarray(max_image, np.int64)]
    grid = np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, 3)
    order = np.argsort(np.abs(grid).sum(1), kind="stable")
    return grid[order].astype(np.int32)


# ---------------------------------------------------------------------- the graph function


def _cross(a, b):
    """Row-wise cross product of [S, 3] tensors (plain ops, portable to every backend)."""
    return ops.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                      a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], -1)


def _inverse_rows(basis):
    """For [S, 3, 3] row bases B, the matrix M with s = r @ M (M = B^-1), via cross products."""
    b0, b1, b2 = basis[:, 0], basis[:, 1], basis[:, 2]
    c0, c1, c2 = _cross(b1, b2), _cross(b2, b0), _cross(b0, b1)
    det = (b0 * c0).sum(-1)
    return ops.stack([c0, c1, c2], -1) / det[:, None, None]


def pairs_graph(positions, cells, pbc, structure_index, completion, images, cutoff: float, capacity: int,
                self_interaction: bool = False):
    """Fixed-capacity pair search in MindSpore ops (PyNative or inside ``ms.jit``).

    Args:
        positions [N, 3], cells [S, 3, 3], pbc [S, 3] bool, structure_index [N] int32,
        completion [S, 3, 3] (from :func:`completion_basis`), images [K, 3] int32 (static),
        cutoff (Å, Python float), capacity (static int).
    Returns:
        idx_i [C], idx_j [C], shifts [C, 3] int32 (ordered by i; unused slots 0) and
        count [] int32, the number of pairs found (> C means overflow).
    """
    positions = ops.stop_gradient(positions)
    cells = ops.stop_gradient(cells)
    n, k = positions.shape[0], images.shape[0]
    dtype = positions.dtype
    basis = ops.where(pbc[:, :, None], cells, completion.astype(dtype))
    inverse = _inverse_rows(basis)
    inv_i = ops.gather(inverse, structure_index, 0)  # [N, 3, 3]
    cell_i = ops.gather(cells, structure_index, 0)
    frac = ops.squeeze(ops.matmul(positions[:, None, :], inv_i), 1)
    wrap = ops.floor(frac) * ops.gather(pbc, structure_index, 0).astype(dtype)  # [N, 3]
    wrapped = positions - ops.squeeze(ops.matmul(wrap[:, None, :], cell_i), 1)
    images_f = images.astype(dtype)
    image_cart = ops.matmul(images_f[None], cells)  # [S, K, 3]
    image_ok = ops.logical_or(images[None, :, :] == 0, pbc[:, None, :]).all(-1)  # [S, K]
    # r[i, k, j] = wrapped[j] - wrapped[i] + image k of structure(i)
    r = (wrapped[None, None, :, :] - wrapped[:, None, None, :]
         + ops.gather(image_cart, structure_index, 0)[:, :, None, :])
    d2 = (r * r).sum(-1)  # [N, K, N]
    same = structure_index[:, None] == structure_index[None, :]  # [N, N]
    valid = ops.logical_and(d2 < cutoff * cutoff, same[:, None, :])
    valid = ops.logical_and(valid, ops.gather(image_ok, structure_index, 0)[:, :, None])
    if not self_interaction:
        eye = ops.eye(n, n, ms.bool_)
        zero_image = (ops.arange(k) == 0)[None, :, None]
        valid = ops.logical_and(valid, ops.logical_not(ops.logical_and(eye[:, None, :], zero_image)))
    flat = valid.reshape(-1).astype(ms.int32)
    count = flat.sum().astype(ms.int32)
    slot = ops.cumsum(flat, 0).astype(ms.int32) - 1
    keep = ops.logical_and(flat > 0, slot < capacity)
    dest = ops.where(keep, slot, ops.full_like(slot, capacity))
    source = ops.arange(n * k * n, dtype=ms.int32)
    table = ops.tensor_scatter_update(ops.zeros(capacity + 1, ms.int32), dest[:, None], source)[:capacity]
    filled = ops.arange(capacity, dtype=ms.int32) < ops.minimum(count, capacity)
    table = ops.where(filled, table, ops.zeros_like(table))
    idx_i = table // (k * n)
    image_k = (table // n) % k
    idx_j = table % n
    shifts = (ops.gather(images, image_k, 0) + ops.gather(wrap, idx_i, 0).astype(ms.int32)
              - ops.gather(wrap, idx_j, 0).astype(ms.int32))
    zero = ops.zeros_like(idx_i)
    return (ops.where(filled, idx_i, zero), ops.where(filled, idx_j, zero),
            ops.where(filled[:, None], shifts, ops.zeros_like(shifts)), count)


def fallback_neighbor_pairs(positions, cells, pbc, offsets, cutoff: float, self_interaction: bool = False):
    """numpy in, numpy out: :func:`pairs_graph` with a capacity that grows until nothing overflows."""
    n = len(positions)
    if n == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros((0, 3), np.int32)
    counts = np.diff(offsets)
    structure_index = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    images = image_list(image_range(cells, pbc, cutoff))
    dtype = positions.dtype
    args = (ms.Tensor(positions), ms.Tensor(np.asarray(cells, dtype)), ms.Tensor(np.asarray(pbc, bool)),
            ms.Tensor(structure_index), ms.Tensor(completion_basis(cells, pbc).astype(dtype)), ms.Tensor(images))
    capacity = max(64, 32 * n)
    while True:
        idx_i, idx_j, shifts, count = pairs_graph(*args, float(cutoff), capacity, self_interaction)
        total = int(count.asnumpy())
        if total <= capacity:
            return idx_i.asnumpy()[:total], idx_j.asnumpy()[:total], shifts.asnumpy()[:total]
        capacity = total
