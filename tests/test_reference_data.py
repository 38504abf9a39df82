"""Fast checks of the reference-dataset generators (numpy/ASE/tblite only, no MindSpore)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT

# Load the module from its file so the test never imports the package
# __init__ (which may pull in MindSpore).
_PATH = Path(__file__).resolve().parents[1] / "mindsponge_mm" / "data" / "reference.py"
_SPEC = importlib.util.spec_from_file_location("_reference_under_test", _PATH)
ref = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ref)

ETHANOL_FAST = dict(equilibration_steps=20, sample_every=5)


def _arrays(frames):
    out = []
    for atoms in frames:
        out += [atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc,
                np.array(atoms.get_potential_energy()), atoms.get_forces()]
        if atoms.pbc.any():
            out.append(atoms.get_stress(voigt=False))
    return out


def _identical(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(_arrays(a), _arrays(b)))


@pytest.fixture(scope="module")
def fast_copper():
    """Copper generator with shortened MD so the tests stay fast."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ref, "COPPER_EQUILIBRATION_STEPS", 5)
        mp.setattr(ref, "COPPER_SAMPLE_EVERY", 2)
        yield ref.generate_copper


@pytest.fixture(scope="module")
def ethanol():
    return ref.generate_ethanol(n_frames=8, seed=0, **ETHANOL_FAST)


@pytest.fixture(scope="module")
def copper(fast_copper):
    return fast_copper(n_frames=60, seed=0)


def test_ethanol_deterministic_and_seed_dependent(ethanol):
    again = ref.generate_ethanol(n_frames=8, seed=0, **ETHANOL_FAST)
    other = ref.generate_ethanol(n_frames=8, seed=1, **ETHANOL_FAST)
    assert _identical(ethanol, again)
    assert not np.allclose(ethanol[-1].positions, other[-1].positions)


def test_ethanol_frames(ethanol):
    assert len(ethanol) == 8
    for atoms in ethanol:
        assert len(atoms) == 9
        assert sorted(atoms.get_chemical_symbols()) == sorted("CCOHHHHHH")
        assert not atoms.pbc.any()
        assert np.all(atoms.cell.array == 0.0)
        assert np.isfinite(atoms.get_potential_energy())
        assert atoms.get_forces().shape == (9, 3)
        assert np.all(np.isfinite(atoms.get_forces()))
    # Frames are independent copies: results are not shared/overwritten.
    energies = [a.get_potential_energy() for a in ethanol]
    assert len(set(energies)) == len(energies)
    assert ethanol[0].calc is not ethanol[1].calc


def test_ethanol_forces_match_finite_difference(ethanol):
    from tblite.ase import TBLite

    atoms = ethanol[-1].copy()
    stored = ethanol[-1].get_forces()
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    h = 1e-4
    for i, k in [(0, 0), (2, 1), (4, 2), (8, 0)]:
        energies = []
        for sign in (+1, -1):
            atoms.positions[i, k] += sign * h
            energies.append(atoms.get_potential_energy())
            atoms.positions[i, k] -= sign * h
        numeric = -(energies[0] - energies[1]) / (2 * h)
        assert abs(numeric - stored[i, k]) < 1e-3, (i, k, numeric, stored[i, k])


def test_copper_deterministic_and_seed_dependent(fast_copper):
    first = fast_copper(n_frames=6, seed=3)
    assert _identical(first, fast_copper(n_frames=6, seed=3))
    other = fast_copper(n_frames=6, seed=4)
    assert not np.allclose(first[0].positions, other[0].positions)


def test_copper_frames(copper):
    assert len(copper) == 60
    sizes = set()
    for atoms in copper:
        assert atoms.pbc.all()
        assert set(atoms.get_chemical_symbols()) == {"Cu"}
        assert atoms.get_stress(voigt=False).shape == (3, 3)
        assert atoms.get_forces().shape == (len(atoms), 3)
        assert np.isfinite(atoms.get_potential_energy())
        frac = atoms.get_scaled_positions(wrap=False)
        assert np.all((frac > -1e-9) & (frac < 1 + 1e-9))  # wrapped
        sizes.add(len(atoms))
    assert len(sizes) >= 3
    off_diagonal = ~np.eye(3, dtype=bool)
    triclinic = [a for a in copper if np.all(np.abs(a.cell.array[off_diagonal]) > 1e-3)
                 and not np.allclose(a.cell.array, a.cell.array.T)]
    assert triclinic


def test_copper_results_reproduce_emt(copper):
    for atoms in copper[::10]:
        fresh = atoms.copy()
        fresh.calc = EMT()
        assert np.isclose(fresh.get_potential_energy(), atoms.get_potential_energy(), atol=1e-9)
        np.testing.assert_allclose(fresh.get_forces(), atoms.get_forces(), atol=1e-9)
        np.testing.assert_allclose(fresh.get_stress(), atoms.get_stress(), atol=1e-10)


def test_copper_stress_matches_strain_derivative(copper):
    atoms = copper[-1].copy()  # last run is the sheared triclinic cell
    stored = copper[-1].get_stress(voigt=False)
    atoms.calc = EMT()
    cell0, volume, d = atoms.cell.array.copy(), atoms.get_volume(), 1e-5
    numeric = np.zeros((3, 3))
    for i in range(3):
        for j in range(i, 3):
            energies = []
            for sign in (+1, -1):
                strain = np.zeros((3, 3))
                strain[i, j] = strain[j, i] = sign * d / (1 if i == j else 2)
                atoms.set_cell(cell0 @ (np.eye(3) + strain), scale_atoms=True)
                energies.append(atoms.get_potential_energy())
            numeric[i, j] = numeric[j, i] = (energies[0] - energies[1]) / (2 * d * volume)
    np.testing.assert_allclose(numeric, stored, atol=1e-4)
    assert np.abs(stored).max() > 1e-3  # non-trivial stress in the strained cell


def test_progress_callback(fast_copper):
    calls = []
    fast_copper(n_frames=6, seed=0, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (6, 6) and [c[0] for c in calls] == list(range(1, 7))
    calls.clear()
    ref.generate_ethanol(n_frames=3, progress=lambda d, t: calls.append((d, t)), **ETHANOL_FAST)
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_registry_and_describe():
    assert set(ref.GENERATORS) == {"ethanol", "copper"}
    for name, entry in ref.GENERATORS.items():
        assert callable(entry["function"])
        assert entry["units"]["energy"] == "eV"
        assert isinstance(entry["default_frames"], int)
        assert ref.describe(name) == entry["description"]
    with pytest.raises(ValueError, match="copper.*ethanol"):
        ref.describe("water")
