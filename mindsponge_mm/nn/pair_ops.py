"""Fused gather–multiply–scatter over atom pairs: the inner loop of every message-passing model.

Two bilinear operations, for x, a, b [A, F] (atoms), w, h [P, F] (pairs), index vectors [P] int32::

    conv(x, w, src, dst)  = y [A, F],   y[dst[p]] += x[src[p]] * w[p]        (gather, multiply, scatter)
    product(a, b, ia, ib) = h [P, F],   h[p] = a[ia[p]] * b[ib[p]]

They are closed under differentiation, so forces and the double backward of a force loss use
them too (g is the incoming gradient)::

    ∂conv/∂x = conv(g, w, dst, src)      ∂conv/∂w = product(g, x, dst, src)
    ∂product/∂a = conv(b, g, ib, ia)     ∂product/∂b = conv(a, g, ia, ib)

On the CPU both run as C++ kernels (``kernels/cpu/pair_ops.cc``, ``ops.Custom(func_type="aot")``),
one kernel per operation instead of MindSpore's Gather, Mul, UnsortedSegmentSum and the
full-size masks of their gradients. Elsewhere (Ascend, GPU), without a compiler, or with
``MSMM_PAIR_KERNEL=0``, they are composed of MindSpore ops with the same results.

Models choose once, when they are built: ``self.pair = PairOps()``, then ``self.pair.conv(...)``
inside ``construct``.
"""
from __future__ import annotations

import functools

from mindspore import nn, ops

from ..kernel_build import KernelBuildError, compile_library, find_source, kernel_switched_on
from .geometry import scatter_sum

SOURCE_NAME = "pair_ops.cc"


def conv_reference(x, w, src, dst):
    """conv from MindSpore ops: scatter_sum(x[src] * w, dst) into x's rows."""
    return scatter_sum(ops.gather(x, src, 0) * w, dst, x.shape[0])


def product_reference(a, b, ia, ib):
    """product from MindSpore ops: a[ia] * b[ib]."""
    return ops.gather(a, ia, 0) * ops.gather(b, ib, 0)


@functools.lru_cache(maxsize=None)
def kernel_ops():
    """The (conv, product) ``ops.Custom`` primitives with their derivatives; compiles the kernel once.

    Raises KernelBuildError when it cannot be built."""
    source = find_source(SOURCE_NAME)
    if source is None:
        raise KernelBuildError(f"pair kernel source {SOURCE_NAME} not found; reinstall mindsponge_mm")
    lib = compile_library(source, "libmsmm_pair_ops.so", "pair kernel", "set MSMM_PAIR_KERNEL=0")

    def conv_bprop(x, w, src, dst, out, dout):
        return conv(dout, w, dst, src), product(dout, x, dst, src), ops.zeros_like(src), ops.zeros_like(dst)

    def product_bprop(a, b, ia, ib, out, dout):
        return conv(b, dout, ib, ia), conv(a, dout, ia, ib), ops.zeros_like(ia), ops.zeros_like(ib)

    conv = ops.Custom(f"{lib}:PairConv", out_shape=lambda x, w, src, dst: x, out_dtype=lambda x, w, src, dst: x,
                      func_type="aot", bprop=conv_bprop)
    product = ops.Custom(f"{lib}:PairProduct", out_shape=lambda a, b, ia, ib: [ia[0], a[1]],
                         out_dtype=lambda a, b, ia, ib: a, func_type="aot", bprop=product_bprop)
    return conv, product


def kernel_available() -> bool:
    """Whether models built now use the C++ kernels: CPU target, not disabled, and it compiles."""
    return kernel_switched_on("MSMM_PAIR_KERNEL", kernel_ops, "message passing")


class PairOps(nn.Cell):
    """``conv`` and ``product`` (see the module docstring), through the kernels or MindSpore ops.

    ``use_kernel`` defaults to :func:`kernel_available` at construction time.
    """

    def __init__(self, use_kernel: bool | None = None):
        super().__init__()
        self.use_kernel = kernel_available() if use_kernel is None else bool(use_kernel)
        if self.use_kernel:
            self._conv, self._product = kernel_ops()

    def conv(self, x, w, src, dst):
        """y [A, F] with y[dst[p]] += x[src[p]] * w[p]; x [A, F], w [P, F], src/dst [P] int32."""
        if self.use_kernel:
            return self._conv(x, w, src, dst)
        return conv_reference(x, w, src, dst)

    def product(self, a, b, ia, ib):
        """h [P, F] = a[ia] * b[ib]; a, b [A, F], ia/ib [P] int32."""
        if self.use_kernel:
            return self._product(a, b, ia, ib)
        return product_reference(a, b, ia, ib)
