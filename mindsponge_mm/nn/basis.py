"""Radial bases and cutoff functions of the interatomic distance d (Å); shapes [P] -> [P, n]."""
from __future__ import annotations

import math

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from ..errors import ConfigError
from .dense import check_dtype


def _integer_power(x, n: int):
    """x**n for a Python int n >= 1 as repeated squaring (unrolled when the graph is traced).

    Products instead of ``ops.pow``: MindSpore 2.10's CPU Pow kernel gives last-bit differences
    that depend on its thread partitioning, which breaks bit-for-bit MD restarts."""
    result, base = None, x
    while n:
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if n:
            base = base * base
    return result


class GaussianBasis(nn.Cell):
    """exp(-γ (d - μ_k)²), μ_k evenly spaced on [start, cutoff], γ = 1 / (2 Δμ²) (SchNet)."""

    def __init__(self, n: int, cutoff: float, start: float = 0.0, *, dtype: str = "float32"):
        super().__init__()
        dtype = check_dtype(dtype)
        centers = np.linspace(start, cutoff, n)
        width = centers[1] - centers[0] if n > 1 else cutoff
        self.centers = ms.Tensor(centers.astype(dtype))
        self.gamma = float(0.5 / width**2)

    def construct(self, d):
        delta = ops.expand_dims(d, 1) - self.centers
        return ops.exp(-self.gamma * (delta * delta))


class BesselBasis(nn.Cell):
    """sqrt(2 / rc) · sin(k π d / rc) / d, k = 1..n (DimeNet, PaiNN, MACE). Needs d > 0 (use a safe norm)."""

    def __init__(self, n: int, cutoff: float, *, dtype: str = "float32"):
        super().__init__()
        dtype = check_dtype(dtype)
        self.freq = ms.Tensor((np.arange(1, n + 1) * math.pi / cutoff).astype(dtype))
        self.prefactor = math.sqrt(2.0 / cutoff)

    def construct(self, d):
        d2 = ops.expand_dims(d, 1)
        return self.prefactor * ops.sin(self.freq * d2) / d2


class CosineCutoff(nn.Cell):
    """0.5 (cos(π d / rc) + 1) for d < rc, else 0. Shape [P] -> [P]."""

    def __init__(self, cutoff: float):
        super().__init__()
        self.cutoff = float(cutoff)

    def construct(self, d):
        inside = (d < self.cutoff).astype(d.dtype)
        return 0.5 * (ops.cos(d * (math.pi / self.cutoff)) + 1.0) * inside


class PolynomialEnvelope(nn.Cell):
    """The smooth polynomial envelope of DimeNet/MACE with exponent p: 1 at d = 0, zero with p
    continuous derivatives at d = rc, 0 beyond. Shape [P] -> [P]."""

    def __init__(self, cutoff: float, p: int = 6):
        super().__init__()
        self.cutoff = float(cutoff)
        if int(p) != p or p < 1:
            raise ConfigError(f"model.envelope_p = {p} must be a positive integer (the envelope exponent)")
        self.p_int = int(p)
        self.p = float(p)

    def construct(self, d):
        p = self.p
        x = d / self.cutoff
        inside = (x < 1.0).astype(d.dtype)
        x = x * inside  # keep the polynomial bounded beyond the cutoff
        x_p = _integer_power(x, self.p_int)  # products, not Pow (not bit-reproducible on CPU; DEVELOPING.md)
        env = (1.0 - (p + 1.0) * (p + 2.0) / 2.0 * x_p + p * (p + 2.0) * x_p * x
               - p * (p + 1.0) / 2.0 * x_p * x * x)
        return env * inside
