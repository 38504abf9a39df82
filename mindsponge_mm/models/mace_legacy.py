"""The first MACE-style model of this package (checkpoint format version 1), kept so that its checkpoints load.

New models are :class:`~mindsponge_mm.models.mace.MACE` (version 2, mace-torch's ``ScaleShiftMACE``).
``build("mace", version=1, ...)`` (and a checkpoint whose hyperparameters say ``version: 1`` or lack
the key) builds this one. Differences to version 2: Glorot-initialised dense embedding and radial MLP
with biases and plain SiLU, no element-dependent skip connection (a linear residual from layer 2 on),
edge harmonics of ``r_ij`` rather than ``-r_ij``, the orthonormal symmetric product basis.

A MACE-style higher-order equivariant model (Batatia et al., NeurIPS 2022).

Each layer t:

1. ``h_up = Linear(h)``;
2. edge features: Bessel radial basis × polynomial envelope -> radial MLP -> per-edge path weights,
   spherical harmonics Y(r̂_ij) up to ``l_max``;
3. A_i = Linear( Σ_j TP_uvu(h_up_j, Y_ij; R(r_ij)) / avg_num_neighbors ), with the irreps of the SH
   (``C x 0e + C x 1o + ...``);
4. B_i = SymmetricContraction(A_i; element of i), body order up to ``correlation + 1``;
5. h_i = Linear(B_i) (+ Linear(h_i) residual after the first layer);
6. a readout per layer: linear for inner layers, a small MLP on the scalars of the last one.

The energy per atom is the sum of the readouts, then scale, shift and E0 from the base class.
"""
from __future__ import annotations

from mindspore import nn, ops

from ..nn import MLP, BesselBasis, Dense, PolynomialEnvelope, safe_norm
from ..so3 import EquivariantLinear, Irreps, SphericalHarmonics, SymmetricContraction, TensorProductUVU
from .base import AtomisticModel


