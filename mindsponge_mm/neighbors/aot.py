"""Build, cache and load the C++ neighbor-list kernel (``kernels/cpu/neighbor_list.cc``).

The kernel is compiled with g++ on first use into the user cache directory
(see :mod:`mindsponge_mm.kernel_build`). The same library serves two callers:

* :func:`kernel_neighbor_pairs` calls it through ``ctypes`` on numpy arrays;
* :func:`aot_op` wraps its ``NeighborListAOT`` entry as ``ops.Custom(func_type="aot")``
  for use inside MindSpore graphs (fixed capacity).
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..kernel_build import KernelBuildError, compile_library, find_source

__all__ = ["ERROR_CODES", "KernelBuildError", "aot_op", "build", "kernel_neighbor_pairs", "source_path"]

SOURCE_NAME = "neighbor_list.cc"
ERROR_CODES = {
    -1: "non-finite positions or cell",
    -2: "a periodic lattice vector is zero or the periodic vectors are linearly dependent",
    -3: "the cutoff is not a positive number, or the structure offsets are inconsistent",
    -4: "out of memory while building the cell list",
}
_FALLBACK = "use neighbor backend 'mindspore'"


def source_path() -> Path:
    """The kernel source: installed beside the package, or in the repository's ``kernels/cpu``."""
    path = find_source(SOURCE_NAME)
    if path is None:
        raise KernelBuildError(f"neighbor kernel source {SOURCE_NAME} not found; reinstall mindsponge_mm or "
                               f"use backend='mindspore'")
    return path


@functools.lru_cache(maxsize=None)
def build() -> Path:
    """Compile the kernel if the cache has no build of the current source; return the library path."""
    return compile_library(source_path(), "libmsmm_neighbors.so", "neighbor-list kernel", _FALLBACK)


@functools.lru_cache(maxsize=None)
def _library() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(build()))
    lib.msmm_nl_compute.restype = ctypes.c_void_p
    lib.msmm_nl_compute.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_double,
        ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int64),
    ]
    lib.msmm_nl_fetch.restype = None
    lib.msmm_nl_fetch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    lib.msmm_nl_free.restype = None
    lib.msmm_nl_free.argtypes = [ctypes.c_void_p]
    return lib


def kernel_neighbor_pairs(positions: np.ndarray, cells: np.ndarray, pbc: np.ndarray, offsets: np.ndarray,
                          cutoff: float, self_interaction: bool = False, n_threads: int = 0):
    """Run the C++ kernel on concatenated structures.

    Args:
        positions [N, 3], cells [S, 3, 3] (float32 or float64, Å), pbc [S, 3] bool,
        offsets [S + 1] int64: atoms of structure s are ``offsets[s]:offsets[s + 1]``.
    Returns:
        ``idx_i`` [P], ``idx_j`` [P] int32 (global atom indices), ``shifts`` [P, 3] int32, ordered by i.
    """
    lib = _library()
    dtype = np.float64 if positions.dtype == np.float64 else np.float32
    positions = np.ascontiguousarray(positions, dtype=dtype)
    cells = np.ascontiguousarray(cells, dtype=dtype)
    pbc = np.ascontiguousarray(pbc, dtype=np.uint8)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    total = ctypes.c_int64(0)
    handle = lib.msmm_nl_compute(
        positions.ctypes.data, cells.ctypes.data, pbc.ctypes.data, offsets.ctypes.data, len(offsets) - 1,
        float(cutoff), int(self_interaction), int(dtype == np.float64), int(n_threads), ctypes.byref(total),
    )
    try:
        n = total.value
        if n < 0:
            raise UserError(f"neighbor search failed: {ERROR_CODES.get(n, n)}; check positions and cell")
        idx_i, idx_j = np.empty(n, np.int32), np.empty(n, np.int32)
        shifts = np.empty((n, 3), np.int32)
        lib.msmm_nl_fetch(handle, idx_i.ctypes.data, idx_j.ctypes.data, shifts.ctypes.data, n)
    finally:
        lib.msmm_nl_free(handle)
    return idx_i, idx_j, shifts


@functools.lru_cache(maxsize=None)
def aot_op():
    """``ops.Custom`` running ``NeighborListAOT`` (fixed capacity, for MindSpore graphs).

    Call it as ``op(positions [N, 3], cells [S, 3, 3], pbc [S, 3] bool, offsets [S + 1] int32,
    cutoff [1], capacity_like [C] int32)``; only the length C of ``capacity_like`` is used.
    It returns ``idx_i [C]``, ``idx_j [C]``, ``shifts [C, 3]`` (int32) and ``count [1]``
    int32: the number of pairs found (more than C means overflow; negative values are
    the error codes of :data:`ERROR_CODES`).
    """
    import mindspore as ms
    from mindspore import ops

    def out_shape(positions, cells, pbc, offsets, cutoff, capacity_like):
        c = capacity_like[0]
        return [c], [c], [c, 3], [1]

    def out_dtype(*_):
        return ms.int32, ms.int32, ms.int32, ms.int32

    def bprop(positions, cells, pbc, offsets, cutoff, capacity_like, out, dout):
        # pair indices are piecewise constant in the inputs: their gradient is zero
        return tuple(ops.zeros_like(x) for x in (positions, cells, pbc, offsets, cutoff, capacity_like))

    return ops.Custom(f"{build()}:NeighborListAOT", out_shape=out_shape, out_dtype=out_dtype, func_type="aot",
                      bprop=bprop)
