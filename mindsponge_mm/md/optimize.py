"""Batched geometry optimisation: FIRE and L-BFGS over many structures at once.

>>> relaxed, info = optimize(list_of_atoms, potential, method="fire", fmax=0.05, relax_cell=False)

One potential evaluation per iteration serves every structure (one padded batch); each structure
has its own optimiser state and stops moving once its largest force is below ``fmax`` (eV/Å).
The loop runs on the host in numpy; the neighbor list is built with ``cutoff + skin`` and rebuilt
only when some atom (or the cell) moved enough that a pair could have entered the cutoff.

Cell relaxation (``relax_cell=True``, fully periodic structures) follows the idea of ASE's
``UnitCellFilter``: a structure's cell is ``cell0 · D`` and its positions are ``X · D`` (row
vectors) with a deformation matrix D. The optimiser moves X and ``c · D`` (c = ``cell_factor``,
default the number of atoms) down the enthalpy H = E + p V; the generalised forces are
``F · Dᵀ`` on X and ``-(V / c) D⁻ᵀ (σ + p I)`` on c·D (σ the stress, ASE sign, p the external
``pressure`` in eV/Å³). Convergence asks every row (atoms and the three cell rows) to be below fmax.

FIRE: Bitzek et al., PRL 97, 170201 (2006), with ASE's default parameters (unit masses).
L-BFGS: Nocedal's two-loop recursion with a fixed initial inverse Hessian 1/alpha (ASE's
defaults: memory 100, alpha 70 eV/Å², maxstep 0.2 Å), safeguarded for rough landscapes: pairs
with yᵀs ≤ 0 are skipped and the next step then goes the full trust length (concave region),
an enthalpy rise halves the trust length and clears that structure's memory, and a step that is
not downhill falls back to steepest descent.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from ..batch import pad_pairs, round_up
from ..data.collate import collate
from ..errors import ConfigError, UserError
from ..registry import Registry

# ``method`` -> optimiser class; the constructor's keywords are the method's ``options``
OPTIMIZERS = Registry("optimizer")


def _segment_sum(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """Per-structure sums of per-row values [R] -> [n]."""
    return np.bincount(index, weights=values, minlength=n)[:n]


class _System:
    """Generalised coordinates Q (rows: atoms X, then c·D rows of cell-relaxed structures) and evaluation."""

    def __init__(self, atoms_list, potential, relax_cell, pressure, cell_factor, skin, neighbor_backend):
        self.potential = potential
        self.atoms = [a.copy() for a in atoms_list]
        self.n_structures = s = len(self.atoms)
        self.counts = np.array([len(a) for a in self.atoms])
        self.n_atoms = int(self.counts.sum())
        self.atom_structure = np.repeat(np.arange(s), self.counts)
        self.numbers = np.concatenate([a.numbers for a in self.atoms])
        self.pbc = np.array([a.pbc for a in self.atoms], bool).reshape(s, 3)
        self.cell0 = np.array([a.cell[:] for a in self.atoms], np.float64).reshape(s, 3, 3)
        potential.check_elements(self.numbers, np.ones(self.n_atoms, bool))
        self.pressure = float(pressure)
        self.cell_structures = np.zeros(0, np.int64)
        if relax_cell:
            partial = np.flatnonzero(self.pbc.any(1) & ~self.pbc.all(1))
            if partial.size:
                raise UserError(f"structure {partial[0]} is periodic along some axes only (pbc {self.pbc[partial[0]].tolist()}); "
                                f"cell relaxation needs pbc on all three axes")
            self.cell_structures = np.flatnonzero(self.pbc.all(1))
            if any(abs(np.linalg.det(self.cell0[k])) < 1e-9 for k in self.cell_structures):
                raise UserError("a periodic structure has a zero-volume cell; give it a proper cell")
        factor = self.counts.astype(np.float64) if cell_factor is None else np.full(s, float(cell_factor))
        self.cell_factor = factor
        self.row_structure = np.concatenate([self.atom_structure, np.repeat(self.cell_structures, 3)]).astype(np.int64)
        eye = np.broadcast_to(np.eye(3), (len(self.cell_structures), 3, 3))
        self.q = np.concatenate([np.concatenate([a.positions for a in self.atoms]).astype(np.float64),
                                 (eye * factor[self.cell_structures, None, None]).reshape(-1, 3)])
        self.skin = float(skin)
        self.neighbor_backend = neighbor_backend
        self.batch = None
        self.pair_capacity = 0
        self.rebuilds = 0
        self.evaluations = 0

    def deformation(self, q) -> np.ndarray:
        """D [S, 3, 3] (identity for structures whose cell is fixed)."""
        d = np.tile(np.eye(3), (self.n_structures, 1, 1))
        if len(self.cell_structures):
            rows = q[self.n_atoms:].reshape(-1, 3, 3)
            d[self.cell_structures] = rows / self.cell_factor[self.cell_structures, None, None]
        return d

    def geometry(self, q):
        """(positions [N, 3] Å, cells [S, 3, 3] Å, D [S, 3, 3]) of the coordinates q."""
        d = self.deformation(q)
        positions = np.einsum("ak,akl->al", q[: self.n_atoms], d[self.atom_structure])
        return positions, self.cell0 @ d, d

    def _needs_rebuild(self, q) -> bool:
        if self.batch is None:
            return True
        d = self.deformation(q)
        strain = np.linalg.inv(self.ref_d) @ d - np.eye(3)
        eta = np.linalg.norm(strain, ord=2, axis=(1, 2)).max()
        moved = np.einsum("ak,akl->al", q[: self.n_atoms] - self.ref_x, d[self.atom_structure])
        disp = np.sqrt((moved ** 2).sum(1)).max() if self.n_atoms else 0.0
        reach = self.potential.cutoff + self.skin
        return reach * (1.0 - eta) - 2.0 * disp < self.potential.cutoff

    def evaluate(self, q):
        """(E [S] eV, forces [N, 3] eV/Å, stress [S, 3, 3] eV/Å³, generalised forces [rows, 3], H [S])."""
        positions, cells, d = self.geometry(q)
        if self._needs_rebuild(q):
            frames = [{"atomic_numbers": a.numbers, "positions": positions[self.atom_structure == k],
                       "cell": cells[k], "pbc": self.pbc[k]} for k, a in enumerate(self.atoms)]
            batch = collate(frames, self.potential.cutoff + self.skin, dtype=self.potential.dtype_name,
                            neighbor_backend=self.neighbor_backend)
            if batch.shape[2] > self.pair_capacity:
                self.pair_capacity = round_up(batch.shape[2] + batch.shape[2] // 8, 256)
            self.batch = pad_pairs(batch, self.pair_capacity)
            self.ref_x, self.ref_d = q[: self.n_atoms].copy(), d.copy()
            self.rebuilds += 1
        dtype = self.batch.positions.dtype
        pos = np.zeros_like(self.batch.positions)
        pos[: self.n_atoms] = positions
        cell_arr = self.batch.cell.copy()
        cell_arr[: self.n_structures] = cells
        out = self.potential.evaluate(self.batch.replace(positions=pos.astype(dtype), cell=cell_arr.astype(dtype)))
        self.evaluations += 1
        energy = np.asarray(out["energy"][: self.n_structures], np.float64)
        forces = np.asarray(out["forces"][: self.n_atoms], np.float64)
        stress = np.asarray(out["stress"][: self.n_structures], np.float64)
        volume = np.abs(np.linalg.det(cells))
        enthalpy = energy.copy()
        gen = np.empty_like(q)
        gen[: self.n_atoms] = np.einsum("al,akl->ak", forces, d[self.atom_structure])  # F · Dᵀ
        if len(self.cell_structures):
            k = self.cell_structures
            enthalpy[k] += self.pressure * volume[k]
            sig = stress[k] + self.pressure * np.eye(3)
            cell_force = -(volume[k] / self.cell_factor[k])[:, None, None] * np.linalg.inv(d[k]).transpose(0, 2, 1) @ sig
            gen[self.n_atoms:] = cell_force.reshape(-1, 3)
        return energy, forces, stress, gen, enthalpy

    def results(self, q, energy, forces, stress):
        positions, cells, _ = self.geometry(q)
        out = []
        for k, a in enumerate(self.atoms):
            b = a.copy()
            b.set_cell(cells[k], scale_atoms=False)
            b.positions = positions[self.atom_structure == k]
            res = {"energy": float(energy[k]), "free_energy": float(energy[k]),
                   "forces": forces[self.atom_structure == k].copy()}
            if self.pbc[k].any() and b.cell.rank == 3:
                res["stress"] = full_3x3_to_voigt_6_stress(stress[k])
            b.calc = SinglePointCalculator(b, **res)
            out.append(b)
        return out


@OPTIMIZERS.register("fire")
class _Fire:
    def __init__(self, n_structures, maxstep=0.2, dt=0.1, dtmax=1.0, nmin=5, finc=1.1, fdec=0.5, astart=0.1, fa=0.99):
        self.maxstep, self.dtmax, self.nmin, self.finc, self.fdec, self.astart, self.fa = maxstep, dtmax, nmin, finc, fdec, astart, fa
        self.dt = np.full(n_structures, float(dt))
        self.a = np.full(n_structures, float(astart))
        self.n_pos = np.zeros(n_structures, np.int64)
        self.v = None

    def step(self, q, g, h, rs, active):
        s = len(self.dt)
        if self.v is None:
            self.v = np.zeros_like(q)
        else:
            vf = _segment_sum((self.v * g).sum(1), rs, s)
            up = vf > 0
            vnorm = np.sqrt(_segment_sum((self.v ** 2).sum(1), rs, s))
            fnorm = np.sqrt(_segment_sum((g ** 2).sum(1), rs, s))
            mix = np.where(up, self.a, 0.0)
            scale = np.where(fnorm > 0, vnorm / np.where(fnorm > 0, fnorm, 1.0), 0.0)
            self.v = (1 - mix[rs, None]) * self.v + (mix * scale)[rs, None] * g
            self.v[~up[rs]] = 0.0
            grow = up & (self.n_pos > self.nmin)
            self.dt = np.where(grow, np.minimum(self.dt * self.finc, self.dtmax), np.where(up, self.dt, self.dt * self.fdec))
            self.a = np.where(grow, self.a * self.fa, np.where(up, self.a, self.astart))
            self.n_pos = np.where(up, self.n_pos + 1, 0)
        self.v += self.dt[rs, None] * g
        dr = self.dt[rs, None] * self.v
        norm = np.sqrt(_segment_sum((dr ** 2).sum(1), rs, s))
        dr *= np.where(norm > self.maxstep, self.maxstep / np.where(norm > 0, norm, 1.0), 1.0)[rs, None]
        frozen = ~active[rs]
        dr[frozen] = 0.0
        self.v[frozen] = 0.0
        return q + dr


@OPTIMIZERS.register("lbfgs")
class _LBFGS:
    """Two-loop L-BFGS with a per-structure trust length (at most ``maxstep``).

    Safeguards beyond ASE's LBFGS: a pair with yᵀs ≤ 0 (negative curvature) is not stored and the
    next step goes the full trust length; an enthalpy rise halves the trust length and clears that
    structure's memory; a step that is not downhill falls back to steepest descent.
    """

    def __init__(self, n_structures, maxstep=0.2, memory=100, alpha=70.0):
        self.maxstep, self.memory, self.alpha = maxstep, int(memory), float(alpha)
        self.history: list = []  # (s [rows, 3], y [rows, 3], rho [S])
        self.prev = None  # (q, g, h)
        self.trust = np.full(n_structures, float(maxstep))

    def step(self, q, g, h, rs, active):
        n = len(active)
        concave = np.zeros(n, bool)
        if self.prev is not None:
            q0, g0, h0 = self.prev
            s_vec, y_vec = q - q0, g0 - g
            ys = _segment_sum((s_vec * y_vec).sum(1), rs, n)
            ss = _segment_sum((s_vec ** 2).sum(1), rs, n)
            ok = ys > 1e-10 * ss
            concave = (ss > 0) & ~ok
            rho = np.where(ok, 1.0 / np.where(ok, ys, 1.0), 0.0)
            self.history.append((s_vec, y_vec, rho))
            self.history = self.history[-self.memory:]
            rose = h > h0 + 1e-9 * np.maximum(np.abs(h0), 1.0)
            self._forget(rose)
            self.trust = np.where(rose, np.maximum(0.5 * self.trust, 1e-3 * self.maxstep),
                                  np.minimum(1.5 * self.trust, self.maxstep))
            concave &= ~rose
        qv = -g
        coeffs = []
        for s_vec, y_vec, rho in reversed(self.history):
            a = rho * _segment_sum((s_vec * qv).sum(1), rs, n)
            qv = qv - a[rs, None] * y_vec
            coeffs.append(a)
        z = qv / self.alpha
        for (s_vec, y_vec, rho), a in zip(self.history, reversed(coeffs)):
            b = rho * _segment_sum((y_vec * z).sum(1), rs, n)
            z = z + (a - b)[rs, None] * s_vec
        dr = -z
        uphill = _segment_sum((dr * g).sum(1), rs, n) <= 0
        if uphill.any():
            self._forget(uphill)
            dr[uphill[rs]] = g[uphill[rs]] / self.alpha
        longest = np.zeros(n)
        np.maximum.at(longest, rs, np.sqrt((dr ** 2).sum(1)))
        safe = np.where(longest > 0, longest, 1.0)
        scale = np.where((longest > self.trust) | concave, self.trust / safe, 1.0)
        dr *= scale[rs, None]
        dr[~active[rs]] = 0.0
        self.prev = (q.copy(), g.copy(), h.copy())
        return q + dr

    def _forget(self, which):
        if which.any():
            self.history = [(s, y, np.where(which, 0.0, rho)) for s, y, rho in self.history]


def optimize(atoms_list: Atoms | Sequence[Atoms], potential, method: str = "fire", fmax: float = 0.05,
             steps: int = 500, relax_cell: bool = False, pressure: float = 0.0, cell_factor: float | None = None,
             maxstep: float = 0.2, skin: float = 1.0, neighbor_backend: str = "auto",
             callback: Callable | None = None, **options) -> tuple[list[Atoms], dict]:
    """Relax many structures together; returns (relaxed copies, info).

    Args:
        atoms_list: ASE Atoms (one or a list; molecules and crystals can be mixed).
        potential: any potential of the package contract (``evaluate(batch)``, ``cutoff``).
        method: "fire" or "lbfgs".
        fmax: convergence threshold on the largest (generalised) force of a structure, eV/Å.
        steps: the most iterations (one potential evaluation each).
        relax_cell: also relax the cells of fully periodic structures (see the module docstring).
        pressure: external pressure in eV/Å³ for cell relaxation (1 GPa = ``ase.units.GPa``).
        cell_factor: scale of the cell coordinates (default: atoms per structure).
        maxstep: largest step in Å (FIRE: of a structure's whole step; L-BFGS: of any row).
        skin: neighbor-list skin in Å.
        callback: ``callback(iteration, energy [S], fmax [S], converged [S])`` after each evaluation.
        options: method parameters (FIRE: dt, dtmax, nmin, finc, fdec, astart, fa; L-BFGS: memory, alpha).

    The relaxed copies carry a SinglePointCalculator with energy, forces and (periodic) stress.
    ``info``: ``converged`` [S] bool, ``steps`` [S] (iteration at which each converged, or the
    last), ``energy`` [S] eV, ``enthalpy`` [S] eV, ``fmax`` [S] eV/Å, ``evaluations``,
    ``neighbor_rebuilds``.
    """
    if isinstance(atoms_list, Atoms):
        atoms_list = [atoms_list]
    atoms_list = list(atoms_list)
    OPTIMIZERS.validate(method, options, given=("n_structures", "maxstep"), types=False)  # before any work
    if not float(fmax) > 0:
        raise ConfigError(f"fmax must be a positive force in eV/Å, got {fmax}")
    if int(steps) < 0:
        raise ConfigError(f"steps must be ≥ 0, got {steps}")
    if not float(maxstep) > 0 or not float(skin) >= 0:
        raise ConfigError(f"maxstep must be > 0 and skin ≥ 0 (Å), got {maxstep} and {skin}")
    if not atoms_list:
        return [], {"converged": np.zeros(0, bool), "steps": np.zeros(0, int), "energy": np.zeros(0),
                    "enthalpy": np.zeros(0), "fmax": np.zeros(0), "evaluations": 0, "neighbor_rebuilds": 0}
    system = _System(atoms_list, potential, relax_cell, pressure, cell_factor, skin, neighbor_backend)
    n = system.n_structures
    rs = system.row_structure
    opt = OPTIMIZERS[method](n, maxstep=maxstep, **options)
    q = system.q
    converged = np.zeros(n, bool)
    done_at = np.full(n, int(steps))
    for it in range(int(steps) + 1):
        energy, forces, stress, gen, enthalpy = system.evaluate(q)
        if not (np.isfinite(gen).all() and np.isfinite(energy).all()):
            bad = int(rs[np.flatnonzero(~np.isfinite(gen).all(1))[0]]) if not np.isfinite(gen).all() else int(np.flatnonzero(~np.isfinite(energy))[0])
            raise UserError(f"structure {bad}: non-finite energy or forces during optimisation (overlapping atoms?); check the structure")
        row_norm = np.sqrt((gen ** 2).sum(1))
        fmax_s = np.zeros(n)
        np.maximum.at(fmax_s, rs, row_norm)
        newly = ~converged & (fmax_s < fmax)
        done_at[newly] = it
        converged |= newly
        if callback is not None:
            callback(it, energy, fmax_s, converged.copy())
        if converged.all() or it == int(steps):
            break
        q = opt.step(q, gen, enthalpy, rs, ~converged)
    relaxed = system.results(q, energy, forces, stress)
    info = {"converged": converged, "steps": done_at, "energy": energy, "enthalpy": enthalpy, "fmax": fmax_s,
            "evaluations": system.evaluations, "neighbor_rebuilds": system.rebuilds}
    return relaxed, info
