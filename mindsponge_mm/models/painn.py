"""PaiNN (Schütt, Unke, Gastegger, ICML 2021): scalar and vector features with message and update blocks."""
from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn, ops

from ..nn import BesselBasis, CosineCutoff, Dense, MLP, PairOps, matmul, safe_norm
from .base import AtomisticModel
from .registry import register

_EPS = 1e-8


def _split3(x, n: int):
    """[P, 3n] -> three [P, n] blocks. ``ops.split`` (whose gradient is a concat) rather than
    slices, whose gradients are full-width zero tensors on MindSpore's CPU backend."""
    return ops.split(x, n, 1)


class PaiNNMessage(nn.Cell):
    """ds_i = Σ_j φ_s(s_j) W_s(d_ij);  dv_i = Σ_j φ_vv(s_j) W_vv v_j + φ_vs(s_j) W_vs r̂_ij.

    Vector features are stored as [A, 3n] = [v_x | v_y | v_z]: every op stays two-dimensional,
    which is several times faster on MindSpore's CPU backend than [A, 3, n] with broadcasts.
    Each sum over j is one fused pair convolution (:class:`~mindsponge_mm.nn.PairOps`), with the
    per-atom factors (φ, and φ_vv v_j) formed on atoms, not on pairs.
    """

    def __init__(self, n: int, pair: PairOps, first: bool = False, *, dtype: str = "float32", rng):
        super().__init__()
        self.n = n
        self.pair = pair
        self.first = first  # the first layer sees v = 0: its W_vv v_j term is skipped (same numbers, less work)
        self.phi = MLP([n, n, 3 * n], act="silu", dtype=dtype, rng=rng)

    def construct(self, s, v, w_s, w_vv3, w_vs3, unit3, idx_i, idx_j):
        """w_s [P, n], w_vv3 and w_vs3 [P, 3n]: this layer's radial filters (cutoff applied; the
        vector ones repeated per component); unit3 [P, 3n]: r̂ repeated per feature."""
        phi_s, phi_vv, phi_vs = _split3(self.phi(s), self.n)
        ds = self.pair.conv(phi_s, w_s, idx_j, idx_i)
        dv = self.pair.conv(ops.concat([phi_vs, phi_vs, phi_vs], 1), w_vs3 * unit3, idx_j, idx_i)
        if not self.first:
            dv = dv + self.pair.conv(ops.concat([phi_vv, phi_vv, phi_vv], 1) * v, w_vv3, idx_j, idx_i)
        return s + ds, v + dv


class PaiNNUpdate(nn.Cell):
    """Mixes scalars with the norms and inner products of linearly combined vectors."""

    def __init__(self, n: int, *, dtype: str = "float32", rng):
        super().__init__()
        self.n = n
        self.uv = Dense(n, n, bias=False, dtype=dtype, rng=rng)
        self.vv = Dense(n, n, bias=False, dtype=dtype, rng=rng)
        self.mix = MLP([2 * n, n, 3 * n], act="silu", dtype=dtype, rng=rng)

    def construct(self, s, v):
        n = self.n
        rows = v.reshape(-1, n)  # [3A, n]: the same linear map on every component
        uv = self.uv(rows).reshape(v.shape)
        vv = self.vv(rows).reshape(v.shape)
        vx, vy, vz = _split3(vv, n)
        norm = ops.sqrt(vx * vx + vy * vy + vz * vz + _EPS)
        ux, uy, uz = _split3(uv, n)
        a = self.mix(ops.concat([s, norm], -1))
        a_vv, a_sv, a_ss = _split3(a, n)
        return s + a_sv * (ux * vx + uy * vy + uz * vz) + a_ss, v + ops.concat([a_vv, a_vv, a_vv], 1) * uv


@register("painn")
class PaiNN(AtomisticModel):
    """PaiNN energy model (vector features are stored as [A, 3 · n_features]).

    Args:
        elements, cutoff (Å), n_features, n_interactions, n_rbf (Bessel functions), dtype, seed.
    """

    name = "painn"

    def __init__(self, elements, cutoff: float = 5.0, n_features: int = 128, n_interactions: int = 3,
                 n_rbf: int = 20, dtype: str = "float32", seed: int = 0):
        super().__init__(elements, cutoff, dtype, seed)
        self.hyperparameters.update(n_features=n_features, n_interactions=n_interactions, n_rbf=n_rbf)
        rng, dt = self.rng, self.dtype_name
        self.n_features = n_features
        self.embedding = Dense(self.n_elements, n_features, bias=False, dtype=dt, rng=rng)
        self.rbf = BesselBasis(n_rbf, cutoff, dtype=dt)
        self.fcut = CosineCutoff(cutoff)
        # one radial filter per layer, with the cutoff folded in (see radial_filters)
        self.filters = nn.CellList([Dense(n_rbf, 3 * n_features, dtype=dt, rng=rng) for _ in range(n_interactions)])
        # r̂ [P, 3] @ expand [3, 3n] = r̂ repeated per feature, [r̂_x..r̂_x | r̂_y.. | r̂_z..]
        self.expand = Tensor(np.kron(np.eye(3), np.ones((1, n_features))).astype(dt))
        self.pair = PairOps()
        self.messages = nn.CellList([PaiNNMessage(n_features, self.pair, first=(t == 0), dtype=dt, rng=rng)
                                     for t in range(n_interactions)])
        self.updates = nn.CellList([PaiNNUpdate(n_features, dtype=dt, rng=rng) for _ in range(n_interactions)])
        self.readout = MLP([n_features, n_features // 2, 1], act="silu", dtype=dt, rng=rng)

    def radial_filters(self, rbf, fcut):
        """Per layer t, the filters (rbf W_t + b_t) · fcut as (w_s [P, n], w_vv3 [P, 3n], w_vs3 [P, 3n]).

        Each is one matmul of [rbf · fcut, fcut] [P, n_rbf + 1] with a block of [[W_t], [b_t]]
        (the vector blocks' columns repeated per component), so bias, cutoff and repetition cost
        no pass over the pairs. W_t's columns are [s | vv | vs], as in the parameter.
        """
        x = ops.concat([rbf * fcut, fcut], 1)
        filters = []
        for f in self.filters:
            w_s, w_vv, w_vs = _split3(ops.concat([f.weight, f.bias.reshape(1, -1)], 0), self.n_features)
            filters.append((matmul(x, w_s), matmul(x, ops.concat([w_vv, w_vv, w_vv], 1)),
                            matmul(x, ops.concat([w_vs, w_vs, w_vs], 1))))
        return filters

    def atom_outputs(self, species, vectors, idx_i, idx_j, pair_mask, atom_mask):
        n_atoms = species.shape[0]
        d = safe_norm(vectors, pair_mask)
        unit = vectors / ops.expand_dims(d, 1)
        n = self.n_features
        unit3 = matmul(unit, self.expand)  # [P, 3n]: r̂ repeated per feature
        fcut = ops.expand_dims(self.fcut(d) * pair_mask.astype(d.dtype), 1)
        filters = self.radial_filters(self.rbf(d), fcut)
        s = ops.gather(self.embedding.weight, species, 0)
        v = ops.zeros((n_atoms, 3 * n), s.dtype)  # [v_x | v_y | v_z]
        for (w_s, w_vv3, w_vs3), message, update in zip(filters, self.messages, self.updates):
            s, v = message(s, v, w_s, w_vv3, w_vs3, unit3, idx_i, idx_j)
            s, v = update(s, v)
        return self.readout(s)[:, 0]
