"""MDState: the host-side state of one or more independent systems simulated as one batch.

Units are ASE's: positions and cell Å, momenta amu·Å/(ASE time unit) (velocity = p/m in Å per
ASE time unit; ``ase.units.fs`` ASE time units make one fs), masses amu, energies eV, time in fs.
Atoms of all systems are concatenated: ``structure_index`` [A] tells which system each atom
belongs to (0..S-1, non-decreasing).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from ase import Atoms, units

from ..errors import UserError

KB = units.kB  # eV/K
FS = units.fs  # ASE time units per fs


@dataclasses.dataclass
class MDState:
    """Positions [A, 3] Å, momenta [A, 3] amu·Å/t_ASE, masses [A] amu, atomic_numbers [A] int32,
    structure_index [A] int32, cell [S, 3, 3] Å, pbc [S, 3] bool, step (int), time (fs)."""

    positions: np.ndarray
    momenta: np.ndarray
    masses: np.ndarray
    atomic_numbers: np.ndarray
    structure_index: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    step: int = 0
    time: float = 0.0

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_atoms(cls, atoms: Atoms | Sequence[Atoms], dtype: str = "float32") -> "MDState":
        """State of one Atoms or a list of them (momenta taken from the Atoms; usually zero)."""
        frames = [atoms] if isinstance(atoms, Atoms) else list(atoms)
        if not frames:
            raise UserError("no structures given to the MD state; pass at least one ase.Atoms")
        for k, a in enumerate(frames):
            if len(a) == 0:
                raise UserError(f"structure {k} has no atoms; give a structure with atoms")
        dt = np.dtype(dtype)
        return cls(
            positions=np.concatenate([a.positions for a in frames]).astype(dt),
            momenta=np.concatenate([a.get_momenta() for a in frames]).astype(dt),
            masses=np.concatenate([a.get_masses() for a in frames]).astype(dt),
            atomic_numbers=np.concatenate([a.numbers for a in frames]).astype(np.int32),
            structure_index=np.repeat(np.arange(len(frames), dtype=np.int32), [len(a) for a in frames]),
            cell=np.stack([a.cell[:] for a in frames]).astype(dt),
            pbc=np.stack([np.asarray(a.pbc, bool) for a in frames]),
        )

    def copy(self) -> "MDState":
        return dataclasses.replace(self, **{f.name: np.array(getattr(self, f.name)) for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), np.ndarray)})

    # ------------------------------------------------------------------ sizes
    @property
    def n_structures(self) -> int:
        return len(self.cell)

    @property
    def n_atoms(self) -> np.ndarray:
        """[S] atoms per structure."""
        return np.bincount(self.structure_index, minlength=self.n_structures)

    def degrees_of_freedom(self, remove_com: bool) -> np.ndarray:
        """[S] kinetic degrees of freedom: 3N, or 3N - 3 when the centre-of-mass motion is removed."""
        n = self.n_atoms
        return np.maximum(3 * n - (3 if remove_com else 0), 1)

    # ------------------------------------------------------------------ observables (host)
    def kinetic_energy(self) -> np.ndarray:
        """[S] kinetic energy, eV."""
        per_atom = 0.5 * (self.momenta.astype(np.float64) ** 2).sum(-1) / self.masses
        return np.bincount(self.structure_index, per_atom, minlength=self.n_structures)

    def temperature(self, remove_com: bool = True) -> np.ndarray:
        """[S] instantaneous temperature, K (2 K / (N_f k_B))."""
        return 2.0 * self.kinetic_energy() / (self.degrees_of_freedom(remove_com) * KB)

    def volume(self) -> np.ndarray:
        """[S] cell volume, Å³ (0 for non-periodic structures)."""
        v = np.abs(np.linalg.det(self.cell.astype(np.float64)))
        return np.where(self.pbc.any(-1), v, 0.0)

    @property
    def velocities(self) -> np.ndarray:
        """[A, 3] Å/fs."""
        return self.momenta / self.masses[:, None] * FS

    # ------------------------------------------------------------------ velocities
    def maxwell_boltzmann(self, temperature: float, seed: int = 0, remove_com: bool = True,
                          exact: bool = True) -> "MDState":
        """Draw momenta from the Maxwell–Boltzmann distribution at ``temperature`` (K), in place.

        With ``remove_com`` the centre-of-mass momentum of each structure is removed; with ``exact``
        the momenta are then rescaled so that each structure's temperature is exactly ``temperature``.
        """
        check_temperature(temperature, allow_zero=True)
        rng = np.random.default_rng([int(seed), 7919])
        m = self.masses.astype(np.float64)
        p = rng.standard_normal(self.positions.shape) * np.sqrt(m * KB * temperature)[:, None]
        if remove_com:
            p = remove_com_momentum(p, m, self.structure_index, self.n_structures)
        if exact and temperature > 0:
            kin = np.bincount(self.structure_index, 0.5 * (p**2).sum(-1) / m, minlength=self.n_structures)
            target = 0.5 * self.degrees_of_freedom(remove_com) * KB * temperature
            p *= np.sqrt(target / np.maximum(kin, 1e-300))[self.structure_index, None]
        self.momenta = p.astype(self.positions.dtype)
        return self

    def remove_com(self) -> "MDState":
        """Remove each structure's centre-of-mass momentum, in place."""
        self.momenta = remove_com_momentum(self.momenta, self.masses, self.structure_index,
                                           self.n_structures).astype(self.momenta.dtype)
        return self

    def wrap(self) -> "MDState":
        """Wrap positions into the cell along periodic directions, in place."""
        for s in range(self.n_structures):
            sel = self.structure_index == s
            if not self.pbc[s].any():
                continue
            cell = self.cell[s].astype(np.float64)
            frac = np.linalg.solve(cell.T, self.positions[sel].astype(np.float64).T).T
            shift = np.where(self.pbc[s], np.floor(frac), 0.0)
            self.positions[sel] = (self.positions[sel] - (shift @ cell).astype(self.positions.dtype))
        return self

    # ------------------------------------------------------------------ back to ASE
    def to_atoms(self) -> list[Atoms]:
        """One ``ase.Atoms`` per structure, with positions, momenta, cell and pbc."""
        out = []
        for s in range(self.n_structures):
            sel = self.structure_index == s
            a = Atoms(numbers=self.atomic_numbers[sel], positions=self.positions[sel].astype(np.float64),
                      cell=self.cell[s].astype(np.float64), pbc=self.pbc[s], masses=self.masses[sel].astype(np.float64))
            a.set_momenta(self.momenta[sel].astype(np.float64))
            out.append(a)
        return out


