"""NeighborList: a fixed-capacity neighbor list Cell with a Verlet skin, for compiled graphs (MD).

The list holds every pair within ``cutoff + skin``. It is rebuilt inside the graph
only when some atom may have moved a pair across that margin: when
``2 · max |Δr_atom| + max|S|₁ · max |Δcell_row| > skin`` since the last build, where
max|S|₁ bounds the shifts of listed pairs and of pairs that could enter the list (with a
fixed cell this is the usual "an atom moved more than skin/2"). Consumers apply the
real cutoff themselves (a cutoff function, or :meth:`NeighborList.within_cutoff`).

Pairs are never dropped silently: ``overflow`` is True when more pairs exist than the
capacity (or, for the MindSpore-ops backend, when the cell shrank below what its image
range covers). Turn it into an error with :meth:`NeighborList.check`, or rebuild a
larger list with :meth:`NeighborList.resized`.
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import Parameter, nn, ops

from ..errors import UserError
from ..nn.geometry import pair_structure, pair_vectors
from . import fallback


class NeighborListOverflow(UserError):
    """More pairs than the neighbor-list capacity."""


def _device_backend(backend: str) -> str:
    from .api import resolve_backend

    from .ascend import ascend_available

    if backend not in ("auto", "cpu", "ascend", "mindspore"):
        raise UserError(f"NeighborList backend must be auto, cpu, ascend or mindspore, got {backend!r}")
    if backend != "auto":
        return backend
    target = ms.get_context("device_target")
    if target == "Ascend":
        # the Ascend C operator when its package is installed, else the portable path
        return "ascend" if ascend_available() else "mindspore"
    if target != "CPU":
        return "mindspore"  # GPU: no MindSpore GPU build to load the CUDA kernel into here
    return resolve_backend("auto")


class NeighborList(nn.Cell):
    """Fixed-capacity neighbor list with a Verlet skin; see the module docstring.

    Args:
        cutoff: interaction cutoff, Å.
        capacity: maximum number of pairs (fixes the output shape).
        cells: [S, 3, 3] or [3, 3] Å, the cell(s) at construction (they may change later).
        pbc: [S, 3] or [3] bool (fixed).
        n_atoms: [S] atoms per structure (fixed), or an int for one structure.
        skin: Verlet skin, Å (0 rebuilds every call).
        backend: ``auto`` (the C++ kernel on CPU; the Ascend C operator on Ascend when it is installed;
            MindSpore ops otherwise), ``cpu``, ``ascend`` or ``mindspore``.
        dtype: ``float32`` or ``float64``.

    ``construct(positions [N, 3], cells [S, 3, 3])`` returns
    ``(idx_i [C] int32, idx_j [C] int32, shifts [C, 3] int32, mask [C] bool, count [] int32,
    overflow [] bool)``; unused slots have i = j = 0 and a zero shift (mask them).
    """

    def __init__(self, cutoff, capacity, cells, pbc, n_atoms, skin=0.0, backend="auto", dtype="float32"):
        super().__init__()

        cells = np.asarray(cells, np.float64).reshape(-1, 3, 3)
        pbc = np.asarray(pbc, bool).reshape(-1, 3)
        n_atoms = np.atleast_1d(np.asarray(n_atoms, np.int64))
        if not (len(cells) == len(pbc) == len(n_atoms)):
            raise UserError(f"cells, pbc and n_atoms describe {len(cells)}, {len(pbc)} and {len(n_atoms)} structures")
        if not cutoff > 0 or skin < 0 or capacity < 1:
            raise UserError(f"need cutoff > 0, skin >= 0 and capacity >= 1; got {cutoff}, {skin}, {capacity}")
        self.cutoff, self.skin, self.capacity = float(cutoff), float(skin), int(capacity)
        self.list_cutoff = self.cutoff + self.skin
        self.backend = _device_backend(backend)
        self.np_dtype = np.dtype(dtype)
        self.ms_dtype = ms.float64 if self.np_dtype == np.float64 else ms.float32
        self._init_args = dict(cells=cells, pbc=pbc, n_atoms=n_atoms, skin=skin, backend=backend, dtype=dtype)
        n = int(n_atoms.sum())
        offsets = np.concatenate([[0], np.cumsum(n_atoms)]).astype(np.int32)
        self.pbc = ms.Tensor(pbc)
        self.offsets = ms.Tensor(offsets)
        self.structure_index = ms.Tensor(np.repeat(np.arange(len(n_atoms), dtype=np.int32), n_atoms))
        self.completion = ms.Tensor(fallback.completion_basis(cells, pbc).astype(self.np_dtype))
        self.max_image = fallback.image_range(cells, pbc, self.list_cutoff)
        self.minimum_image = fallback.minimum_image_ok(cells, pbc, self.list_cutoff)
        self.image_cutoff = 2.0 * self.list_cutoff if self.minimum_image else self.list_cutoff
        self.images = ms.Tensor(fallback.image_list(self.max_image))
        self.max_image_t = ms.Tensor((np.ones(3) if self.minimum_image else self.max_image).astype(self.np_dtype))
        self.cutoff_t = ms.Tensor(np.array([self.list_cutoff], self.np_dtype))
        # |S|_1 of pairs outside the list that a cell change could bring into range (conservative)
        self.unlisted_shift_bound = ms.Tensor(float(self.max_image.sum() + 3), self.ms_dtype)
        if self.backend in ("cpu", "ascend"):
            if self.backend == "cpu":
                from .aot import aot_op

                self.kernel = aot_op()
            else:
                from .ascend import ascend_neighbor_op

                self.kernel = ascend_neighbor_op(self.capacity)
            self.capacity_like = ms.Tensor(np.zeros(self.capacity, np.int32))
        # state of the last build
        self.ref_positions = Parameter(ms.Tensor(np.zeros((n, 3), self.np_dtype)), requires_grad=False, name="nl_ref_positions")
        self.ref_cells = Parameter(ms.Tensor(cells.astype(self.np_dtype)), requires_grad=False, name="nl_ref_cells")
        self.idx_i = Parameter(ms.Tensor(np.zeros(self.capacity, np.int32)), requires_grad=False, name="nl_idx_i")
        self.idx_j = Parameter(ms.Tensor(np.zeros(self.capacity, np.int32)), requires_grad=False, name="nl_idx_j")
        self.shifts = Parameter(ms.Tensor(np.zeros((self.capacity, 3), np.int32)), requires_grad=False, name="nl_shifts")
        self.count = Parameter(ms.Tensor(0, ms.int32), requires_grad=False, name="nl_count")
        self.overflow = Parameter(ms.Tensor(True), requires_grad=False, name="nl_overflow")  # True: must build
        self.max_shift = Parameter(ms.Tensor(0.0, self.ms_dtype), requires_grad=False, name="nl_max_shift")
        self.n_builds = Parameter(ms.Tensor(0, ms.int32), requires_grad=False, name="nl_n_builds")

    # ------------------------------------------------------------------ graph
    def _search(self, positions, cells):
        if self.backend in ("cpu", "ascend"):
            idx_i, idx_j, shifts, count = self.kernel(positions, cells, self.pbc, self.offsets, self.cutoff_t,
                                                     self.capacity_like)
            count = count[0]
            bad_images = ops.zeros((), self.pbc.dtype)
        else:
            idx_i, idx_j, shifts, count = fallback.pairs_graph(
                positions, cells, self.pbc, self.structure_index, self.completion, self.images,
                self.list_cutoff, self.capacity, False, self.minimum_image)
            bad_images = self._images_insufficient(cells)
        overflow = ops.logical_or(ops.logical_or(count > self.capacity, count < 0), bad_images)
        return idx_i, idx_j, shifts, count, overflow

    def _images_insufficient(self, cells):
        """True when the current cells need more periodic images than the fallback enumerates."""
        basis = ops.where(self.pbc[:, :, None], cells, self.completion)
        volume = ops.abs((basis[:, 0] * fallback._cross(basis[:, 1], basis[:, 2])).sum(-1))
        needed = []
        for k in range(3):
            area = ops.sqrt((fallback._cross(basis[:, (k + 1) % 3], basis[:, (k + 2) % 3]) ** 2).sum(-1))
            needed.append(ops.ceil(self.image_cutoff * area / volume))
        needed = ops.stack(needed, -1)  # [S, 3]
        return ops.logical_and(needed > self.max_image_t[None, :], self.pbc).any()

    def construct(self, positions, cells):
        positions = ops.stop_gradient(positions)
        cells = ops.stop_gradient(cells)
        moved = ops.sqrt(((positions - self.ref_positions) ** 2).sum(-1).max())
        cell_moved = ops.sqrt(((cells - self.ref_cells) ** 2).sum(-1).max())
        stale = 2.0 * moved + self.max_shift * cell_moved > self.skin
        if ops.logical_or(self.overflow, stale):
            idx_i, idx_j, shifts, count, overflow = self._search(positions, cells)
            ops.assign(self.idx_i, idx_i)
            ops.assign(self.idx_j, idx_j)
            ops.assign(self.shifts, shifts)
            ops.assign(self.count, count)
            ops.assign(self.overflow, overflow)
            ops.assign(self.ref_positions, positions)
            ops.assign(self.ref_cells, cells)
            listed = ops.abs(shifts).sum(-1).max().astype(self.max_shift.dtype)
            ops.assign(self.max_shift, ops.maximum(listed, self.unlisted_shift_bound))
            ops.assign_add(self.n_builds, ops.ones((), self.n_builds.dtype))
        mask = ops.arange(self.capacity) < ops.minimum(self.count, self.capacity)
        return self.idx_i + 0, self.idx_j + 0, self.shifts + 0, mask, self.count + 0, ops.logical_and(self.overflow, True)

    # ------------------------------------------------------------------ host helpers
    def check(self, count, overflow) -> None:
        """Raise :class:`NeighborListOverflow` (a one-line user error) if the list overflowed."""
        count, overflow = int(np.asarray(count.asnumpy() if hasattr(count, "asnumpy") else count)), bool(
            np.asarray(overflow.asnumpy() if hasattr(overflow, "asnumpy") else overflow))
        if count < 0:
            from .aot import ERROR_CODES

            raise UserError(f"neighbor search failed: {ERROR_CODES.get(count, count)}; check positions and cell")
        if overflow:
            need = max(count, self.capacity)
            raise NeighborListOverflow(
                f"neighbor list overflow: {count} pairs within {self.list_cutoff:g} Å but capacity is {self.capacity} "
                f"(or the cell shrank below the image range); rebuild with capacity >= {int(need * 1.2) + 1}, "
                f"e.g. nl.resized({int(need * 1.2) + 1})"
            )

    def resized(self, capacity: int, cells=None) -> "NeighborList":
        """A new list with another capacity (and, optionally, the image range of new ``cells``)."""
        args = dict(self._init_args)
        if cells is not None:
            args["cells"] = np.asarray(cells, np.float64).reshape(-1, 3, 3)
        return NeighborList(self.cutoff, int(capacity), **args)

    def within_cutoff(self, positions, cells, idx_i, idx_j, shifts, mask):
        """[C] bool: listed pairs closer than the interaction cutoff (not cutoff + skin)."""
        r = pair_vectors(positions, cells, shifts.astype(positions.dtype), idx_i, idx_j,
                         pair_structure(self.structure_index, idx_i))
        return ops.logical_and(mask, (r * r).sum(-1) < self.cutoff**2)
