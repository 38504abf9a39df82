"""FrameTable: every frame of a dataset as concatenated numpy columns.

All file backends read into and write from a :class:`FrameTable`. Per-atom arrays
are concatenated over frames (``[T, ...]`` with T the total number of atoms) and
sliced with ``offsets``; per-frame arrays are ``[F, ...]``. ``units`` names the unit
of every column as stored; :meth:`FrameTable.to_internal` converts to eV, Å, eV/Å and
eV/Å³ (see :mod:`mindsponge_mm.units`).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols
from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress

from ..errors import DataError, UserError
from ..units import PROPERTY_UNITS, to_internal

#: columns every frame has; everything else is a property
STRUCTURE_KEYS = ("atomic_numbers", "positions", "cell", "pbc")
#: calculator results that are per atom when their first dimension equals the atom count
_PER_ATOM_RESULTS = {"forces", "energies", "charges", "magmoms", "stresses"}
#: ASE arrays that describe the structure rather than a property
_SKIP_ARRAYS = {"numbers", "positions"}
MAX_Z = len(chemical_symbols) - 1


@dataclasses.dataclass
class FrameTable:
    """Columns of a dataset. Shapes: F frames, T atoms in total."""

    atomic_numbers: np.ndarray  # [T] int32
    positions: np.ndarray  # [T, 3] float64, unit units["positions"]
    n_atoms: np.ndarray  # [F] int64
    cell: np.ndarray  # [F, 3, 3] float64, rows are lattice vectors, unit units["positions"]
    pbc: np.ndarray  # [F, 3] bool
    properties: dict[str, np.ndarray]  # name -> [F, ...] or [T, ...]
    per_atom: dict[str, bool]  # name -> whether the property is per atom
    units: dict[str, str]  # "positions" and every property name -> unit string as stored
    metadata: dict = dataclasses.field(default_factory=dict)

    @property
    def offsets(self) -> np.ndarray:
        """[F + 1] start of each frame in the per-atom columns."""
        return np.concatenate([[0], np.cumsum(self.n_atoms)]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.n_atoms)

    # ------------------------------------------------------------------ checks
    def validate(self, source: str) -> None:
        """Raise :class:`DataError` naming ``source`` and the frame if the table is inconsistent."""
        n_frames, n_total = len(self.n_atoms), int(np.sum(self.n_atoms))
        if n_frames == 0:
            raise DataError(f"{source}: the dataset has no frames; add at least one structure")
        empty = np.flatnonzero(self.n_atoms <= 0)
        if empty.size:
            raise DataError(f"{source}: frame {empty[0]} has zero atoms; remove empty frames from the file")
        expected = {
            "atomic_numbers": (n_total,),
            "positions": (n_total, 3),
            "cell": (n_frames, 3, 3),
            "pbc": (n_frames, 3),
        }
        for key, shape in expected.items():
            if getattr(self, key).shape != shape:
                raise DataError(f"{source}: '{key}' has shape {getattr(self, key).shape}, expected {shape}")
        bad_z = np.flatnonzero((self.atomic_numbers < 1) | (self.atomic_numbers > MAX_Z))
        if bad_z.size:
            frame = self.frame_of_atom(bad_z[0])
            raise DataError(
                f"{source}: frame {frame} has unknown element with atomic number "
                f"{self.atomic_numbers[bad_z[0]]}; atomic numbers must be 1..{MAX_Z}"
            )
        bad_r = np.flatnonzero(~np.isfinite(self.positions).all(axis=1))
        if bad_r.size:
            frame = self.frame_of_atom(bad_r[0])
            atom = bad_r[0] - self.offsets[frame]
            raise DataError(
                f"{source}: frame {frame} atom {atom} has a non-finite position "
                f"{self.positions[bad_r[0]].tolist()}; fix or remove that frame"
            )
        if not np.isfinite(self.cell).all():
            frame = int(np.flatnonzero(~np.isfinite(self.cell).reshape(n_frames, -1).all(axis=1))[0])
            raise DataError(f"{source}: frame {frame} has a non-finite cell; fix or remove that frame")
        for name, values in self.properties.items():
            rows = n_total if self.per_atom[name] else n_frames
            what = "atoms" if self.per_atom[name] else "frames"
            if values.shape[:1] != (rows,):
                raise DataError(
                    f"{source}: property '{name}' has {values.shape[0]} rows but the file has {rows} {what}; "
                    f"the file is inconsistent, regenerate it"
                )
            if name == "forces" and values.shape[1:] != (3,):
                raise DataError(f"{source}: 'forces' must have shape [n_atoms, 3], got per-atom shape {values.shape[1:]}")
            if name == "stress" and values.shape[1:] != (3, 3):
                raise DataError(f"{source}: 'stress' must have shape [3, 3] per frame, got {values.shape[1:]}")

    def frame_of_atom(self, atom: int) -> int:
        """Index of the frame that holds global atom index ``atom``."""
        return int(np.searchsorted(self.offsets, atom, side="right") - 1)

    # ------------------------------------------------------------------ units
    def to_internal(self, source: str) -> "FrameTable":
        """Copy of the table in internal units (eV, Å, ...). Unit errors name ``source``."""
        factors, units = {}, {}
        try:
            for name in ["positions", *self.properties]:
                factors[name], units[name] = to_internal(self.units.get(name, PROPERTY_UNITS.get(name, "")), name)
        except UserError as err:
            raise type(err)(f"{source}: {err}") from None

        def scaled(values, factor):
            return values if factor == 1.0 else values * factor

        return dataclasses.replace(
            self,
            positions=scaled(self.positions, factors["positions"]),
            cell=scaled(self.cell, factors["positions"]),
            properties={k: scaled(v, factors[k]) for k, v in self.properties.items()},
            units=units,
        )

    # ------------------------------------------------------------------ frames
    def frame(self, index: int) -> dict[str, np.ndarray]:
        """Frame ``index`` as a dict of numpy arrays (views where possible)."""
        start, stop = self.offsets[index], self.offsets[index + 1]
        out = {
            "atomic_numbers": self.atomic_numbers[start:stop],
            "positions": self.positions[start:stop],
            "cell": self.cell[index],
            "pbc": self.pbc[index],
        }
        for name, values in self.properties.items():
            out[name] = values[start:stop] if self.per_atom[name] else values[index]
        return out

    def to_atoms(self, index: int) -> Atoms:
        """Frame ``index`` as ``ase.Atoms``; energy, forces, stress and charges go to a SinglePointCalculator."""
        frame = self.frame(index)
        atoms = Atoms(
            numbers=frame["atomic_numbers"], positions=frame["positions"], cell=frame["cell"], pbc=frame["pbc"]
        )
        results = {}
        for name in self.properties:
            value = np.array(frame[name])
            if name == "stress":
                results[name] = full_3x3_to_voigt_6_stress(value)
            elif name in ("energy", "free_energy") or name in _PER_ATOM_RESULTS:
                results[name] = value.item() if value.ndim == 0 else value
            elif self.per_atom[name]:
                atoms.arrays[name] = value
            else:
                atoms.info[name] = value.item() if value.ndim == 0 else value
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms


def _frame_properties(atoms: Atoms) -> dict[str, tuple[np.ndarray, bool]]:
    """Numeric properties of one ``Atoms``: name -> (value, per_atom)."""
    found: dict[str, tuple[np.ndarray, bool]] = {}
    if atoms.calc is not None:
        for name, value in getattr(atoms.calc, "results", {}).items():
            value = np.asarray(value)
            if value.dtype.kind not in "fiub":
                continue
            if name == "stress":
                value = voigt_6_to_full_3x3_stress(value) if value.shape == (6,) else value.reshape(3, 3)
                found[name] = (value, False)
            else:
                found[name] = (value, name in _PER_ATOM_RESULTS)
    for name, value in atoms.info.items():
        value = np.asarray(value)
        if value.dtype.kind in "fiub" and name not in found:
            if name == "stress":
                value = voigt_6_to_full_3x3_stress(value) if value.shape == (6,) else value.reshape(3, 3)
            found[name] = (value, False)
    for name, value in atoms.arrays.items():
        if name not in _SKIP_ARRAYS and value.dtype.kind in "fiub" and name not in found:
            found[name] = (np.asarray(value), True)
    return found


def table_from_atoms(
    frames: Sequence[Atoms], units: dict[str, str] | None = None, source: str = "atoms", metadata=None
) -> FrameTable:
    """Build a table from ASE ``Atoms`` (properties from their calculator, ``info`` and ``arrays``).

    Every frame must carry the same properties. ``units`` declares the units of the
    values held by the Atoms objects (default: eV, Å, ...); they are stored unchanged.
    """
    frames = list(frames)
    if not frames:
        raise DataError(f"{source}: no structures given; pass at least one ase.Atoms")
    empty = [k for k, a in enumerate(frames) if len(a) == 0]
    if empty:
        raise DataError(f"{source}: frame {empty[0]} has zero atoms; remove empty frames")
    per_frame = [_frame_properties(a) for a in frames]
    names = list(per_frame[0])
    for k, props in enumerate(per_frame):
        if set(props) != set(names):
            missing = sorted(set(names) ^ set(props))
            raise DataError(
                f"{source}: frame {k} differs from frame 0 in properties {missing}; "
                f"every frame must carry the same properties"
            )
    n_atoms = np.array([len(a) for a in frames], dtype=np.int64)
    properties, per_atom = {}, {}
    for name in names:
        per_atom[name] = per_frame[0][name][1]
        values = [p[name][0] for p in per_frame]
        for k, (value, n) in enumerate(zip(values, n_atoms)):
            if per_atom[name] and value.shape[:1] != (n,):
                raise DataError(
                    f"{source}: frame {k} property '{name}' has shape {value.shape} which does not match {n} atoms"
                )
            if value.shape[per_atom[name]:] != values[0].shape[per_atom[name]:]:
                raise DataError(f"{source}: frame {k} property '{name}' has shape {value.shape}, frame 0 has {values[0].shape}")
        properties[name] = np.concatenate(values) if per_atom[name] else np.stack(values)
    units = dict(units or {})
    unknown = set(units) - {"positions", *names}
    if unknown:
        raise DataError(f"{source}: units given for {sorted(unknown)}, which no frame has; available: {['positions', *names]}")
    table = FrameTable(
        atomic_numbers=np.concatenate([a.numbers for a in frames]).astype(np.int32),
        positions=np.concatenate([a.positions for a in frames]).astype(np.float64),
        n_atoms=n_atoms,
        cell=np.stack([np.asarray(a.cell[:], dtype=np.float64) for a in frames]),
        pbc=np.stack([a.pbc for a in frames]).astype(bool),
        properties=properties,
        per_atom=per_atom,
        units={name: units.get(name, PROPERTY_UNITS.get(name, "")) for name in ["positions", *names]},
        metadata=dict(metadata or {}),
    )
    table.validate(source)
    return table
