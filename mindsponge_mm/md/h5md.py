"""H5MD 1.1 trajectories: an incremental writer and a reader.

Layout (one particle group per structure: ``all`` for a single structure, else ``system_0``, ...)::

    /h5md                        attrs version = [1, 1]; groups author (name), creator (name, version)
    /particles/<group>/species   [N] int32 atomic numbers (fixed);  mass [N] amu (fixed)
    /particles/<group>/box       attrs dimension = 3, boundary = ["periodic" | "none"] × 3
    /particles/<group>/box/edges/{step [T], time [T], value [T, 3, 3]}   Å (rows = cell vectors)
    /particles/<group>/position/{step, time, value [T, N, 3]}          Å
    /particles/<group>/velocity/...  [T, N, 3] Å/fs     (optional)
    /particles/<group>/force/...     [T, N, 3] eV/Å     (optional)
    /observables[/<group>]/<name>/{step, time, value [T]} for potential_energy, kinetic_energy,
        total_energy, conserved_energy (eV), temperature (K), pressure (bar), volume (Å³)

Every element is chunked and resizable along T and carries a ``unit`` attribute on ``value`` and
``time``. The writer flushes after each :meth:`H5MDWriter.append`, so a killed run leaves a
readable file holding every frame appended before the last flush.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms, units

from .. import __version__
from ..errors import UserError

OBSERVABLE_UNITS = {"potential_energy": "eV", "kinetic_energy": "eV", "total_energy": "eV", "conserved_energy": "eV",
                    "temperature": "K", "pressure": "bar", "volume": "Angstrom^3"}


def _group_names(n_structures: int) -> list[str]:
    return ["all"] if n_structures == 1 else [f"system_{s}" for s in range(n_structures)]


def _create_element(parent: h5py.Group, name: str, shape: tuple, dtype, unit: str | None):
    g = parent.create_group(name)
    g.create_dataset("step", (0,), maxshape=(None,), dtype=np.int64, chunks=(256,))
    t = g.create_dataset("time", (0,), maxshape=(None,), dtype=np.float64, chunks=(256,))
    t.attrs["unit"] = "fs"
    chunk_t = max(1, min(64, (1 << 20) // max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)))
    v = g.create_dataset("value", (0, *shape), maxshape=(None, *shape), dtype=dtype, chunks=(chunk_t, *shape))
    if unit:
        v.attrs["unit"] = unit
    return g


def _append(group: h5py.Group, step: int, time: float, value) -> None:
    n = group["step"].shape[0]
    for name in ("step", "time", "value"):
        group[name].resize(n + 1, axis=0)
    group["step"][n] = step
    group["time"][n] = time
    group["value"][n] = value


def _truncate(group: h5py.Group, after_step: int) -> None:
    steps = group["step"][()]
    keep = int(np.searchsorted(steps, after_step, side="right"))
    for name in ("step", "time", "value"):
        group[name].resize(keep, axis=0)


class H5MDWriter:
    """Write frames of a :class:`~mindsponge_mm.md.simulation.Simulation` to an H5MD file.

    ``H5MDWriter(path, sim.state, velocities=False, forces=False)``; then ``append(sim)`` after each
    block. With ``append=True`` an existing file written for the same atoms is continued: frames
    after the current step are dropped first (used on restart).
    """

    def __init__(self, path: str | os.PathLike, state, velocities: bool = False, forces: bool = False,
                 author: str = "mindsponge_mm user", append: bool = False):
        self.path = Path(path)
        self.velocities, self.forces = bool(velocities), bool(forces)
        self.groups = _group_names(state.n_structures)
        self.slices = [np.flatnonzero(state.structure_index == s) for s in range(state.n_structures)]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append and self.path.exists():
            self.file = h5py.File(self.path, "r+")
            for g in self.groups:
                if f"particles/{g}/position" not in self.file:
                    raise UserError(f"{self.path}: cannot continue this trajectory, it has no particle group {g!r}; "
                                    f"write to a new file")
            self._each_element(lambda el: _truncate(el, state.step))
            self.file.flush()
            return
        self.file = h5py.File(self.path, "w")
        f = self.file
        h5 = f.create_group("h5md")
        h5.attrs["version"] = np.array([1, 1], np.int32)
        h5.create_group("author").attrs["name"] = author
        creator = h5.create_group("creator")
        creator.attrs["name"] = "mindsponge_mm"
        creator.attrs["version"] = __version__
        obs = f.create_group("observables")
        for s, (name, idx) in enumerate(zip(self.groups, self.slices)):
            g = f.create_group(f"particles/{name}")
            g.create_dataset("species", data=state.atomic_numbers[idx].astype(np.int32))
            g.create_dataset("mass", data=state.masses[idx].astype(np.float64)).attrs["unit"] = "amu"
            box = g.create_group("box")
            box.attrs["dimension"] = 3
            box.attrs["boundary"] = np.array(["periodic" if p else "none" for p in state.pbc[s]], dtype="S8")
            _create_element(box, "edges", (3, 3), np.float64, "Angstrom")
            _create_element(g, "position", (len(idx), 3), state.positions.dtype, "Angstrom")
            if self.velocities:
                _create_element(g, "velocity", (len(idx), 3), state.positions.dtype, "Angstrom fs-1")
            if self.forces:
                _create_element(g, "force", (len(idx), 3), state.positions.dtype, "eV Angstrom-1")
            og = obs if len(self.groups) == 1 else obs.create_group(name)
            for key, unit in OBSERVABLE_UNITS.items():
                _create_element(og, key, (), np.float64, unit)
        f.flush()

    def _observable_group(self, s):
        return self.file["observables"] if len(self.groups) == 1 else self.file[f"observables/{self.groups[s]}"]

    def _each_element(self, fn):
        for s, name in enumerate(self.groups):
            g = self.file[f"particles/{name}"]
            for el in ("box/edges", "position", "velocity", "force"):
                if el in g:
                    fn(g[el])
            og = self._observable_group(s)
            for key in og:
                fn(og[key])

    def append(self, sim) -> None:
        """Append the current frame of ``sim`` (positions, box, observables; velocities/forces if asked)."""
        state, obs = sim.state, sim.observables()
        step, time = int(state.step), float(state.time)
        velocities = state.velocities if self.velocities else None
        for s, (name, idx) in enumerate(zip(self.groups, self.slices)):
            g = self.file[f"particles/{name}"]
            _append(g["box/edges"], step, time, state.cell[s].astype(np.float64))
            _append(g["position"], step, time, state.positions[idx])
            if self.velocities:
                _append(g["velocity"], step, time, velocities[idx])
            if self.forces:
                _append(g["force"], step, time, sim.forces[idx])
            og = self._observable_group(s)
            for key in OBSERVABLE_UNITS:
                _append(og[key], step, time, float(obs[key][s]))
        self.file.flush()

    def close(self) -> None:
        if self.file:
            self.file.close()
            self.file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_h5md(path: str | os.PathLike) -> dict:
    """Everything in an H5MD file written by :class:`H5MDWriter`, as numpy arrays.

    Returns ``{"groups": {name: {"species", "mass", "boundary", "step", "time", "position",
    "box", "velocity"?, "force"?}}, "observables": {name: {key: {"step", "time", "value"}}}}``
    (observables keyed by particle group; a single structure uses the group name ``all``).
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: trajectory not found; check the path")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise UserError(f"{path}: not a readable HDF5/H5MD file ({err})") from None
    with f:
        if "h5md" not in f or "particles" not in f:
            raise UserError(f"{path}: not an H5MD file (no /h5md or /particles group)")
        out = {"groups": {}, "observables": {}}
        names = list(f["particles"])
        for name in names:
            g = f[f"particles/{name}"]
            n = min(g[el]["step"].shape[0] for el in ("position", "box/edges", "velocity", "force") if el in g)
            d = {"species": g["species"][()], "mass": g["mass"][()],
                 "boundary": [b.decode() if isinstance(b, bytes) else str(b) for b in g["box"].attrs["boundary"]],
                 "step": g["position/step"][:n], "time": g["position/time"][:n],
                 "position": g["position/value"][:n], "box": g["box/edges/value"][:n]}
            for el in ("velocity", "force"):
                if el in g:
                    d[el] = g[f"{el}/value"][:n]
            out["groups"][name] = d
            og = f["observables"] if names == ["all"] else f[f"observables/{name}"]
            out["observables"][name] = {k: {"step": og[k]["step"][()], "time": og[k]["time"][()],
                                            "value": og[k]["value"][()]} for k in og}
    return out


def read_atoms(path: str | os.PathLike, index: int = -1, group: str | None = None) -> Atoms | list[Atoms]:
    """Frame ``index`` (or every frame with ``index=None``) of one particle group as ``ase.Atoms``."""
    data = read_h5md(path)
    name = group or next(iter(data["groups"]))
    if name not in data["groups"]:
        raise UserError(f"{path}: no particle group {name!r}; groups: {', '.join(data['groups'])}")
    d = data["groups"][name]
    pbc = [b == "periodic" for b in d["boundary"]]
    n = len(d["step"])
    if n == 0:
        raise UserError(f"{path}: the trajectory holds no frames yet")

    def frame(t):
        a = Atoms(numbers=d["species"], positions=d["position"][t], cell=d["box"][t], pbc=pbc, masses=d["mass"])
        if "velocity" in d:
            a.set_velocities(d["velocity"][t] / units.fs)
        a.info.update(step=int(d["step"][t]), time_fs=float(d["time"][t]))
        return a

    if index is None:
        return [frame(t) for t in range(n)]
    return frame(range(n)[index])
