"""Neural-network building blocks: dense layers, radial bases, cutoff functions, scatter helpers, and the
geometry of a batch (pair vectors, strain, volume; :mod:`.geometry`).

Everything here is built from matmul, gather, reshape and segment ops, so it compiles on
CPU and Ascend and can be differentiated twice (forces, then a force loss).
"""
from .basis import BesselBasis, CosineCutoff, GaussianBasis, PolynomialEnvelope
from .dense import MLP, Dense, activation, check_dtype, check_rng, matmul, shifted_softplus
from .geometry import (
    apply_strain, cell_volume, det3, pair_structure, pair_vectors, periodic_volume, row_times_matrix, safe_norm,
    scatter_sum,
)
from .pair_ops import PairOps

__all__ = [
    "Dense", "MLP", "activation", "matmul", "shifted_softplus", "GaussianBasis", "BesselBasis", "CosineCutoff",
    "PolynomialEnvelope", "safe_norm", "scatter_sum", "PairOps", "check_dtype", "check_rng", "pair_structure",
    "pair_vectors", "apply_strain", "row_times_matrix", "det3", "cell_volume", "periodic_volume",
]
