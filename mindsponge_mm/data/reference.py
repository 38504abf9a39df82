"""Deterministic generators for the bundled reference datasets.

Every generator returns a list of :class:`ase.Atoms`.  Each frame is an
independent copy carrying a :class:`~ase.calculators.singlepoint.SinglePointCalculator`
with the reference results, so ``atoms.get_potential_energy()`` (eV),
``atoms.get_forces()`` (eV/Ang, shape ``(n_atoms, 3)``) and, for periodic sets,
``atoms.get_stress()`` (eV/Ang^3, Voigt-6; ``voigt=False`` gives ``(3, 3)``)
return the stored values without recomputation.  Frames also keep the MD
momenta they had when sampled.

Determinism: all randomness (initial velocities, Langevin noise) comes from
``numpy.random.default_rng`` generators seeded from ``seed``, so two calls
with the same arguments give bit-identical arrays.  Nothing is downloaded or
unpickled.
"""

from __future__ import annotations

import contextlib
import ctypes
from typing import Callable, Iterator

import numpy as np
from ase import Atoms, units
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary

try:  # ASE >= 3.29 deprecates MaxwellBoltzmannDistribution in favour of this
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # pragma: no cover - older ASE, same underlying sampler
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

ETHANOL_FRICTION_PER_FS = 0.01
COPPER_LATTICE_A = 3.59  # Ang; EMT zero-pressure fcc lattice constant (to ~0.005 Ang)
COPPER_TIMESTEP_FS = 2.0
COPPER_FRICTION_PER_FS = 0.01
COPPER_SAMPLE_EVERY = 10
COPPER_EQUILIBRATION_STEPS = 200
# Deformation gradient (minus identity) for the triclinic run: a general,
# non-symmetric shear so every off-diagonal cell entry becomes nonzero.
COPPER_SHEAR = np.array([[0.000, 0.030, -0.020],
                         [0.015, 0.000, 0.025],
                         [-0.010, 0.020, 0.000]])
# (cell kind, repeat, temperature K, isotropic volume strain, apply shear)
COPPER_RUNS = (
    ("conventional", (2, 2, 2), 300.0, 0.000, False),   # 32 atoms, cubic
    ("conventional", (2, 2, 2), 900.0, +0.030, False),  # 32 atoms, expanded
    ("conventional", (3, 3, 3), 600.0, -0.030, False),  # 108 atoms, compressed
    ("primitive", (3, 3, 3), 300.0, -0.015, False),     # 27 atoms, rhombohedral
    ("primitive", (2, 3, 4), 900.0, +0.015, False),     # 24 atoms, rhombohedral
    ("conventional", (2, 2, 2), 600.0, +0.010, True),   # 32 atoms, triclinic
)


@contextlib.contextmanager
def _single_threaded_openmp() -> Iterator[None]:
    """Temporarily run loaded OpenMP runtimes with one thread (restored afterwards).

    tblite parallelises with OpenMP; multi-threaded reductions change the last
    bits of energies/forces from call to call, and chaotic MD amplifies that
    into different trajectories.  Linux only (reads ``/proc/self/maps``);
    elsewhere this is a no-op.
    """
    runtimes = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "omp" in line.rsplit("/", 1)[-1]}
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            runtimes.append((lib, lib.omp_get_max_threads()))
            lib.omp_set_num_threads(1)
        except (OSError, AttributeError):
            continue
    try:
        yield
    finally:
        for lib, n_threads in runtimes:
            lib.omp_set_num_threads(n_threads)


def _snapshot(atoms: Atoms, stress: bool = False, wrap: bool = False) -> Atoms:
    """Fresh copy of ``atoms`` with its current results frozen in a SinglePointCalculator."""
    results = {"energy": float(atoms.get_potential_energy()),
               "forces": atoms.get_forces().copy()}
    if stress:
        results["stress"] = atoms.get_stress(voigt=True).copy()  # eV/Ang^3
    frame = atoms.copy()  # copies positions, numbers, cell, pbc, momenta
    frame.calc = None
    if wrap:
        frame.wrap()
    frame.calc = SinglePointCalculator(frame, **results)
    return frame


