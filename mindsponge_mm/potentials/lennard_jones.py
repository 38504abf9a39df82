"""Lennard-Jones pair potential with per-element-pair parameters, a cutoff, an optional energy
shift and optional analytic long-range (tail) corrections.

Pair energy (ε in eV, σ in Å, r in Å)::

    u_ab(r) = 4 ε_ab [(σ_ab / r)^12 - (σ_ab / r)^6]          r < rc
    u_ab(r) -= u_ab(rc)                                      with shift=True (then u(rc) = 0)

ε and σ are given per element and mixed with the Lorentz–Berthelot rules
(σ_ab = (σ_a + σ_b) / 2, ε_ab = sqrt(ε_a ε_b)), or per pair (overrides). The total energy is
``E = ½ Σ_(i, j≠i) u(r_ij)`` over a full pair list; atom i gets half of each pair energy it is
part of (as ASE's ``LennardJones``). Forces and stress are analytic (no autodiff), so the graph
is cheap, compiles under ``ms.jit`` and needs no second derivatives.

Tail corrections (``tail=True``, fully periodic structures only). Assuming g_ab(r) = 1 beyond rc,
with N_a atoms of element a in a volume V and x_ab = σ_ab / rc::

    E_tail = (2π / V) Σ_ab N_a N_b ∫_rc^∞ r² u_ab(r) dr
           = (8π / 3V) Σ_ab N_a N_b ε_ab σ_ab³ [x_ab⁹ / 3 - x_ab³]

    P_tail = -(2π / 3V²) Σ_ab N_a N_b ∫_rc^∞ r³ u_ab'(r) dr
           = (16π / 3V²) Σ_ab N_a N_b ε_ab σ_ab³ [2 x_ab⁹ / 3 - x_ab³]

(one component: E_tail = (8/3) π N ρ ε σ³ [(σ/rc)⁹/3 - (σ/rc)³], P_tail = (16/3) π ρ² ε σ³
[(2/3)(σ/rc)⁹ - (σ/rc)³]). P_tail is the virial (mechanical) tail pressure of the untruncated
potential; it is added to the stress as -P_tail·I (ASE sign). It is not -dE_tail/dV:
P_tail = -dE_tail/dV + (2π / 3V²) Σ_ab N_a N_b rc³ u_ab(rc), the second term being the
impulsive pressure of pairs crossing a plain truncation. So with ``tail=True`` the reported
pressure is that of the full LJ fluid (right for NPT and pressure estimates), while the stress
is not the strain derivative of the reported energy (do not relax cells with ``tail=True``).
The corrections are those of the unshifted potential; with ``shift=True`` the constant shift
inside rc is not undone. Per-atom tail energies: atom of element a gets (2π/V) Σ_b N_b ∫ r² u_ab.
"""
from __future__ import annotations

import math
from typing import Mapping

import mindspore as ms
import numpy as np
from ase.data import atomic_numbers as _atomic_numbers
from ase.data import chemical_symbols
from mindspore import ops

from ..errors import ConfigError, UserError
from ..nn.geometry import pair_structure, pair_vectors, periodic_volume
from .base import PotentialBase

N_Z = len(chemical_symbols)


def element_number(key, what: str) -> int:
    """Atomic number of a symbol ("Ar") or number (18); a ConfigError names ``what`` otherwise."""
    if isinstance(key, str) and key.strip() in _atomic_numbers:
        return _atomic_numbers[key.strip()]
    if isinstance(key, (int, np.integer)) and 1 <= int(key) < N_Z:
        return int(key)
    raise ConfigError(f"{what}: {key!r} is not an element symbol or atomic number; use e.g. 'Ar' or 18")


def _pair_key(key, what: str) -> tuple[int, int]:
    if isinstance(key, str):
        parts = key.replace(",", "-").split("-")
    else:
        parts = list(key) if isinstance(key, (tuple, list)) else [key]
    if len(parts) != 2:
        raise ConfigError(f"{what}: pair {key!r} must name two elements, e.g. 'Ar-Kr'")
    a, b = (element_number(p, what) for p in parts)
    return a, b


def _value(v, what: str, positive: bool) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {v!r}") from None
    if not math.isfinite(x) or x < 0 or (positive and x == 0):
        raise ConfigError(f"{what} must be {'positive' if positive else 'non-negative'} and finite, got {v!r}")
    return x


