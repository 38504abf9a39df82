"""Shared fixtures. MindSpore's log is silenced before anything imports it."""
import os

os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.build import bulk, molecule  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402


def labelled(atoms: Atoms, calc=None, stress=False) -> Atoms:
    """A copy of ``atoms`` carrying a SinglePointCalculator with EMT (or ``calc``) results."""
    atoms = atoms.copy()
    atoms.calc = calc or EMT()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if stress:
        results["stress"] = atoms.get_stress()
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


@pytest.fixture(scope="session")
def copper_frames():
    """Six rattled periodic Cu cells (two sizes, one triclinic) with EMT energy, forces and stress."""
    frames = []
    rng = np.random.default_rng(1)
    for k in range(6):
        a = bulk("Cu", "fcc", a=3.6, cubic=(k % 2 == 0)) * ((2, 2, 2) if k % 2 == 0 else (2, 2, 3))
        if k == 5:
            a.set_cell(a.cell[:] @ (np.eye(3) + 0.05 * rng.standard_normal((3, 3))), scale_atoms=True)
        a.rattle(0.05, seed=k)
        frames.append(labelled(a, stress=True))
    return frames


@pytest.fixture(scope="session")
def molecule_frames():
    """Eight rattled small molecules of different composition (EMT knows H, C, N, O)."""
    names = ["CH4", "H2O", "NH3", "CH3OH", "C2H6", "CO2", "HCOOH", "CH3CH2OH"]
    frames = []
    for k, name in enumerate(names):
        a = molecule(name)
        a.rattle(0.02, seed=k)
        frames.append(labelled(a))
    return frames