def remove_com_momentum(p, masses, structure_index, n_structures):
    """Momenta with each structure's total momentum removed (mass-weighted), numpy."""
    p = np.asarray(p, np.float64)
    m = np.asarray(masses, np.float64)
    total = np.stack([np.bincount(structure_index, p[:, k], minlength=n_structures) for k in range(3)], -1)
    mass = np.bincount(structure_index, m, minlength=n_structures)
    return p - m[:, None] * (total / mass[:, None])[structure_index]


MAX_TEMPERATURE = 1.0e5  # K
MAX_TIMESTEP = 10.0  # fs


def check_temperature(temperature, allow_zero: bool = False, name: str = "temperature") -> float:
    """``temperature`` in K if it is in range, else a one-line UserError."""
    t = float(temperature)
    low_ok = t >= 0 if allow_zero else t > 0
    if not (np.isfinite(t) and low_ok and t <= MAX_TEMPERATURE):
        low = ">= 0" if allow_zero else "> 0"
        raise UserError(f"{name} = {temperature} K is out of range; it must be {low} and <= {MAX_TEMPERATURE:g} K")
    return t


def check_timestep(dt) -> float:
    """Time step ``dt`` in fs if it is in range (0, 10] fs, else a one-line UserError."""
    d = float(dt)
    if not (np.isfinite(d) and 0 < d <= MAX_TIMESTEP):
        raise UserError(f"time step dt = {dt} fs is out of range; it must be > 0 and <= {MAX_TIMESTEP:g} fs "
                        f"(typically 0.5-1 fs with hydrogen, 1-5 fs for heavy atoms)")
    return d