class LennardJones(PotentialBase):
    """Lennard-Jones potential; see the module docstring for the formulas.

    Args:
        epsilon: well depth in eV: one number for every element, or ``{element: ε}``.
        sigma: zero-crossing distance in Å: one number, or ``{element: σ}``.
        cutoff: rc in Å; pairs at r ≥ rc contribute nothing.
        shift: subtract u(rc) from every pair inside rc, so the energy is continuous at rc.
        tail: add the analytic tail corrections of energy and pressure (fully periodic structures).
        pairs: explicit pair parameters overriding the mixing rule, e.g.
            ``{"Ar-Kr": {"epsilon": 0.0142, "sigma": 3.5}}`` (either key may be left out).
        dtype: "float32" or "float64".

    With numbers only (no mapping anywhere) the potential accepts any element (``elements`` is
    None); otherwise ``elements`` lists the atomic numbers it has parameters for, and other
    elements are a UserError at evaluation.
    """

    name = "lennard_jones"
    # MD packs the pairs within the cutoff for costly models (md.Simulation pair_capacity); for LJ a pair
    # costs about what packing it does (4000-atom argon: 15.5-15.8 steps/s unpacked, 13.3 packed)
    cheap_pairs = True

    def __init__(self, epsilon, sigma, cutoff: float, shift: bool = False, tail: bool = False,
                 pairs: Mapping | None = None, dtype: str = "float32"):
        super().__init__()
        self.cutoff = _value(cutoff, "lennard_jones cutoff (Å)", positive=True)
        self.shift, self.tail = bool(shift), bool(tail)
        self.dtype_name = str(dtype)
        if self.dtype_name not in ("float32", "float64"):
            raise ConfigError(f"lennard_jones dtype must be float32 or float64, got {dtype!r}")
        eps_e = self._per_element(epsilon, "epsilon", positive=False)
        sig_e = self._per_element(sigma, "sigma", positive=True)
        overrides: dict[tuple[int, int], dict] = {}
        for key, spec in (pairs or {}).items():
            a, b = _pair_key(key, "lennard_jones pairs")
            if not isinstance(spec, Mapping) or not spec or set(spec) - {"epsilon", "sigma"}:
                raise ConfigError(f"lennard_jones pairs[{key!r}] must be a mapping with epsilon and/or sigma, got {spec!r}")
            entry = {k: _value(v, f"lennard_jones pairs[{key!r}].{k}", positive=(k == "sigma")) for k, v in spec.items()}
            overrides[(a, b)] = overrides[(b, a)] = entry
        keyed = set()
        for table in (eps_e, sig_e):
            if isinstance(table, dict):
                keyed |= set(table)
        for a, b in overrides:
            keyed |= {a, b}
        self.elements = sorted(keyed) if keyed else None
        zs = self.elements or [0]
        n = len(zs)
        eps = np.zeros((n, n))
        sig = np.zeros((n, n))
        for p, a in enumerate(zs):
            for q, b in enumerate(zs):
                over = overrides.get((a, b), {})
                eps[p, q] = over["epsilon"] if "epsilon" in over else self._mix(eps_e, a, b, "epsilon", geometric=True)
                sig[p, q] = over["sigma"] if "sigma" in over else self._mix(sig_e, a, b, "sigma", geometric=False)
        self.n_species = n
        self.epsilon_table, self.sigma_table = eps, sig  # [n, n] host copies (eV, Å)
        x = sig / self.cutoff
        e_cut = 4.0 * eps * (x ** 12 - x ** 6)
        # tail constants: E_tail = Σ_ab N_a N_b C_ab / V, P_tail = Σ_ab N_a N_b D_ab / V²
        c_tail = 8.0 * math.pi / 3.0 * eps * sig ** 3 * (x ** 9 / 3.0 - x ** 3)
        d_tail = 16.0 * math.pi / 3.0 * eps * sig ** 3 * (2.0 * x ** 9 / 3.0 - x ** 3)
        self.tail_energy_matrix, self.tail_pressure_matrix = c_tail, d_tail
        table = np.zeros(N_Z, np.int64) if self.elements is None else np.full(N_Z, -1, np.int64)
        if self.elements is not None:
            table[self.elements] = np.arange(n)
        self.species_table = table  # host: Z -> species (-1 unknown)
        dt = self.dtype_name

        def tensor(a, dtype=dt):
            return ms.Tensor(np.ascontiguousarray(np.asarray(a, dtype)))

        self._species = tensor(np.maximum(table, 0), np.int32)
        self._n = tensor(n, np.int32)
        self._epsilon4 = tensor((4.0 * eps).reshape(-1))
        self._sigma2 = tensor((sig ** 2).reshape(-1))
        self._e_cut = tensor((e_cut if self.shift else 0.0 * e_cut).reshape(-1))
        self._rc2 = tensor(self.cutoff ** 2)
        self._c_tail, self._d_tail = tensor(c_tail), tensor(d_tail)
        self._eye_n = tensor(np.eye(n))
        self._eye3 = tensor(np.eye(3).reshape(1, 3, 3))
        self.hyperparameters = {"epsilon": epsilon, "sigma": sigma, "cutoff": self.cutoff, "shift": self.shift,
                                "tail": self.tail, "pairs": dict(pairs) if pairs else None, "dtype": self.dtype_name}

    # ------------------------------------------------------------------ parameters
    @staticmethod
    def _per_element(value, what: str, positive: bool):
        if isinstance(value, Mapping):
            out = {}
            for key, v in value.items():
                out[element_number(key, f"lennard_jones {what}")] = _value(v, f"lennard_jones {what}[{key!r}]", positive)
            return out
        if value is None:
            return {}
        return _value(value, f"lennard_jones {what}", positive)

    @staticmethod
    def _mix(table, a: int, b: int, what: str, geometric: bool) -> float:
        if isinstance(table, float):
            return table
        missing = [z for z in (a, b) if z not in table]
        if missing:
            sym = chemical_symbols
            raise ConfigError(
                f"lennard_jones has no {what} for {sym[missing[0]]} (needed for the {sym[a]}-{sym[b]} pair); "
                f"add {sym[missing[0]]} to {what} or give pairs['{sym[a]}-{sym[b]}'].{what}")
        return math.sqrt(table[a] * table[b]) if geometric else 0.5 * (table[a] + table[b])

    def check_elements(self, atomic_numbers: np.ndarray, atom_mask: np.ndarray) -> None:
        if self.elements is None:
            return
        z = np.asarray(atomic_numbers)
        idx = self.species_table[np.clip(z, 0, N_Z - 1)]
        bad = np.flatnonzero(np.asarray(atom_mask, bool) & (idx < 0))
        if bad.size:
            zb = int(z[bad[0]])
            name = chemical_symbols[zb] if 0 < zb < N_Z else str(zb)
            known = ", ".join(chemical_symbols[e] for e in self.elements)
            raise UserError(f"atom {bad[0]} is {name}, which this lennard_jones potential has no parameters for "
                            f"(elements: {known}); add {name} to epsilon and sigma")

    # ------------------------------------------------------------------ graph
    def construct(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                  structure_index):
        """(energy [S] eV, energies [A] eV, forces [A, 3] eV/Å, stress [S, 3, 3] eV/Å³); see PotentialBase."""
        n_atoms = positions.shape[0]
        n_structures = cell.shape[0]
        species = ops.gather(self._species, atomic_numbers, 0)
        pair_structures = pair_structure(structure_index, idx_i)
        r = pair_vectors(positions, cell, shifts, idx_i, idx_j, pair_structures)
        r2 = (r * r).sum(-1)
        pair_type = ops.gather(species, idx_i, 0) * self._n + ops.gather(species, idx_j, 0)
        active = ops.logical_and(pair_mask, r2 < self._rc2)
        zero = ops.zeros_like(r2)
        r2 = ops.where(active, r2, ops.ones_like(r2) * self._rc2)  # padding and far pairs: a safe distance
        s2 = ops.gather(self._sigma2, pair_type, 0) / r2
        s6 = s2 * s2 * s2  # not ** 3: MindSpore's CPU Pow is not bit-reproducible (see DEVELOPING.md)
        s12 = s6 * s6
        eps4 = ops.gather(self._epsilon4, pair_type, 0)
        u = ops.where(active, eps4 * (s12 - s6) - ops.gather(self._e_cut, pair_type, 0), zero)
        # g = ∂E/∂r_ij of this list entry: ½ u'(r) r̂ (each pair appears twice in a full list)
        c = ops.where(active, -3.0 * eps4 * (s12 + s12 - s6) / r2, zero)
        g = ops.expand_dims(c, 1) * r
        forces = ops.unsorted_segment_sum(g, idx_i, n_atoms) - ops.unsorted_segment_sum(g, idx_j, n_atoms)
        quarter = 0.25 * u
        atom_energy = (ops.unsorted_segment_sum(quarter, idx_i, n_atoms)
                       + ops.unsorted_segment_sum(quarter, idx_j, n_atoms))
        virial = ops.unsorted_segment_sum((ops.expand_dims(r, 2) * ops.expand_dims(g, 1)).reshape(-1, 9),
                                          pair_structures, n_structures).reshape(n_structures, 3, 3)
        volume, periodic = periodic_volume(cell, pbc)
        stress = virial * (periodic.astype(r.dtype) / volume).reshape(-1, 1, 1)
        if self.tail:
            real = atom_mask.astype(r.dtype)
            onehot = ops.gather(self._eye_n, species, 0) * ops.expand_dims(real, 1)  # [A, n]
            counts = ops.unsorted_segment_sum(onehot, structure_index, n_structures)  # [S, n]
            full = pbc.all(-1).astype(r.dtype)
            per_species = ops.matmul(counts, self._c_tail) * ops.expand_dims(full / volume, 1)  # [S, n]
            atom_energy = atom_energy + (ops.gather(per_species, structure_index, 0) * onehot).sum(-1)
            p_tail = (ops.matmul(counts, self._d_tail) * counts).sum(-1) * full / (volume * volume)
            stress = stress - p_tail.reshape(-1, 1, 1) * self._eye3
        energy = ops.unsorted_segment_sum(atom_energy, structure_index, n_structures)
        return energy, atom_energy, forces, stress
