"""AtomsDataset: random access to the frames of a dataset file, in internal units.

>>> ds = AtomsDataset.open("bundled:ethanol")      # or a .h5, .db, .extxyz, ... path
>>> frame = ds[0]        # dict: atomic_numbers [n], positions [n,3] Å, cell [3,3] Å, pbc [3], energy eV, forces [n,3] eV/Å
>>> ds.to_atoms(0)       # ase.Atoms with a SinglePointCalculator
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from ..errors import DataError
from . import formats
from .table import FrameTable, table_from_atoms

BUNDLED_DIR = Path(__file__).parent / "bundled"
BUNDLED_PREFIX = "bundled:"


class PropertyInfo(NamedTuple):
    """What a dataset knows about one property."""

    per_atom: bool  # True: shape [n_atoms, *shape] per frame; False: shape per frame
    shape: tuple  # trailing shape, e.g. () for energy, (3,) for forces, (3, 3) for stress
    unit: str  # internal unit, e.g. "eV/Ang"


def bundled_datasets() -> list[str]:
    """Names of the datasets shipped with the package (usable as ``bundled:NAME``)."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.h5"))


def resolve_path(path: str | os.PathLike) -> Path:
    """Turn ``bundled:NAME`` into the installed file; check that the file exists."""
    text = str(path)
    if text.startswith(BUNDLED_PREFIX):
        name = text[len(BUNDLED_PREFIX):]
        resolved = BUNDLED_DIR / f"{name}.h5"
        if not resolved.exists():
            raise DataError(f"no bundled dataset named {name!r}; available: {', '.join(bundled_datasets()) or 'none'}")
        return resolved
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise DataError(f"{resolved}: file not found; check the path (bundled sets are 'bundled:ethanol', 'bundled:copper')")
    if resolved.is_dir():
        raise DataError(f"{resolved}: is a directory; give a dataset file (.h5, .db, .extxyz, ...)")
    return resolved


