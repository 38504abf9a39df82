"""The channel-wise tensor-product convolution as one fused kernel per irrep entry (CPU).

For one node irrep entry (``U`` channels of ``D = 2l+1`` components) and all its paths, with
``S`` output components side by side and ``P`` paths::

    conv(h, y, w)[a, u, s] = Σ_{e: dst[e] = a} w[e, path[s], u] · Σ_d h[src[e], u, d] · y[e, d, s]

``h [A, U, D]`` node features (read at the senders), ``y [E, D, S]`` the spherical harmonics of each
edge contracted with the Clebsch–Gordan tensors, ``w [E, P, U]`` the per-edge path weights,
``path [S]`` int32 the path of each output column, ``path_len [P]`` int32 (its length gives ``P``),
``src``/``dst [E]`` int32. This is MACE's message ``Σ_j R(r_ij) ⊗ Y(r̂_ij) ⊗ h_j`` without ever
storing the ``[E, U, S]`` per-edge messages.

``conv`` is ``∂T/∂g`` of the multilinear form ``T = Σ_e Σ_{u,d,s} g[dst,u,s] w[e,path[s],u]
h[src,u,d] y[e,d,s]``; ``grad_h``, ``grad_y`` and ``grad_w`` are its other partial derivatives
(``∂T/∂h [A, U, D]``, ``∂T/∂y [E, D, S]``, ``∂T/∂w [E, P, U]``). Each one's derivative is written
with the other three, so forces and the double backward of a force loss run through the kernels
(``kernels/cpu/tp_ops.cc``, ``ops.Custom(func_type="aot")``). Elsewhere (Ascend, GPU), without a
compiler, or with ``MSMM_TP_KERNEL=0``, :class:`~mindsponge_mm.so3.TensorProductUVU` composes
MindSpore ops instead (:func:`conv_reference` computes the same numbers).
"""
from __future__ import annotations

import functools

from mindspore import ops

from ..kernel_build import KernelBuildError, compile_library, find_source, kernel_switched_on

SOURCE_NAME = "tp_ops.cc"
ENV_SWITCH = "MSMM_TP_KERNEL"


def conv_reference(h, y, w, path, src, dst):
    """``conv`` from MindSpore ops (see the module docstring): ``[A, U, S]``."""
    messages = ops.bmm(ops.gather(h, src, 0), y)  # [E, U, S]
    w_cols = ops.transpose(ops.gather(w, path, 1), (0, 2, 1))  # [E, U, S]
    return ops.unsorted_segment_sum(messages * w_cols, dst, h.shape[0])


@functools.lru_cache(maxsize=None)
def kernel_ops():
    """The ``(conv, grad_h, grad_y, grad_w)`` ``ops.Custom`` primitives with their derivatives.

    Each takes ``(a, b, c, path, path_len, src, dst)``; compiles the kernel once. Raises
    KernelBuildError when it cannot be built."""
    source = find_source(SOURCE_NAME)
    if source is None:
        raise KernelBuildError(f"tensor-product kernel source {SOURCE_NAME} not found; reinstall mindsponge_mm")
    lib = compile_library(source, "libmsmm_tp_ops.so", "tensor-product kernel", f"set {ENV_SWITCH}=0")

    def no_index_grads(path, path_len, src, dst):
        return ops.zeros_like(path), ops.zeros_like(path_len), ops.zeros_like(src), ops.zeros_like(dst)

    def conv_bprop(h, y, w, path, path_len, src, dst, out, dout):
        idx = (path, path_len, src, dst)
        return (grad_h(dout, y, w, *idx), grad_y(h, dout, w, *idx), grad_w(h, dout, y, *idx)) + no_index_grads(*idx)

    def grad_h_bprop(g, y, w, path, path_len, src, dst, out, dout):
        idx = (path, path_len, src, dst)
        return (conv(dout, y, w, *idx), grad_y(dout, g, w, *idx), grad_w(dout, g, y, *idx)) + no_index_grads(*idx)

    def grad_y_bprop(h, g, w, path, path_len, src, dst, out, dout):
        idx = (path, path_len, src, dst)
        return (grad_h(g, dout, w, *idx), conv(h, dout, w, *idx), grad_w(h, g, dout, *idx)) + no_index_grads(*idx)

    def grad_w_bprop(h, g, y, path, path_len, src, dst, out, dout):
        idx = (path, path_len, src, dst)
        return (grad_h(g, y, dout, *idx), conv(h, y, dout, *idx), grad_y(h, g, dout, *idx)) + no_index_grads(*idx)

    def custom(name, out_shape, bprop):
        return ops.Custom(f"{lib}:{name}", out_shape=out_shape, out_dtype=lambda a, *rest: a, func_type="aot",
                          bprop=bprop)

    conv = custom("TPConv", lambda h, y, w, *rest: [h[0], h[1], y[2]], conv_bprop)
    grad_h = custom("TPGradH", lambda g, y, w, *rest: [g[0], g[1], y[1]], grad_h_bprop)
    grad_y = custom("TPGradY", lambda h, g, w, *rest: [w[0], h[2], g[2]], grad_y_bprop)
    grad_w = custom("TPGradW", lambda h, g, y, path, path_len, *rest: [y[0], path_len[0], h[1]], grad_w_bprop)
    return conv, grad_h, grad_y, grad_w


def kernel_available() -> bool:
    """Whether tensor products built now use the C++ kernel: CPU target, not disabled, and it compiles."""
    return kernel_switched_on(ENV_SWITCH, kernel_ops, "the tensor product")