def _irreps(channels: int, l_max: int) -> Irreps:
    """``C x 0e + C x 1o + C x 2e + ...`` up to ``l_max`` (the parities of spherical harmonics)."""
    return Irreps("+".join(f"{channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(l_max + 1)))


class MACELayer(nn.Cell):
    """One interaction + product layer; see the module docstring."""

    def __init__(self, irreps_in, irreps_out, sh_irreps, a_irreps, correlation, n_elements, n_radial,
                 radial_hidden, avg_num_neighbors, residual, *, dtype: str = "float32", rng):
        super().__init__()
        self.linear_up = EquivariantLinear(irreps_in, irreps_in, dtype=dtype, rng=rng)
        self.tp = TensorProductUVU(irreps_in, sh_irreps, a_irreps, dtype=dtype)
        self.radial = MLP([n_radial, radial_hidden, radial_hidden, radial_hidden, self.tp.weight_numel],
                          act="silu", dtype=dtype, rng=rng)
        self.linear_a = EquivariantLinear(self.tp.irreps_out, a_irreps, dtype=dtype, rng=rng)
        self.product = SymmetricContraction(a_irreps, irreps_out, correlation, n_elements, dtype=dtype, rng=rng)
        self.linear_out = EquivariantLinear(irreps_out, irreps_out, dtype=dtype, rng=rng)
        self.residual = residual
        if residual:
            self.skip = EquivariantLinear(irreps_in, irreps_out, dtype=dtype, rng=rng)
        self.inv_avg = 1.0 / float(avg_num_neighbors)

    def construct(self, h, species, sh, radial_features, idx_i, idx_j, n_atoms: int):
        h_up = self.linear_up(h)
        # the convolution summed over neighbors; scatter_nodes applies the path weights and sums the
        # edges before splitting into paths, which keeps the per-edge memory down (large cells)
        summed = self.tp.scatter_nodes(ops.gather(h_up, idx_j, 0), sh, self.radial(radial_features), idx_i, n_atoms)
        a = self.linear_a(summed * self.inv_avg)
        out = self.linear_out(self.product(a, species))
        if self.residual:
            out = out + self.skip(h)
        return out


class LegacyMACE(AtomisticModel):
    """MACE-style model, checkpoint format version 1.

    Args:
        elements, cutoff (Å), dtype, seed: as every model.
        n_channels: C, the multiplicity of every irrep.
        hidden_l: largest l of the hidden features between layers (0, 1 or 2): ``Cx0e+Cx1o(+Cx2e)``.
        l_max: largest l of the edge spherical harmonics and of the A/B features (≤ 3 tested).
        correlation: ν of the symmetric product basis (body order ν + 1), ≤ 3.
        n_layers: interaction layers (the last outputs scalars only).
        n_radial: Bessel functions. radial_hidden: width of the radial MLP. envelope_p: envelope exponent.
        avg_num_neighbors: normalisation of the neighbor sum (set it from the data).
        readout_hidden: width of the last layer's MLP readout.
    """

    name = "mace"

    def __init__(self, elements, cutoff: float = 5.0, n_channels: int = 128, hidden_l: int = 1, l_max: int = 3,
                 correlation: int = 3, n_layers: int = 2, n_radial: int = 8, radial_hidden: int = 64,
                 envelope_p: int = 5, avg_num_neighbors: float = 10.0, readout_hidden: int = 16,
                 dtype: str = "float32", seed: int = 0, version: int = 1):
        super().__init__(elements, cutoff, dtype, seed)
        self.hyperparameters.update(
            version=1, n_channels=n_channels, hidden_l=hidden_l, l_max=l_max, correlation=correlation, n_layers=n_layers,
            n_radial=n_radial, radial_hidden=radial_hidden, envelope_p=envelope_p,
            avg_num_neighbors=float(avg_num_neighbors), readout_hidden=readout_hidden)
        rng, dt = self.rng, self.dtype_name
        scalars = Irreps(f"{n_channels}x0e")
        hidden = _irreps(n_channels, hidden_l)
        sh_irreps = _irreps(1, l_max)
        a_irreps = _irreps(n_channels, l_max)
        self.embedding = Dense(self.n_elements, n_channels, bias=False, dtype=dt, rng=rng)
        self.sh = SphericalHarmonics(l_max, normalize=True, dtype=dt)
        self.radial_basis = BesselBasis(n_radial, cutoff, dtype=dt)
        self.envelope = PolynomialEnvelope(cutoff, envelope_p)
        layers, readouts = [], []
        for t in range(n_layers):
            last = t == n_layers - 1
            irreps_in = scalars if t == 0 else hidden
            irreps_out = scalars if last else hidden
            layers.append(MACELayer(irreps_in, irreps_out, sh_irreps, a_irreps, correlation, self.n_elements,
                                    n_radial, radial_hidden, avg_num_neighbors, t > 0, dtype=dt, rng=rng))
            readouts.append(MLP([n_channels, readout_hidden, 1], act="silu", dtype=dt, rng=rng) if last
                            else EquivariantLinear(irreps_out, "1x0e", dtype=dt, rng=rng))
        self.layers = nn.CellList(layers)
        self.readouts = nn.CellList(readouts)

    def atom_outputs(self, species, vectors, idx_i, idx_j, pair_mask, atom_mask):
        n_atoms = species.shape[0]
        d = safe_norm(vectors, pair_mask)
        sh = self.sh(vectors)
        radial = self.radial_basis(d) * ops.expand_dims(self.envelope(d) * pair_mask.astype(d.dtype), 1)
        h = ops.gather(self.embedding.weight, species, 0)
        energy = ops.zeros((n_atoms,), h.dtype)
        for layer, readout in zip(self.layers, self.readouts):
            h = layer(h, species, sh, radial, idx_i, idx_j, n_atoms)
            energy = energy + readout(h)[:, 0]
        return energy
