"""Real spherical harmonics in e3nn's basis with "component" normalisation.

``Y(x)`` for ``l = 0..l_max`` is concatenated along the last axis: ``[..., (l_max+1)²]`` with the
block of degree ``l`` at ``[l², (l+1)²)``. Conventions (as e3nn's
``o3.spherical_harmonics(range(l_max+1), x, normalize, normalization="component")``):

* component normalisation: ``‖Y_l(x̂)‖² = 2l+1`` on the unit sphere, ``Y_0 = 1``, and
  ``∫_{S²} Y_lm Y_l'm' dΩ = 4π δ_ll' δ_mm'``;
* ``Y_1(x) = √3 (x, y, z) / r`` — components in (x, y, z) order; the polar (m = 0, middle
  component) axis is y, e.g. ``Y_2 = √5 (√3 xz, √3 xy, y² - (x²+z²)/2, √3 yz, √3/2 (z²-x²))``;
* equivariance ``Y_l(R x) = D_from_matrix(l, R) Y_l(x)``; parity ``Y_l(-x) = (-1)^l Y_l(x)``;
* with ``normalize=False`` the input is not normalised and ``Y_l`` is the homogeneous
  polynomial ``r^l Y_l(x̂)``.

Every degree comes from the previous one by e3nn's recurrence ``Y_{l+1,i} = c_l Σ_jk
C^{(l,1,l+1)}_{jki} Y_{l,j} x_k`` (``C`` = :func:`wigner_3j`, ``c_l > 0``), evaluated as an outer
product and one matmul per degree, so any ``l_max`` works and the function is a polynomial
(infinitely differentiable) in ``x̂``. With ``normalize=True`` the norm is a "safe" norm: at
``r = 0`` the output is ``(1, 0, ..., 0)`` and every derivative is finite (no NaN).
"""
from __future__ import annotations

import functools
import math

import numpy as np
from mindspore import Tensor, nn, ops

from ..nn.dense import check_dtype, matmul, ms_dtype
from .irreps import Irreps
from .wigner import wigner_3j

__all__ = ["spherical_harmonics", "spherical_harmonics_np", "SphericalHarmonics", "sh_dim"]


def sh_dim(l_max: int) -> int:
    """Number of components ``(l_max+1)²`` of the concatenated harmonics of degrees 0..l_max."""
    return (l_max + 1) ** 2


@functools.lru_cache(maxsize=None)
def _recursion_matrices(l_max: int) -> tuple:
    """``M_l`` [(2l+1)·3, 2l+3] for l = 1..l_max-1 with ``Y_{l+1} = (Y_l ⊗ x) @ M_l`` (read-only float64)."""
    if not (isinstance(l_max, (int, np.integer)) and l_max >= 0):
        raise ValueError(f"l_max must be a non-negative integer, got {l_max!r}")
    mats = []
    # normalisation is fixed on one generic unit vector: the recurrence maps the sphere onto a
    # sphere (the image is an irreducible homogeneous polynomial), so its norm is constant.
    probe = np.array([0.36, 0.48, 0.8])
    y = math.sqrt(3.0) * probe
    for l in range(1, l_max):
        m = wigner_3j(l, 1, l + 1).reshape((2 * l + 1) * 3, 2 * l + 3)
        raw = np.outer(y, probe).reshape(-1) @ m
        c = math.sqrt(2 * l + 3) / np.linalg.norm(raw)
        m = m * c
        m.setflags(write=False)
        mats.append(m)
        y = raw * c
    return tuple(mats)


def spherical_harmonics_np(l_max: int, vectors, normalize: bool = True) -> np.ndarray:
    """Numpy twin of :func:`spherical_harmonics`: ``[..., 3]`` → ``[..., (l_max+1)²]`` (float64)."""
    x = np.asarray(vectors, dtype=np.float64)
    shape = x.shape[:-1]
    x = x.reshape(-1, 3)
    if normalize:
        r = np.linalg.norm(x, axis=-1, keepdims=True)
        x = x / np.where(r > 0, r, 1.0)
    out = [np.ones((x.shape[0], 1))]
    if l_max >= 1:
        y = math.sqrt(3.0) * x
        out.append(y)
        for l, m in enumerate(_recursion_matrices(l_max), start=1):
            y = (y[:, :, None] * x[:, None, :]).reshape(x.shape[0], (2 * l + 1) * 3) @ m
            out.append(y)
    return np.concatenate(out, axis=-1).reshape(shape + (sh_dim(l_max),))


