"""SchNet (Schütt et al., 2017/2018): continuous-filter convolutions with a Gaussian RBF and a cosine cutoff."""
from __future__ import annotations

from mindspore import nn, ops

from ..nn import CosineCutoff, Dense, GaussianBasis, MLP, PairOps, safe_norm
from .base import AtomisticModel
from .registry import register


class SchNetInteraction(nn.Cell):
    """x_i += Dense(ssp(Dense(Σ_j W(d_ij) ⊙ Dense(x_j))))."""

    def __init__(self, n_features: int, n_filters: int, n_rbf: int, pair: PairOps, *, dtype: str = "float32", rng):
        super().__init__()
        self.pair = pair
        self.in2f = Dense(n_features, n_filters, bias=False, dtype=dtype, rng=rng)
        self.filter = MLP([n_rbf, n_filters, n_filters], act="ssp", dtype=dtype, rng=rng)
        self.f2out = MLP([n_filters, n_features, n_features], act="ssp", dtype=dtype, rng=rng)

    def construct(self, x, rbf, fcut, idx_i, idx_j):
        w = self.filter(rbf) * ops.expand_dims(fcut, 1)
        return x + self.f2out(self.pair.conv(self.in2f(x), w, idx_j, idx_i))


@register("schnet")
class SchNet(AtomisticModel):
    """SchNet energy model.

    Args:
        elements: element symbols or atomic numbers the model knows.
        cutoff: Å. n_features: atom feature size. n_filters: filter size (default n_features).
        n_interactions: number of interaction blocks. n_rbf: Gaussians on [0, cutoff].
        dtype: float32 or float64. seed: weight initialisation.
    """

    name = "schnet"

    def __init__(self, elements, cutoff: float = 5.0, n_features: int = 128, n_filters: int | None = None,
                 n_interactions: int = 3, n_rbf: int = 20, dtype: str = "float32", seed: int = 0):
        super().__init__(elements, cutoff, dtype, seed)
        n_filters = n_filters or n_features
        self.hyperparameters.update(n_features=n_features, n_filters=n_filters, n_interactions=n_interactions, n_rbf=n_rbf)
        rng, dt = self.rng, self.dtype_name
        self.embedding = Dense(self.n_elements, n_features, bias=False, dtype=dt, rng=rng)
        self.rbf = GaussianBasis(n_rbf, cutoff, dtype=dt)
        self.fcut = CosineCutoff(cutoff)
        self.pair = PairOps()
        self.interactions = nn.CellList(
            [SchNetInteraction(n_features, n_filters, n_rbf, self.pair, dtype=dt, rng=rng)
             for _ in range(n_interactions)])
        self.readout = MLP([n_features, n_features // 2, 1], act="ssp", dtype=dt, rng=rng)

    def atom_outputs(self, species, vectors, idx_i, idx_j, pair_mask, atom_mask):
        d = safe_norm(vectors, pair_mask)
        rbf = self.rbf(d)
        fcut = self.fcut(d) * pair_mask.astype(d.dtype)
        x = ops.gather(self.embedding.weight, species, 0)
        for interaction in self.interactions:
            x = interaction(x, rbf, fcut, idx_i, idx_j)
        return self.readout(x)[:, 0]
