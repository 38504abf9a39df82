"""Neural-network building blocks: dense layers, radial bases, cutoff functions, scatter helpers.

Everything here is built from matmul, gather, reshape and segment ops, so it compiles on
CPU and Ascend and can be differentiated twice (forces, then a force loss).
"""
from .basis import BesselBasis, CosineCutoff, GaussianBasis, PolynomialEnvelope
from .dense import MLP, Dense, activation, check_dtype, check_rng, matmul, shifted_softplus
from .geometry import safe_norm, scatter_sum
from .pair_ops import PairOps

__all__ = [
    "Dense", "MLP", "activation", "matmul", "shifted_softplus", "GaussianBasis", "BesselBasis", "CosineCutoff",
    "PolynomialEnvelope", "safe_norm", "scatter_sum", "PairOps", "check_dtype", "check_rng",
]