def spherical_harmonics(l_max: int, vectors: Tensor, normalize: bool = True) -> Tensor:
    """Spherical harmonics of degrees ``0..l_max`` of MindSpore vectors (usable inside ``ms.jit``).

    Args:
        l_max: highest degree (Python int, static).
        vectors: Tensor ``[..., 3]`` (float32 or float64), e.g. edge vectors in Å.
        normalize: project the vectors onto the unit sphere first (safe at ``r = 0``).

    Returns:
        Tensor ``[..., (l_max+1)²]`` of the input dtype, e3nn ordering and component normalisation.
        Built from elementwise ops, matmul, reshape and concat only, so it is differentiable to any
        order (forces, and gradients of force losses).
    """
    mats = _recursion_matrices(l_max)
    dtype = vectors.dtype
    lead = vectors.shape[:-1]
    x = ops.reshape(vectors, (-1, 3))
    if normalize:
        r2 = ops.sum(x * x, -1, keepdim=True)
        r2 = ops.where(r2 > 0, r2, ops.ones_like(r2))  # "double where": sqrt never sees 0
        x = x / ops.sqrt(r2)
    else:
        x = x
    n = x.shape[0]
    outs = [ops.ones_like(x[:, :1])]
    if l_max >= 1:
        # a Python float would be rounded to float32 by MindSpore: keep the constant in `dtype`
        y = x * Tensor(np.array(math.sqrt(3.0)), dtype)
        outs.append(y)
        l = 1
        for m in mats:
            outer = ops.reshape(ops.expand_dims(y, 2) * ops.expand_dims(x, 1), (n, (2 * l + 1) * 3))
            y = matmul(outer, Tensor(m, dtype))
            outs.append(y)
            l = l + 1
    out = ops.concat(outs, -1)
    return ops.reshape(out, tuple(lead) + ((l_max + 1) ** 2,))


class SphericalHarmonics(nn.Cell):
    """Cell form of :func:`spherical_harmonics`: ``construct(vectors [..., 3]) -> [..., (l_max+1)²]``.

    The recursion matrices are stored as constant Tensors of ``dtype`` (``"float32"`` or ``"float64"``).
    """

    def __init__(self, l_max: int, normalize: bool = True, *, dtype: str = "float32"):
        super().__init__()
        dtype = ms_dtype(check_dtype(dtype))
        self.l_max = int(l_max)
        self.normalize = bool(normalize)
        self.dim = sh_dim(self.l_max)
        self.irreps_out = Irreps.spherical_harmonics(self.l_max)
        mats = _recursion_matrices(self.l_max)
        self._mats = [Tensor(np.asarray(m), dtype) for m in mats]
        self._n_mats = len(mats)
        self._sqrt3 = Tensor(np.array(math.sqrt(3.0)), dtype)

    def construct(self, vectors):
        lead = vectors.shape[:-1]
        x = ops.reshape(vectors, (-1, 3))
        if self.normalize:
            r2 = ops.sum(x * x, -1, keepdim=True)
            r2 = ops.where(r2 > 0, r2, ops.ones_like(r2))
            x = x / ops.sqrt(r2)
        else:
            x = x
        n = x.shape[0]
        outs = [ops.ones_like(x[:, :1])]
        if self.l_max >= 1:
            y = x * self._sqrt3
            outs.append(y)
            for i in range(self._n_mats):
                l = i + 1
                outer = ops.reshape(ops.expand_dims(y, 2) * ops.expand_dims(x, 1), (n, (2 * l + 1) * 3))
                y = matmul(outer, self._mats[i])
                outs.append(y)
        out = ops.concat(outs, -1)
        return ops.reshape(out, tuple(lead) + (self.dim,))
