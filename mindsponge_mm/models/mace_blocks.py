"""Building blocks of :class:`~mindsponge_mm.models.mace.MACE` with mace-torch's and e3nn's exact conventions.

* :class:`MACERadial`: ``sqrt(2/r_max) · sin(k π r / r_max) / r`` (k = 1..n) times the polynomial
  envelope of exponent ``p``; every constant is a tensor of the model's dtype (MindSpore can round a
  Python float factor to float32).
* :class:`E3nnMLP`: e3nn's ``FullyConnectedNet``: no biases, ``x @ (W / sqrt(fan_in))``, the
  activation scaled to unit second moment under N(0, 1) (``normalize2mom``).
* :class:`MACEInteraction`: mace-torch's ``RealAgnosticResidualInteractionBlock`` (``residual=True``:
  the skip connection is an element-dependent linear map of the layer's input) and
  ``RealAgnosticInteractionBlock`` (``residual=False``: the element-dependent map acts on A, no skip);
  followed by the product basis (``EquivariantProductBasisBlock``).
* :class:`NonLinearReadout`: ``Linear -> act (normalize2mom) -> Linear`` on scalars.
"""
from __future__ import annotations

import math

import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, nn, ops

from ..nn.dense import check_dtype, check_rng, matmul, ms_dtype
from ..so3 import ElementLinear, EquivariantLinear, SymmetricContraction, TensorProductUVU

# e3nn 0.4.4's normalize2mom constant of SiLU: 1 / sqrt(E[silu(z)^2]) estimated by e3nn from 10^6
# samples of N(0, 1) drawn with torch's generator seeded 0 (the exact integral gives 1.6766...;
# mace-torch models are trained with e3nn's number, so it is part of their function).
E3NN_SILU_CONSTANT = 1.6791767923989418


def _t(value, dtype: str):
    return ms.Tensor(np.asarray(value, dtype=dtype), ms_dtype(dtype))


def _silu(x):
    return ops.silu(x)


class MACERadial(nn.Cell):
    """Radial features [P, n] of distances d [P] (Å): Bessel basis times the polynomial envelope."""

    def __init__(self, n: int, r_max: float, p: int, *, dtype: str = "float32"):
        super().__init__()
        dtype = check_dtype(dtype)
        self.frequencies = Parameter(_t(math.pi / r_max * np.linspace(1.0, n, n), dtype), name="frequencies",
                                     requires_grad=False)
        self._prefactor = _t(np.sqrt(2.0 / r_max), dtype)
        self._r_max = _t(r_max, dtype)
        self.p = int(p)
        pf = float(p)
        self._c = [_t((pf + 1.0) * (pf + 2.0) / 2.0, dtype), _t(pf * (pf + 2.0), dtype), _t(pf * (pf + 1.0) / 2.0, dtype)]
        self._one = _t(1.0, dtype)

    def envelope(self, d):
        x = d / self._r_max
        inside = (x < self._one).astype(d.dtype)
        x = x * inside
        x_p = x
        for _ in range(self.p - 1):  # products, not Pow (DEVELOPING.md: Pow is not bit-reproducible)
            x_p = x_p * x
        env = self._one - self._c[0] * x_p + self._c[1] * (x_p * x) - self._c[2] * (x_p * x * x)
        return env * inside

    def construct(self, d):
        d2 = ops.expand_dims(d, 1)
        bessel = self._prefactor * (ops.sin(self.frequencies * d2) / d2)
        return bessel * ops.expand_dims(self.envelope(d), 1)

    def transformed(self, d, t):
        """The Bessel basis of transformed distances t [P] times the envelope of the distances d [P]."""
        t2 = ops.expand_dims(t, 1)
        bessel = self._prefactor * (ops.sin(self.frequencies * t2) / t2)
        return bessel * ops.expand_dims(self.envelope(d), 1)


