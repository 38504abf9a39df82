"""MACE (Batatia et al., NeurIPS 2022): the same function as mace-torch 0.3's ``ScaleShiftMACE``.

For the same weights (:func:`~mindsponge_mm.models.mace_convert.model_from_mace_state_dict`) the
energies, per-atom energies, forces and stress equal mace-torch's to rounding (float64).

Per atom, with ``h⁰ = W_emb[z] / sqrt(n_elements)`` (C scalars) and, for layer t = 1..T:

1. ``A = Linear( Σ_j TP_uvu(Linear_up(h_j), Y(r̂_ji); R(r_ij)) ) / avg_num_neighbors`` with Y the
   spherical harmonics of mace-torch's edge vector (sender j -> receiver i: ``-r_ij``), R an e3nn
   MLP (bias-free, normalised SiLU) of the Bessel × envelope features, A of irreps
   ``C x (0e + 1o + ... + l_max)``;
2. ``h^t = Linear(B(A; z)) + SkipTP(h^{t-1}; z)`` — B mace-torch's symmetric contraction (its
   coupling trees, element-dependent weights), SkipTP a linear map whose weights depend on the
   element. With ``first_interaction="plain"`` (MACE-OFF) layer 1 instead maps A by the
   element-dependent map and has no skip;
3. hidden features ``C x (0e + 1o + ... + hidden_l)``; the last layer keeps scalars only;
4. readouts: linear on inner layers, ``Linear -> SiLU -> Linear`` (``readout_hidden`` scalars) on the
   last; with one layer, one linear readout.

E = Σ_i [E0(z_i) + scale · (Σ_t readout_t(h_i^t) + V_i) + shift] (the base class applies E0, scale,
shift), with V_i = 0, or with ``pair_repulsion=True`` half the ZBL repulsion of atom i's pairs
(mace-torch's ``ZBLBasis``). ``distance_transform="agnesi"`` feeds the Bessel basis mace-torch's Agnesi
transform of each distance (the envelope still sees the distance): MACE-MP-0b's two additions, in
:mod:`~mindsponge_mm.models.mace_repulsion`. Both are off by default.

Checkpoint format: hyperparameter ``version`` (2 here). ``version=1``, or a checkpoint saved before
the key existed, builds :class:`~mindsponge_mm.models.mace_legacy.LegacyMACE`.
"""
from __future__ import annotations

import math

import mindspore as ms
import numpy as np
from mindspore import Parameter, nn, ops

from ..errors import ConfigError
from ..nn import safe_norm
from ..so3 import EquivariantLinear, Irreps, SphericalHarmonics
from .base import AtomisticModel
from .mace_blocks import MACEInteraction, MACERadial, NonLinearReadout
from .mace_legacy import LegacyMACE
from .mace_repulsion import DISTANCE_TRANSFORMS, AgnesiTransform, ZBLRepulsion
from .registry import register

FIRST_INTERACTIONS = {"residual": "RealAgnosticResidualInteractionBlock", "plain": "RealAgnosticInteractionBlock"}