def _run_md(atoms: Atoms, dyn: Langevin, n_frames: int, sample_every: int,
            equilibration_steps: int, periodic: bool, on_frame: Callable[[Atoms], None]) -> None:
    """Equilibrate, then call ``on_frame`` with a snapshot every ``sample_every`` steps."""
    if n_frames <= 0:
        return
    dyn.run(equilibration_steps)
    for _ in range(n_frames):
        dyn.run(sample_every)
        on_frame(_snapshot(atoms, stress=periodic, wrap=periodic))


def generate_ethanol(n_frames: int = 1000, seed: int = 0, temperature_K: float = 500.0,
                     timestep_fs: float = 0.5, sample_every: int = 10,
                     equilibration_steps: int = 500,
                     progress: Callable[[int, int], None] | None = None) -> list[Atoms]:
    """Ethanol (C2H5OH, 9 atoms, non-periodic) sampled from GFN2-xTB Langevin MD.

    Starts from ``ase.build.molecule("CH3CH2OH")``, draws Maxwell-Boltzmann
    velocities at ``temperature_K`` (net momentum removed), runs
    ``equilibration_steps`` Langevin steps, then stores one frame every
    ``sample_every`` steps until ``n_frames`` frames exist.

    Returns ``n_frames`` Atoms with positions ``(9, 3)`` in Ang, no cell and no
    pbc; energy (eV, float) and forces (eV/Ang, ``(9, 3)``) are attached via a
    SinglePointCalculator.  ``progress(done, total)`` is called after each frame.
    """
    from tblite.ase import TBLite  # imported lazily: only this generator needs it

    rng = np.random.default_rng(seed)
    atoms = molecule("CH3CH2OH")
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)
    # fixcm=False: the fixcm=True code path is deprecated in ASE >= 3.28.  The
    # molecule is in vacuum, so the slow centre-of-mass random walk is harmless.
    dyn = Langevin(atoms, timestep=timestep_fs * units.fs, temperature_K=temperature_K,
                   friction=ETHANOL_FRICTION_PER_FS / units.fs, fixcm=False, rng=rng)
    frames: list[Atoms] = []

    def on_frame(frame: Atoms) -> None:
        frames.append(frame)
        if progress is not None:
            progress(len(frames), n_frames)

    with _single_threaded_openmp():  # threaded xTB is not bitwise reproducible
        _run_md(atoms, dyn, n_frames, sample_every, equilibration_steps, False, on_frame)
    return frames


def _copper_cell(kind: str, repeat: tuple[int, int, int], volume_strain: float,
                 shear: bool) -> Atoms:
    """Build a strained fcc Cu supercell (atoms scaled with the cell)."""
    atoms = bulk("Cu", "fcc", a=COPPER_LATTICE_A, cubic=(kind == "conventional")).repeat(repeat)
    deform = (1.0 + volume_strain) ** (1.0 / 3.0) * np.eye(3)
    if shear:
        deform = deform @ (np.eye(3) + COPPER_SHEAR)
    # Rows of the cell are lattice vectors: a_i -> F a_i, i.e. cell -> cell F^T.
    atoms.set_cell(atoms.cell.array @ deform.T, scale_atoms=True)
    return atoms


def _split(n_total: int, n_parts: int) -> list[int]:
    """Split ``n_total`` into ``n_parts`` near-equal counts, earlier parts get the remainder."""
    base, extra = divmod(n_total, n_parts)
    return [base + (i < extra) for i in range(n_parts)]