class E3nnMLP(nn.Cell):
    """e3nn's ``FullyConnectedNet(sizes, silu)``: bias-free layers ``W_k`` [n_k, n_{k+1}] ~ N(0, 1)."""

    def __init__(self, sizes, *, dtype: str = "float32", rng: np.random.Generator):
        super().__init__()
        dtype, rng = check_dtype(dtype), check_rng(rng)
        self.sizes = [int(s) for s in sizes]
        self.weights = ParameterTuple([
            Parameter(_t(rng.standard_normal((a, b)), dtype), name=f"weight{k}")
            for k, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:]))])
        self._norms = [_t(math.sqrt(a), dtype) for a in self.sizes[:-1]]
        self._act = _t(E3NN_SILU_CONSTANT, dtype)
        self._n = len(self.sizes) - 1

    def hidden(self, x):
        """The input of the last layer: ``[..., sizes[-2]]``."""
        for k in range(self._n - 1):
            x = _silu(matmul(x, self.weights[k] / self._norms[k])) * self._act
        return x

    def construct(self, x):
        return matmul(self.hidden(x), self.weights[self._n - 1] / self._norms[self._n - 1])

    def split_outputs(self, x, sections):
        """``construct(x)`` split into column blocks of ``sections`` (a tuple of ``[..., n]``): the last
        layer's weight is split, not its output, so no large output is sliced."""
        w = self.weights[self._n - 1] / self._norms[self._n - 1]
        hidden = self.hidden(x)
        return tuple(matmul(hidden, part) for part in ops.split(w, sections, 1))


class NonLinearReadout(nn.Cell):
    """mace-torch's ``NonLinearReadoutBlock`` for scalar features: [N, C] -> [N, 1]."""

    def __init__(self, irreps_in, hidden: int, *, dtype: str = "float32", rng: np.random.Generator):
        super().__init__()
        self.linear_1 = EquivariantLinear(irreps_in, f"{hidden}x0e", dtype=dtype, rng=rng)
        self.linear_2 = EquivariantLinear(f"{hidden}x0e", "1x0e", dtype=dtype, rng=rng)
        self._act = _t(E3NN_SILU_CONSTANT, dtype)

    def construct(self, x):
        return self.linear_2(_silu(self.linear_1(x)) * self._act)


class MACEInteraction(nn.Cell):
    """One interaction block and its product basis; see the module docstring.

    ``construct(h, species, sh, radial, idx_i, idx_j, n_atoms) -> h'``: ``sh`` are the harmonics of
    mace-torch's edge vectors (sender -> receiver, i.e. ``-r_ij``), ``radial`` the radial features.
    """

    def __init__(self, irreps_in, irreps_out, sh_irreps, target_irreps, correlation: int, n_elements: int,
                 radial_sizes, avg_num_neighbors: float, residual: bool, *, dtype: str = "float32",
                 rng: np.random.Generator):
        super().__init__()
        self.residual = bool(residual)
        if self.residual:
            self.skip_tp = ElementLinear(irreps_in, n_elements, irreps_out, dtype=dtype, rng=rng)
        self.linear_up = EquivariantLinear(irreps_in, irreps_in, dtype=dtype, rng=rng)
        self.conv_tp = TensorProductUVU(irreps_in, sh_irreps, target_irreps, dtype=dtype)
        self.conv_tp_weights = E3nnMLP(list(radial_sizes) + [self.conv_tp.weight_numel], dtype=dtype, rng=rng)
        self.linear = EquivariantLinear(self.conv_tp.irreps_out, target_irreps, dtype=dtype, rng=rng)
        if not self.residual:
            self.skip_tp = ElementLinear(target_irreps, n_elements, target_irreps, dtype=dtype, rng=rng)
        self.symmetric_contraction = SymmetricContraction(target_irreps, irreps_out, correlation, n_elements,
                                                          basis="mace", dtype=dtype, rng=rng)
        self.product_linear = EquivariantLinear(irreps_out, irreps_out, dtype=dtype, rng=rng)
        self._avg = _t(avg_num_neighbors, dtype)
        self._weight_sections = tuple(self.conv_tp.weight_sections)

    def construct(self, h, species, sh, radial, idx_i, idx_j, n_atoms: int):
        h_up = self.linear_up(h)
        weights = self.conv_tp_weights.split_outputs(radial, self._weight_sections)
        message = self.conv_tp.convolve(h_up, sh, weights, idx_j, idx_i)
        a = self.linear(message) / self._avg
        if self.residual:
            return self.product_linear(self.symmetric_contraction(a, species)) + self.skip_tp(h, species)
        a = self.skip_tp(a, species)
        return self.product_linear(self.symmetric_contraction(a, species))