def natural_irreps(channels: int, l_max: int) -> Irreps:
    """``C x 0e + C x 1o + C x 2e + ...`` up to ``l_max`` (the parities of spherical harmonics)."""
    return Irreps("+".join(f"{channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(l_max + 1)))


@register("mace")
class MACE(AtomisticModel):
    """mace-torch's ``ScaleShiftMACE``; see the module docstring.

    Args:
        elements, cutoff (Å, mace-torch's ``r_max``), dtype, seed: as every model.
        n_channels: C, the multiplicity of every irrep (mace-torch: ``hidden_irreps`` ``Cx0e+Cx1o``).
        hidden_l: largest l of the hidden features (0: ``Cx0e``, 1: ``Cx0e+Cx1o``, 2: ``+Cx2e``).
        l_max: ``max_ell``, largest l of the edge harmonics and of A.
        correlation: body order ν of the product basis, an int or one per layer.
        n_layers: ``num_interactions``.
        n_radial: ``num_bessel``. envelope_p: ``num_polynomial_cutoff``.
        radial_hidden: width of each of the three hidden layers of the radial MLP, unless
            ``radial_mlp`` (mace-torch's ``radial_MLP``, e.g. ``[64, 64, 64]``) is given.
        avg_num_neighbors: the divisor of the neighbor sum (set it from the data).
        readout_hidden: scalars of the last layer's MLP readout (``MLP_irreps = "16x0e"``).
        first_interaction: ``"residual"`` (``RealAgnosticResidualInteractionBlock``, MACE-MP) or
            ``"plain"`` (``RealAgnosticInteractionBlock``, MACE-OFF).
        pair_repulsion: add the ZBL pair repulsion (mace-torch's ``pair_repulsion=True``).
        distance_transform: ``"none"`` or ``"agnesi"`` (mace-torch's ``distance_transform="Agnesi"``).
        version: checkpoint format; 2 (this class) or 1 (:class:`LegacyMACE`).
    """

    name = "mace"

    def __new__(cls, *args, version: int = 2, **kwargs):
        if int(version) == 1:
            return LegacyMACE(*args, **kwargs)
        if int(version) != 2:
            raise ConfigError(f"model.version = {version}: MACE checkpoints have format version 1 or 2")
        return super().__new__(cls)

    @classmethod
    def checkpoint_hyperparameters(cls, hyperparameters: dict) -> dict:
        """Hyperparameters of a saved model as :func:`build` needs them: checkpoints written before
        the format was versioned (no ``version`` key) hold the version-1 architecture."""
        out = dict(hyperparameters)
        out.setdefault("version", 1)
        return out

    @classmethod
    def defaults_from_data(cls, dataset, cutoff: float, spec: dict) -> dict:
        """``avg_num_neighbors`` from the first 100 frames of ``dataset``, unless ``spec`` sets it."""
        if "avg_num_neighbors" in spec:
            return {}
        from ..data.statistics import average_neighbors

        return {"avg_num_neighbors": average_neighbors(dataset, cutoff)}

    ZERO_ALLOWED = ("hidden_l",)  # 0: scalar hidden features (MACE-MP-0 "small")

    def __init__(self, elements, cutoff: float = 5.0, n_channels: int = 128, hidden_l: int = 1, l_max: int = 3,
                 correlation=3, n_layers: int = 2, n_radial: int = 8, radial_hidden: int = 64,
                 radial_mlp=None, envelope_p: int = 5, avg_num_neighbors: float = 10.0, readout_hidden: int = 16,
                 first_interaction: str = "residual", pair_repulsion: bool = False, distance_transform: str = "none",
                 version: int = 2, dtype: str = "float32", seed: int = 0):
        super().__init__(elements, cutoff, dtype, seed)
        if first_interaction not in FIRST_INTERACTIONS:
            raise ConfigError(f"model.first_interaction = {first_interaction!r}: choose 'residual' or 'plain'")
        if int(n_layers) < 1:
            raise ConfigError(f"model.n_layers = {n_layers}: a MACE needs at least one interaction")
        corr = [int(correlation)] * int(n_layers) if isinstance(correlation, (int, np.integer)) else \
            [int(c) for c in correlation]
        if len(corr) != int(n_layers):
            raise ConfigError(f"model.correlation: {len(corr)} values for {n_layers} layers")
        transform = "none" if distance_transform is None else str(distance_transform).lower()
        if transform not in DISTANCE_TRANSFORMS:
            raise ConfigError(f"model.distance_transform = {distance_transform!r}: choose 'none' or 'agnesi'")
        if not isinstance(pair_repulsion, (bool, np.bool_)):
            raise ConfigError(f"model.pair_repulsion = {pair_repulsion!r}: true or false")
        radial_mlp = [int(radial_hidden)] * 3 if radial_mlp is None else [int(w) for w in radial_mlp]
        self.hyperparameters.update(
            version=2, n_channels=int(n_channels), hidden_l=int(hidden_l), l_max=int(l_max),
            correlation=corr if len(set(corr)) > 1 else corr[0], n_layers=int(n_layers), n_radial=int(n_radial),
            radial_hidden=int(radial_hidden), radial_mlp=radial_mlp, envelope_p=int(envelope_p),
            avg_num_neighbors=float(avg_num_neighbors), readout_hidden=int(readout_hidden),
            first_interaction=first_interaction)
        # recorded only when on, so that the hyperparameters of models without them stay as they were
        if pair_repulsion:
            self.hyperparameters["pair_repulsion"] = True
        if transform != "none":
            self.hyperparameters["distance_transform"] = transform
        rng, dt = self.rng, self.dtype_name
        c = int(n_channels)
        scalars = Irreps(f"{c}x0e")
        hidden = natural_irreps(c, int(hidden_l))
        sh_irreps = natural_irreps(1, int(l_max))
        target = natural_irreps(c, int(l_max))
        n_el = self.n_elements
        self.embedding = Parameter(ms.Tensor(rng.standard_normal((n_el, c)).astype(self.dtype_name)), name="embedding")
        self._embedding_scale = ms.Tensor(np.array(1.0 / math.sqrt(n_el), self.dtype_name))
        self.sh = SphericalHarmonics(int(l_max), normalize=True, dtype=dt)
        self.radial = MACERadial(int(n_radial), self.cutoff, int(envelope_p), dtype=dt)
        layers, readouts = [], []
        irreps_in = scalars
        n = int(n_layers)
        for t in range(n):
            irreps_out = scalars if t == n - 1 else hidden
            residual = t > 0 or first_interaction == "residual"
            layers.append(MACEInteraction(irreps_in, irreps_out, sh_irreps, target, corr[t], n_el,
                                          [int(n_radial)] + radial_mlp, float(avg_num_neighbors), residual,
                                          dtype=dt, rng=rng))
            if t == n - 1 and n > 1:
                readouts.append(NonLinearReadout(irreps_out, int(readout_hidden), dtype=dt, rng=rng))
            else:
                readouts.append(EquivariantLinear(irreps_out, "1x0e", dtype=dt, rng=rng))
            irreps_in = irreps_out
        self.layers = nn.CellList(layers)
        self.readouts = nn.CellList(readouts)
        self._zbl = bool(pair_repulsion)
        self._agnesi = transform == "agnesi"
        if self._zbl:
            self.pair_repulsion_fn = ZBLRepulsion(self.elements, int(envelope_p), dtype=dt)
        if self._agnesi:
            self.distance_transform = AgnesiTransform(self.elements, dtype=dt)

    def atom_outputs(self, species, vectors, idx_i, idx_j, pair_mask, atom_mask):
        n_atoms = species.shape[0]
        d = safe_norm(vectors, pair_mask)
        sh = self.sh(-vectors)  # mace-torch's edge vector points from the sender j to the receiver i
        if self._agnesi:
            t = self.distance_transform(d, ops.gather(species, idx_i, 0), ops.gather(species, idx_j, 0))
            radial = self.radial.transformed(d, t) * ops.expand_dims(pair_mask.astype(d.dtype), 1)
        else:
            radial = self.radial(d) * ops.expand_dims(pair_mask.astype(d.dtype), 1)
        h = ops.gather(self.embedding, species, 0) * self._embedding_scale
        energy = None
        for layer, readout in zip(self.layers, self.readouts):
            h = layer(h, species, sh, radial, idx_i, idx_j, n_atoms)
            e = readout(h)[:, 0]
            energy = e if energy is None else energy + e
        if self._zbl:
            energy = self.pair_repulsion_fn(species, d, idx_i, idx_j, pair_mask, n_atoms) + energy
        return energy