def generate_copper(n_frames: int = 500, seed: int = 0,
                    progress: Callable[[int, int], None] | None = None) -> list[Atoms]:
    """Periodic fcc copper frames from ASE-EMT Langevin MD over cells, strains and temperatures.

    ``n_frames`` is split as evenly as possible over the runs in
    ``COPPER_RUNS`` (earlier runs take the remainder), and frames are returned
    run by run.  Run ``i`` uses its own generator
    ``numpy.random.default_rng([seed, i])``, so a run's trajectory does not
    depend on how many frames the other runs get.

    Each frame: periodic Atoms (positions wrapped into the cell, Ang) with
    energy (eV), forces (eV/Ang, ``(n_atoms, 3)``) and stress (eV/Ang^3,
    stored as Voigt-6; ``get_stress(voigt=False)`` gives ``(3, 3)``).
    ``progress(done, total)`` is called after each frame.
    """
    from ase.calculators.emt import EMT

    frames: list[Atoms] = []

    def on_frame(frame: Atoms) -> None:
        frames.append(frame)
        if progress is not None:
            progress(len(frames), n_frames)

    for i, (count, run) in enumerate(zip(_split(n_frames, len(COPPER_RUNS)), COPPER_RUNS)):
        kind, repeat, temperature, volume_strain, shear = run
        if count == 0:
            continue
        rng = np.random.default_rng([seed, i])
        atoms = _copper_cell(kind, repeat, volume_strain, shear)
        atoms.calc = EMT()
        thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
        Stationary(atoms)
        dyn = Langevin(atoms, timestep=COPPER_TIMESTEP_FS * units.fs, temperature_K=temperature,
                       friction=COPPER_FRICTION_PER_FS / units.fs, fixcm=False, rng=rng)
        _run_md(atoms, dyn, count, COPPER_SAMPLE_EVERY, COPPER_EQUILIBRATION_STEPS, True, on_frame)
    return frames


GENERATORS: dict[str, dict] = {
    "ethanol": {
        "function": generate_ethanol,
        "description": (
            "Ethanol (CH3CH2OH, 9 atoms, non-periodic); values are the generate_ethanol "
            "defaults. Start geometry: ase.build.molecule('CH3CH2OH'). Energies and forces: "
            "GFN2-xTB from tblite (tblite.ase.TBLite, method='GFN2-xTB', default accuracy "
            "and 300 K electronic temperature). Dynamics: "
            "ASE Langevin NVT at 500 K, 0.5 fs time step, friction 0.01/fs, fixcm=False; initial "
            "Maxwell-Boltzmann velocities at 500 K with zero net momentum. 500 equilibration "
            "steps (250 fs) are discarded, then one frame is stored every 10 steps (5 fs); the "
            "default 1000 frames span 5 ps. One numpy default_rng(seed) drives both the initial "
            "velocities and the Langevin noise; the bundled set uses seed 0. xTB runs with one "
            "OpenMP thread during generation so results are bit-reproducible."
        ),
        "default_frames": 1000,
        "units": {"positions": "Ang", "energy": "eV", "forces": "eV/Ang"},
    },
    "copper": {
        "function": generate_copper,
        "description": (
            "Bulk fcc copper, periodic in 3D. Energies, forces and stresses: ASE's EMT "
            "calculator (ase.calculators.emt.EMT). Reference lattice constant 3.59 Ang (EMT "
            "zero pressure). Six ASE Langevin NVT runs (2 fs time step, friction 0.01/fs, "
            "fixcm=False, 200 discarded equilibration steps, then one frame every 10 steps = "
            "20 fs): 2x2x2 conventional cubic cell (32 atoms) at 300 K unstrained; 2x2x2 "
            "conventional at 900 K with +3% volume strain; 3x3x3 conventional (108 atoms) at "
            "600 K with -3% volume; 3x3x3 primitive rhombohedral cell (27 atoms) at 300 K with "
            "-1.5% volume; 2x3x4 primitive (24 atoms) at 900 K with +1.5% volume; and a 2x2x2 "
            "conventional cell at 600 K scaled to +1% volume and then given a general "
            "non-symmetric shear (deformation gradient I + [[0, .03, -.02], [.015, 0, .025], "
            "[-.01, .02, 0]]) giving a triclinic cell with all off-diagonal entries nonzero. "
            "Strains scale the atoms with the cell. The requested frame count (default 500) is "
            "split evenly over the runs, earlier runs taking the remainder. Run i draws its "
            "Maxwell-Boltzmann initial velocities (zero net momentum) and Langevin noise from "
            "numpy default_rng([seed, i]); the bundled set uses seed 0. Positions are wrapped "
            "into the cell; stress is stored in ASE Voigt order."
        ),
        "default_frames": 500,
        "units": {"positions": "Ang", "cell": "Ang", "energy": "eV", "forces": "eV/Ang",
                  "stress": "eV/Ang^3"},
    },
}


def describe(name: str) -> str:
    """Return the one-paragraph description of how dataset ``name`` is generated."""
    if name not in GENERATORS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name]["description"]