class AtomsDataset:
    """Frames of atomistic structures with their properties, in eV, Å, eV/Å and eV/Å³.

    Open a file with :meth:`open`, or write ASE ``Atoms`` with :meth:`from_atoms`.
    ``ds[i]`` is a dict of numpy arrays: ``atomic_numbers`` [n] int32, ``positions`` [n, 3],
    ``cell`` [3, 3], ``pbc`` [3] bool, then every property (per frame or [n, ...] per atom).
    """

    def __init__(self, table: FrameTable, path: Path | None = None, source: str | None = None):
        self._table = table
        self.path = path
        self.source = source or (str(path) if path else "in-memory dataset")
        self._offsets = table.offsets

    # ------------------------------------------------------------------ construction
    @classmethod
    def open(cls, path: str | os.PathLike, units: dict[str, str] | None = None) -> "AtomsDataset":
        """Open a dataset file: ``.h5`` (our layout), ``.db`` (ASE database) or any ``ase.io`` format.

        ``units`` overrides or supplies the units of the file's columns (keys ``positions``
        and property names), e.g. ``{"energy": "kcal/mol"}`` for an extxyz file in kcal/mol.
        Our HDF5 files always declare their own units.
        """
        resolved = resolve_path(path)
        backend = formats.backend_for(resolved)
        if backend == "hdf5":
            table = formats.read_hdf5(resolved)
            if units:
                unknown = set(units) - set(table.units)
                if unknown:
                    raise DataError(f"{resolved}: units given for {sorted(unknown)}, which the file lacks")
                table.units.update(units)
        elif backend == "asedb":
            table = formats.read_asedb(resolved, units)
        else:
            table = formats.read_aseio(resolved, units)
        table.validate(str(resolved))
        return cls(table.to_internal(str(resolved)), path=resolved)

    @classmethod
    def from_atoms(
        cls,
        frames: Sequence[Atoms],
        path: str | os.PathLike | None = None,
        units: dict[str, str] | None = None,
        metadata: dict | None = None,
    ) -> "AtomsDataset":
        """Dataset from ASE ``Atoms``; written to ``path`` (``.h5`` or ``.db``) when given.

        ``units`` declares the units of the values in the Atoms (default eV, Å, eV/Å, eV/Å³);
        they are stored as given and converted when the file is opened.
        """
        table = table_from_atoms(frames, units, source=str(path or "atoms"), metadata=metadata)
        if path is None:
            return cls(table.to_internal("atoms"))
        _write(table, Path(path))
        return cls.open(path)

    def save(self, path: str | os.PathLike) -> "AtomsDataset":
        """Write this dataset to ``path`` (``.h5`` or ``.db``) in internal units; return the new file opened."""
        _write(self._table, Path(path))
        return AtomsDataset.open(path)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        index = self._check_index(index)
        return {k: np.array(v) for k, v in self._table.frame(index).items()}

    def frames(self, indices: Iterable[int]) -> list[dict[str, np.ndarray]]:
        """Several frames at once (views into the dataset; do not modify them in place)."""
        return [self._table.frame(self._check_index(i)) for i in indices]

    def to_atoms(self, index: int) -> Atoms:
        """Frame ``index`` as ``ase.Atoms`` with energy/forces/stress in a SinglePointCalculator."""
        return self._table.to_atoms(self._check_index(index))

    def _check_index(self, index) -> int:
        n = len(self)
        index = int(index)
        if not -n <= index < n:
            raise IndexError(f"frame {index} out of range for a dataset of {n} frames")
        return index % n

    @property
    def properties(self) -> dict[str, PropertyInfo]:
        """Property name -> :class:`PropertyInfo` (per_atom, trailing shape, internal unit)."""
        t = self._table
        return {
            name: PropertyInfo(t.per_atom[name], tuple(values.shape[1:]), t.units[name])
            for name, values in t.properties.items()
        }

    @property
    def units(self) -> dict[str, str]:
        """Unit of every column after loading: ``positions``/``cell`` in Å, then each property."""
        return {"positions": "Ang", "cell": "Ang", **{k: v for k, v in self._table.units.items() if k != "positions"}}

    @property
    def n_atoms(self) -> np.ndarray:
        """[F] number of atoms of each frame."""
        return self._table.n_atoms

    @property
    def atomic_numbers(self) -> np.ndarray:
        """[T] atomic numbers of all frames concatenated (frame k is ``offsets[k]:offsets[k+1]``)."""
        return self._table.atomic_numbers

    @property
    def offsets(self) -> np.ndarray:
        """[F + 1] start of each frame in the concatenated per-atom arrays."""
        return self._offsets

    @property
    def elements(self) -> list[int]:
        """Sorted atomic numbers present in the dataset."""
        return sorted(int(z) for z in np.unique(self._table.atomic_numbers))

    @property
    def metadata(self) -> dict:
        return dict(self._table.metadata)

    def column(self, name: str) -> np.ndarray:
        """All values of a property: [F, ...] per frame or [T, ...] per atom, in internal units."""
        self.require([name])
        return self._table.properties[name]

    def require(self, names: Iterable[str], purpose: str = "this job") -> None:
        """Raise :class:`DataError` if any of ``names`` is not a property of the dataset."""
        missing = [n for n in names if n not in self._table.properties]
        if missing:
            have = ", ".join(self._table.properties) or "none"
            raise DataError(
                f"{self.source}: has no property {missing[0]!r}, which {purpose} needs "
                f"(available: {have}); use a dataset that has it or stop asking for it"
            )

    def fingerprint(self) -> str:
        """A short hash of the dataset's content (atoms, positions and properties)."""
        h = hashlib.sha1()
        t = self._table
        for arr in (t.n_atoms, t.atomic_numbers, t.positions, t.cell, *(t.properties[k] for k in sorted(t.properties))):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ description
    def summary(self) -> str:
        """Multi-line human-readable description: counts, elements, properties with ranges, units."""
        t = self._table
        lines = [f"dataset   {self.source}"]
        lines.append(
            f"frames    {len(self)}   atoms {int(t.n_atoms.sum())} "
            f"(per frame {int(t.n_atoms.min())}..{int(t.n_atoms.max())})"
        )
        counts = np.bincount(t.atomic_numbers)
        lines.append("elements  " + ", ".join(f"{chemical_symbols[z]} ({counts[z]})" for z in self.elements))
        periodic = t.pbc.any(axis=1)
        lines.append(f"periodic  {int(periodic.sum())} of {len(self)} frames")
        if periodic.any():
            vol = np.abs(np.linalg.det(t.cell[periodic]))
            lines.append(f"volume    {vol.min():.3f} .. {vol.max():.3f} Ang^3")
        lines.append(f"{'property':<12} {'per':<6} {'shape':<10} {'unit':<10} {'min':>12} {'mean':>12} {'max':>12}")
        for name, info in self.properties.items():
            v = t.properties[name]
            shape = ("n",) + info.shape if info.per_atom else info.shape
            shape_text = "[" + ", ".join(map(str, shape)) + "]"
            lines.append(
                f"{name:<12} {'atom' if info.per_atom else 'frame':<6} {shape_text:<10} {info.unit:<10} "
                f"{v.min():>12.5g} {v.mean():>12.5g} {v.max():>12.5g}"
            )
        if t.metadata.get("description"):
            lines.append("made by   " + t.metadata["description"])
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"AtomsDataset({self.source!r}, frames={len(self)}, properties={list(self._table.properties)})"


def _write(table: FrameTable, path: Path) -> None:
    backend = formats.backend_for(path)
    if backend == "hdf5":
        formats.write_hdf5(table, path)
    elif backend == "asedb":
        formats.write_asedb(table, path)
    else:
        raise DataError(f"{path}: can write only .h5/.hdf5 or .db datasets; choose one of those suffixes")
