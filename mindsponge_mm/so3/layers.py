"""Equivariant MindSpore layers in e3nn's basis: linear, channel-wise tensor product, gate, MACE's
symmetric contraction.

Feature layout ("mul_ir", as e3nn): a tensor of irreps ``128x0e+64x1o`` is ``[..., 128 + 64·3]``;
an entry ``mul x (l, p)`` occupies ``mul·(2l+1)`` consecutive components, copy after copy
(``[mul, 2l+1]`` flattened). :class:`SymmetricContraction` also takes MACE's "channel" layout
``[N, C, Σ(2l+1)]`` (see :func:`to_channels`).

Every cell is built from matmul / batched matmul / gather / reshape / transpose / concat /
elementwise ops only (no einsum), works in ``ms.jit`` graph mode, and is differentiable to second
order (forces, then the force loss w.r.t. weights). ``dtype`` (``"float32"`` or ``"float64"``)
is chosen at construction; inputs must have that dtype. Constants are stored in ``dtype`` —
note that MindSpore rounds a Python ``float`` multiplier to float32, so every scale factor here is
folded into a constant Tensor instead.

Initialisation draws from ``rng`` (a ``numpy.random.Generator``, keyword): same seed, same weights.

The layers live in one module each; this module keeps the old import path working (the names
imported below are its public names).
"""
from .gate import ACTIVATIONS, Gate, normalize2mom_constant  # noqa: F401
from .linear import EquivariantLinear  # noqa: F401
from .symmetric_contraction import (  # noqa: F401
    SymmetricContraction,
    from_channels,
    symmetric_coupling_basis,
    to_channels,
)
from .tensor_product import TensorProductUVU  # noqa: F401
