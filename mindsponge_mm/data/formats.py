"""File backends: our HDF5 layout, ASE databases, and anything ``ase.io.read`` understands.

Each backend reads a file into a :class:`FrameTable` in the units the file declares,
and (HDF5, ASE db) writes a table atomically: to a temporary file, then renamed.

HDF5 layout (``format = "mindsponge_mm/atoms"``, ``format_version = 1``)::

    /n_atoms          [F]        int64
    /atomic_numbers   [T]        int32
    /positions        [T, 3]     float64   attrs: unit
    /cell             [F, 3, 3]  float64   (same unit as positions; rows are lattice vectors)
    /pbc              [F, 3]     bool
    /properties/NAME  [F, ...] or [T, ...] attrs: unit, per_atom
    root attrs: format, format_version, metadata (JSON)

Datasets are chunked and gzip-compressed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import DataError
from ..io_utils import atomic_path
from .table import FrameTable, table_from_atoms

FORMAT_NAME = "mindsponge_mm/atoms"
FORMAT_VERSION = 1
HDF5_SUFFIXES = (".h5", ".hdf5")
ASEDB_SUFFIXES = (".db",)


def backend_for(path: str | os.PathLike) -> str:
    """``"hdf5"``, ``"asedb"`` or ``"aseio"`` from the file name."""
    suffix = Path(path).suffix.lower()
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if suffix in ASEDB_SUFFIXES:
        return "asedb"
    return "aseio"


# ---------------------------------------------------------------------- HDF5
def read_hdf5(path: Path) -> FrameTable:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT_NAME:
                raise DataError(
                    f"{path}: not a mindsponge_mm dataset (no format attribute '{FORMAT_NAME}'); "
                    f"convert it with 'mindsponge-mm data convert'"
                )
            version = int(f.attrs.get("format_version", 0))
            if version > FORMAT_VERSION:
                raise DataError(f"{path}: format version {version} is newer than this package reads; upgrade mindsponge_mm")
            props, per_atom, units = {}, {}, {"positions": str(f["positions"].attrs.get("unit", "Ang"))}
            for name, dset in f.get("properties", {}).items():
                props[name] = dset[()]
                per_atom[name] = bool(dset.attrs.get("per_atom", False))
                units[name] = str(dset.attrs.get("unit", ""))
            return FrameTable(
                atomic_numbers=f["atomic_numbers"][()].astype(np.int32),
                positions=f["positions"][()].astype(np.float64),
                n_atoms=f["n_atoms"][()].astype(np.int64),
                cell=f["cell"][()].astype(np.float64),
                pbc=f["pbc"][()].astype(bool),
                properties=props,
                per_atom=per_atom,
                units=units,
                metadata=json.loads(f.attrs.get("metadata", "{}")),
            )
    except DataError:
        raise
    except KeyError as err:
        raise DataError(f"{path}: incomplete dataset file, missing {err}; regenerate or reconvert it") from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read HDF5 file ({_first_line(err)}); the file is corrupt or not HDF5") from None


def write_hdf5(table: FrameTable, path: Path) -> None:
    import h5py

    def put(group, name, data, **attrs):
        data = np.asarray(data)
        opts = dict(compression="gzip", compression_opts=4, shuffle=True) if data.size > 64 else {}
        dset = group.create_dataset(name, data=data, chunks=True if opts else None, **opts)
        dset.attrs.update(attrs)

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(
                format=FORMAT_NAME,
                format_version=FORMAT_VERSION,
                metadata=json.dumps({**table.metadata, "written_by": f"mindsponge_mm {__version__}"}),
            )
            put(f, "n_atoms", table.n_atoms.astype(np.int64))
            put(f, "atomic_numbers", table.atomic_numbers.astype(np.int32))
            put(f, "positions", table.positions, unit=table.units["positions"])
            put(f, "cell", table.cell, unit=table.units["positions"])
            put(f, "pbc", table.pbc.astype(bool))
            group = f.create_group("properties")
            for name, values in table.properties.items():
                put(group, name, values, unit=table.units[name], per_atom=table.per_atom[name])


# ---------------------------------------------------------------------- ASE db
def read_asedb(path: Path, units: dict | None) -> FrameTable:
    import ase.db

    try:
        db = ase.db.connect(str(path), type="db")
        meta = db.metadata or {}
        frames = []
        for row in db.select():
            atoms = row.toatoms()
            for name, value in (row.get("data") or {}).items():
                value = np.asarray(value)
                if value.ndim and value.shape[0] == len(atoms) and name in meta.get("per_atom", []):
                    atoms.arrays[name] = value
                else:
                    atoms.info[name] = value
            frames.append(atoms)
    except DataError:
        raise
    except Exception as err:  # sqlite3 and ASE raise many types for a corrupt file
        raise DataError(f"{path}: cannot read ASE database ({_first_line(err)}); the file is corrupt or not an ASE db") from None
    stored_units = {**meta.get("units", {}), **(units or {})}
    return table_from_atoms(frames, stored_units, source=str(path), metadata=meta.get("metadata", {}))


def write_asedb(table: FrameTable, path: Path) -> None:
    import ase.db

    calc_names = {"energy", "free_energy", "forces", "stress", "energies", "charges", "magmoms"}
    with atomic_path(path) as tmp:
        with ase.db.connect(str(tmp), type="db", append=False) as db:
            for i in range(len(table)):
                atoms = table.to_atoms(i)
                frame = table.frame(i)
                data = {name: np.asarray(frame[name]) for name in table.properties if name not in calc_names}
                for name in data:  # keep extra properties only in row.data
                    atoms.info.pop(name, None)
                    atoms.arrays.pop(name, None)
                db.write(atoms, data=data)
        db = ase.db.connect(str(tmp), type="db")
        db.metadata = {
            "format": FORMAT_NAME,
            "units": table.units,
            "per_atom": [k for k, v in table.per_atom.items() if v],
            "metadata": table.metadata,
        }


# ---------------------------------------------------------------------- ase.io
def read_aseio(path: Path, units: dict | None) -> FrameTable:
    import ase.io

    try:
        frames = ase.io.read(str(path), index=":")
    except Exception as err:  # ase.io raises many types for unknown or broken files
        where = _locate_bad_frame(path)
        if where is not None:
            raise DataError(f"{path}: {where} cannot be read ({_first_line(err)}); fix or remove that frame") from None
        raise DataError(
            f"{path}: ase.io cannot read this file ({_first_line(err)}); "
            f"use extxyz, a format ASE knows, .h5 or .db"
        ) from None
    return table_from_atoms(frames, units, source=str(path))


def _locate_bad_frame(path: Path) -> str | None:
    """``"frame K (lines A-B)"`` of the first frame ase.io fails on, or None if no frame reads.

    Frames are counted with ``ase.io.iread``; for (ext)xyz files the frame's line range comes
    from the atom-count lines. None when the very first frame fails for a non-xyz file (then
    the file as a whole is the problem).
    """
    import ase.io

    k = 0
    try:
        for _ in ase.io.iread(str(path), index=":"):
            k += 1
    except Exception:  # noqa: BLE001 (the same failure as the full read)
        pass
    else:
        return None
    if path.suffix.lower() not in (".xyz", ".extxyz"):
        return f"frame {k}" if k > 0 else None
    try:
        with open(path) as f:
            lines = f.readlines()
        start = 0
        for _ in range(k):
            start += int(lines[start].split()[0]) + 2
        count = lines[start].split()[0] if start < len(lines) and lines[start].split() else "?"
        end = start + int(count) + 2 if count.isdigit() else start + 1
        return f"frame {k} (lines {start + 1}-{min(end, len(lines))})"
    except (OSError, ValueError, IndexError):
        return f"frame {k}"


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
