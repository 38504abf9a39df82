"""Element-dependent pair terms of :class:`~mindsponge_mm.models.mace.MACE` (MACE-MP-0b style).

* :class:`ZBLRepulsion`: the Ziegler-Biersack-Littmark screened nuclear repulsion as mace-torch 0.3's
  ``ZBLBasis`` (``pair_repulsion=True``). For a pair of atomic numbers Z_i, Z_j at distance r (Å)::

      a   = a_prefactor · 0.529 / (Z_i^a_exp + Z_j^a_exp)
      φ   = Σ_k c_k exp(-b_k r / a),   b = (3.2, 0.9423, 0.4028, 0.2016)
      V   = 14.3996 · Z_i Z_j / r · φ · u(r / (R_i + R_j))

  with R the covalent radii and u the polynomial envelope of exponent p (mace-torch: the model's
  ``num_polynomial_cutoff``), zero beyond R_i + R_j. Each atom gets half of V over its pairs; the
  model adds this per-atom energy to its readouts before ``scale`` and ``shift``, as ScaleShiftMACE
  does.
* :class:`AgnesiTransform`: mace-torch's ``AgnesiTransform`` of the distance fed to the Bessel basis
  (``distance_transform="Agnesi"``; the envelope still sees r)::

      t = 1 / (1 + a · x^q / (1 + x^(q - p))),   x = r / r0,   r0 = (R_i + R_j) / 2

Both hold their constants as non-trainable parameters of the model's dtype, so a converted model
keeps mace-torch's buffer values (``c``, ``a_exp``, ``a_prefactor``; ``q``, ``p``, ``a``) and its
covalent radii, one per element of the model (``elements``, sorted atomic numbers: the species index
of an atom is its position in that list). Non-integer powers are written ``exp(y · log x)``: the
``Pow`` kernel is not bit-reproducible on the CPU (DEVELOPING.md).
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from ase.data import covalent_radii as ASE_COVALENT_RADII
from mindspore import Parameter, nn, ops

from ..nn.dense import check_dtype, ms_dtype

ZBL_COEFFICIENTS = (0.1818, 0.5099, 0.2802, 0.02817)
ZBL_EXPONENTS = (3.2, 0.9423, 0.4028, 0.2016)
ZBL_A_EXP = 0.300
ZBL_A_PREFACTOR = 0.4543
BOHR = 0.529  # Å, the value in the screening length
COULOMB = 14.3996  # e²/(4πε0) in eV·Å
AGNESI = {"q": 0.9183, "p": 4.5791, "a": 1.0805}
DISTANCE_TRANSFORMS = ("none", "agnesi")


def _t(value, dtype: str):
    return ms.Tensor(np.asarray(value, dtype=dtype), ms_dtype(dtype))


def _buffer(value, dtype: str, name: str) -> Parameter:
    return Parameter(_t(value, dtype), name=name, requires_grad=False)


def covalent_radii(elements) -> np.ndarray:
    """ASE's covalent radii (Å) of ``elements`` (atomic numbers), mace-torch's table."""
    return np.asarray(ASE_COVALENT_RADII, np.float64)[np.asarray(elements, np.int64)]


def polynomial_envelope(x, p: int, coefficients, one):
    """mace-torch's polynomial cutoff of x = r / r_max: ``1 - c0 x^p + c1 x^(p+1) - c2 x^(p+2)`` for
    x < 1, else 0; integer powers as products."""
    inside = (x < one).astype(x.dtype)
    x = x * inside
    x_p = x
    for _ in range(p - 1):
        x_p = x_p * x
    env = one - coefficients[0] * x_p + coefficients[1] * (x_p * x) - coefficients[2] * (x_p * x * x)
    return env * inside


def envelope_coefficients(p: int, dtype: str):
    pf = float(p)
    return [_t((pf + 1.0) * (pf + 2.0) / 2.0, dtype), _t(pf * (pf + 2.0), dtype), _t(pf * (pf + 1.0) / 2.0, dtype)]


class ZBLRepulsion(nn.Cell):
    """Per-atom ZBL energies (eV); see the module docstring.

    ``construct(species, d, idx_i, idx_j, pair_mask, n_atoms) -> [n_atoms]`` for species indices [A],
    distances d [P] (Å; finite and non-zero on masked pairs, as ``nn.safe_norm`` gives them).
    """

    def __init__(self, elements, p: int, *, dtype: str = "float32"):
        super().__init__()
        dtype = check_dtype(dtype)
        z = np.asarray(elements, np.float64)
        self._numbers = _t(z, dtype)
        self._log_numbers = _t(np.log(z), dtype)
        self.covalent_radii = _buffer(covalent_radii(elements), dtype, "covalent_radii")
        self.c = _buffer(ZBL_COEFFICIENTS, dtype, "c")
        self.a_exp = _buffer(ZBL_A_EXP, dtype, "a_exp")
        self.a_prefactor = _buffer(ZBL_A_PREFACTOR, dtype, "a_prefactor")
        self._exponents = [_t(-b, dtype) for b in ZBL_EXPONENTS]
        self._bohr = _t(BOHR, dtype)
        self._coulomb = _t(COULOMB, dtype)
        self._half = _t(0.5, dtype)
        self._one = _t(1.0, dtype)
        self.p = int(p)
        self._env = envelope_coefficients(self.p, dtype)

    def pair_energy(self, d, s_i, s_j):
        """V [P] (eV) for distances d [P] between atoms of species s_i, s_j [P] (the whole pair)."""
        z_pow = ops.exp(self.a_exp * self._log_numbers)  # Z^a_exp per element
        z_i, z_j = ops.gather(self._numbers, s_i, 0), ops.gather(self._numbers, s_j, 0)
        a = self.a_prefactor * self._bohr / (ops.gather(z_pow, s_i, 0) + ops.gather(z_pow, s_j, 0))
        r_over_a = d / a
        phi = self.c[0] * ops.exp(self._exponents[0] * r_over_a)
        for k in range(1, 4):
            phi = phi + self.c[k] * ops.exp(self._exponents[k] * r_over_a)
        v = self._coulomb * z_i * z_j / d * phi
        r_max = ops.gather(self.covalent_radii, s_i, 0) + ops.gather(self.covalent_radii, s_j, 0)
        return v * polynomial_envelope(d / r_max, self.p, self._env, self._one)

    def construct(self, species, d, idx_i, idx_j, pair_mask, n_atoms: int):
        s_i, s_j = ops.gather(species, idx_i, 0), ops.gather(species, idx_j, 0)
        v = self._half * self.pair_energy(d, s_i, s_j) * pair_mask.astype(d.dtype)
        return ops.unsorted_segment_sum(v, idx_i, n_atoms)


class AgnesiTransform(nn.Cell):
    """Transformed distances t [P] for the Bessel basis; see the module docstring.

    ``construct(d, s_i, s_j)``: d [P] (Å, positive everywhere), s_i, s_j [P] the pair's species.
    """

    def __init__(self, elements, *, dtype: str = "float32"):
        super().__init__()
        dtype = check_dtype(dtype)
        self.q = _buffer(AGNESI["q"], dtype, "q")
        self.p = _buffer(AGNESI["p"], dtype, "p")
        self.a = _buffer(AGNESI["a"], dtype, "a")
        self.covalent_radii = _buffer(covalent_radii(elements), dtype, "covalent_radii")
        self._half = _t(0.5, dtype)
        self._one = _t(1.0, dtype)

    def construct(self, d, s_i, s_j):
        r0 = self._half * (ops.gather(self.covalent_radii, s_i, 0) + ops.gather(self.covalent_radii, s_j, 0))
        log_x = ops.log(d / r0)
        x_q = ops.exp(self.q * log_x)
        x_qp = ops.exp((self.q - self.p) * log_x)
        return self._one / (self._one + self.a * x_q / (self._one + x_qp))
