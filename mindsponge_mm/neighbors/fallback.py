"""The portable neighbor search, written only in MindSpore ops (runs on any device target).

Brute force over all atom pairs of a structure and all periodic images within range:
O(N² · K) time and memory for N atoms and K images (K = 1 when every periodic cell
thickness is at least twice the cutoff: minimum image), with a fixed pair capacity so
the output shape is static inside compiled graphs. Use it where the AOT kernel is not
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


def minimum_image_ok(cells: np.ndarray, pbc: np.ndarray, cutoff: float) -> bool:
    """True when every periodic cell thickness is at least 2·cutoff: then each pair has at most
    one image within the cutoff, found by rounding the fractional difference."""
    return bool(np.all(image_range(cells, pbc, 2.0 * cutoff) <= 1))


def _candidates_minimum_image(frac_wrapped, wrapped, cell_i, pbc_i, same, cutoff):
    """valid [N, 1, N] and the image of every (i, j) as a [N * N, 3] int32 table."""
    pair_image = -ops.round(frac_wrapped[None, :, :] - frac_wrapped[:, None, :]) * pbc_i[:, None, :]  # [N, N, 3]
    r = wrapped[None, :, :] - wrapped[:, None, :] + ops.matmul(pair_image, cell_i)  # [N, N, 3]
    valid = ops.logical_and((r * r).sum(-1) < cutoff * cutoff, same)[:, None, :]
    return valid, pair_image.reshape(-1, 3).astype(ms.int32)


def _candidates_all_images(wrapped, cells, pbc, structure_index, images, same, cutoff):
    """valid [N, K, N] over the static image list, which is the [K, 3] image table."""
    image_cart = ops.matmul(images.astype(wrapped.dtype)[None], cells)  # [S, K, 3]
    image_ok = ops.logical_or(images[None, :, :] == 0, pbc[:, None, :]).all(-1)  # [S, K]
    # r[i, k, j] = wrapped[j] - wrapped[i] + image k of structure(i)
    r = (wrapped[None, None, :, :] - wrapped[:, None, None, :]
         + ops.gather(image_cart, structure_index, 0)[:, :, None, :])
    valid = ops.logical_and((r * r).sum(-1) < cutoff * cutoff, same[:, None, :])  # [N, K, N]
    return ops.logical_and(valid, ops.gather(image_ok, structure_index, 0)[:, :, None]), images


def pairs_graph(positions, cells, pbc, structure_index, completion, images, cutoff: float, capacity: int,
                self_interaction: bool = False, minimum_image: bool = False):
    """Fixed-capacity pair search in MindSpore ops (PyNative or inside ``ms.jit``).

    Args:
        positions [N, 3], cells [S, 3, 3], pbc [S, 3] bool, structure_index [N] int32,
        completion [S, 3, 3] (from :func:`completion_basis`), images [K, 3] int32 (static),
        cutoff (Å, Python float), capacity (static int), minimum_image (static; only valid when
        :func:`minimum_image_ok`): search one image per pair instead of all K.
    Returns:
        idx_i [C], idx_j [C], shifts [C, 3] int32 (ordered by i; unused slots 0) and
        count [] int32, the number of pairs found (> C means overflow).
    """
    positions = ops.stop_gradient(positions)
    cells = ops.stop_gradient(cells)
    n = positions.shape[0]
    k = 1 if minimum_image else images.shape[0]
    dtype = positions.dtype
    basis = ops.where(pbc[:, :, None], cells, completion.astype(dtype))
    inverse = _inverse_rows(basis)
    inv_i = ops.gather(inverse, structure_index, 0)  # [N, 3, 3]
    cell_i = ops.gather(cells, structure_index, 0)
    pbc_i = ops.gather(pbc, structure_index, 0).astype(dtype)  # [N, 3]
    frac = ops.squeeze(ops.matmul(positions[:, None, :], inv_i), 1)
    wrap = ops.floor(frac) * pbc_i  # [N, 3]
    wrapped = positions - ops.squeeze(ops.matmul(wrap[:, None, :], cell_i), 1)
    same = structure_index[:, None] == structure_index[None, :]  # [N, N]
    if minimum_image:
        valid, image_table = _candidates_minimum_image(frac - wrap, wrapped, cell_i, pbc_i, same, cutoff)
    else:
        valid, image_table = _candidates_all_images(wrapped, cells, pbc, structure_index, images, same, cutoff)
    if not self_interaction:
        eye = ops.eye(n, n, ms.bool_)
        zero_image = (ops.arange(k) == 0)[None, :, None]
        if minimum_image:  # the self pair is found with image 0 only
            valid = ops.logical_and(valid, ops.logical_not(eye[:, None, :]))
        else:
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
    idx_j = table % n
    image_index = table if minimum_image else (table // n) % k  # minimum image: table = i * N + j
    shifts = ops.gather(image_table, image_index, 0) + ops.gather(wrap, idx_i, 0).astype(ms.int32) - ops.gather(wrap, idx_j, 0).astype(ms.int32)
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
    capacity = max(256, 64 * n)
    minimum_image = minimum_image_ok(cells, pbc, cutoff)
    while True:  # PyNative: no compilation per shape (the Cell is the compiled path)
        idx_i, idx_j, shifts, count = pairs_graph(*args, float(cutoff), capacity, self_interaction, minimum_image)
        total = int(count.asnumpy())
        if total <= capacity:
            return idx_i.asnumpy()[:total], idx_j.asnumpy()[:total], shifts.asnumpy()[:total]
        capacity = total
