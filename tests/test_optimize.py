"""md.optimize: batched FIRE and L-BFGS against ASE's BFGS minima, cell relaxation against the
analytic fcc lattice constant, neighbor-list rebuilds and bad input."""
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.lj import LennardJones as AseLJ
from ase.cluster import Icosahedron
from ase.optimize import BFGS
from scipy.optimize import minimize_scalar

from mindsponge_mm.errors import ConfigError, UserError
from mindsponge_mm.md.optimize import optimize
from mindsponge_mm.potentials import LennardJones

EPS, SIG, RC = 0.0104, 3.4, 7.0


@pytest.fixture(scope="module")
def lj():
    return LennardJones({"Ar": EPS}, {"Ar": SIG}, RC, shift=True, dtype="float64")


@pytest.fixture(scope="module")
def structures():
    out = []
    for k, shells in enumerate([2, 3]):
        c = Icosahedron("Ar", shells, latticeconstant=5.3)
        c.rattle(0.1, seed=k)
        c.center(vacuum=5.0)
        c.pbc = False
        out.append(c)
    x = bulk("Ar", "fcc", a=5.3, cubic=True) * (2, 2, 1)
    x.rattle(0.15, seed=5)
    out.append(x)
    d = bulk("Ar", "fcc", a=5.3)  # one-atom primitive cell with a vacancy-free rattled supercell
    d = d * (2, 2, 2)
    d.rattle(0.1, seed=6)
    out.append(d)
    return out


@pytest.fixture(scope="module")
def ase_minima(structures):
    energies = []
    for s in structures:
        a = s.copy()
        a.calc = AseLJ(epsilon=EPS, sigma=SIG, rc=RC, smooth=False)
        BFGS(a, logfile=None).run(fmax=1e-5, steps=2000)
        energies.append(a.get_potential_energy())
    return np.array(energies)


@pytest.mark.parametrize("method", ["fire", "lbfgs"])
def test_batched_relaxation_matches_ase_bfgs(method, lj, structures, ase_minima):
    seen = []
    relaxed, info = optimize(structures, lj, method=method, fmax=2e-4, steps=2000,
                             callback=lambda it, e, f, c: seen.append(it))
    assert info["converged"].all(), info
    assert (info["fmax"] < 2e-4).all()
    assert info["evaluations"] == len(seen) == info["steps"].max() + 1
    np.testing.assert_allclose(info["energy"], ase_minima, rtol=0, atol=1e-5)
    for a, e in zip(relaxed, info["energy"]):
        assert a.get_potential_energy() == e
        assert np.sqrt((a.get_forces() ** 2).sum(1)).max() < 2e-4
        # relaxed positions really are those of the reported energy (independent calculator)
        b = a.copy()
        b.calc = AseLJ(epsilon=EPS, sigma=SIG, rc=RC, smooth=False)
        assert b.get_potential_energy() == pytest.approx(e, abs=1e-10)


def test_neighbor_list_is_rebuilt_when_atoms_move(lj, structures, ase_minima):
    c = structures[0].copy()
    c.positions = (c.positions - c.get_center_of_mass()) * 1.2 + c.get_center_of_mass()  # expanded: it contracts
    ref = c.copy()
    ref.calc = AseLJ(epsilon=EPS, sigma=SIG, rc=RC, smooth=False)
    BFGS(ref, logfile=None).run(fmax=1e-5, steps=2000)
    relaxed, info = optimize([c], lj, method="lbfgs", fmax=2e-4, steps=1000, skin=0.3)
    assert info["converged"].all() and info["neighbor_rebuilds"] > 1
    assert info["energy"][0] == pytest.approx(ref.get_potential_energy(), abs=1e-5)


def analytic_fcc_lattice_constant(pressure=0.0):
    """Minimum of the enthalpy per atom of a perfect fcc LJ crystal with shells inside RC (shifted LJ)."""
    m = np.arange(-4, 5)
    pts = np.array(np.meshgrid(m, m, m)).reshape(3, -1).T
    pts = pts[(pts.sum(1) % 2 == 0) & (np.abs(pts).sum(1) > 0)]
    r_unit = 0.5 * np.linalg.norm(pts, axis=1)  # neighbor distances in units of a

    def enthalpy(a):
        r = a * r_unit[a * r_unit < RC]
        u = 4 * EPS * ((SIG / r) ** 12 - (SIG / r) ** 6) - 4 * EPS * ((SIG / RC) ** 12 - (SIG / RC) ** 6)
        return 0.5 * u.sum() + pressure * a ** 3 / 4

    # within this bracket the shells inside RC do not change (√2·a > RC > √1.5·a)
    res = minimize_scalar(enthalpy, bounds=(RC / np.sqrt(2) + 1e-6, RC / np.sqrt(1.5) - 1e-6), method="bounded",
                          options={"xatol": 1e-10})
    return res.x


@pytest.mark.parametrize("method", ["fire", "lbfgs"])
def test_cell_relaxation_gives_the_fcc_lattice_constant(method, lj):
    a0 = analytic_fcc_lattice_constant()
    assert 5.2 < a0 < 5.35
    from ase.units import GPa

    p = 0.05 * GPa
    a_p = analytic_fcc_lattice_constant(pressure=p)
    assert a_p < a0 - 1e-3
    crystals = []
    for k, a in enumerate((5.45, 5.2)):
        x = bulk("Ar", "fcc", a=a, cubic=True)
        x.set_cell(x.cell[:] @ (np.eye(3) + 0.02 * np.array([[0, 1, 0], [0.5, 0, 0], [0, 0.3, -1]])), scale_atoms=True)
        x.rattle(0.05, seed=k)
        crystals.append(x)
    molecule_ = molecule("CH4")  # a molecule in the same batch keeps its (absent) cell
    molecule_.numbers[:] = 18
    molecule_.positions *= 3.3
    relaxed, info = optimize(crystals + [molecule_], lj, method=method, fmax=1e-4, steps=3000, relax_cell=True)
    assert info["converged"].all(), info
    for x in relaxed[:2]:
        lattice = (4 * x.get_volume() / len(x)) ** (1 / 3)
        assert lattice == pytest.approx(a0, abs=2e-4)
        cellpar = x.cell.cellpar()
        np.testing.assert_allclose(cellpar[3:], 90.0, atol=0.05)
        np.testing.assert_allclose(x.get_stress(), 0.0, atol=5e-6)
    assert relaxed[2].cell.rank == 0
    # under pressure the stress balances it and the lattice constant is the analytic one
    relaxed_p, info_p = optimize(crystals[:1], lj, method=method, fmax=1e-4, steps=3000, relax_cell=True, pressure=p)
    assert info_p["converged"].all()
    x = relaxed_p[0]
    assert (4 * x.get_volume() / len(x)) ** (1 / 3) == pytest.approx(a_p, abs=2e-4)
    np.testing.assert_allclose(x.get_stress()[:3], -p, atol=5e-6)
    assert info_p["enthalpy"][0] == pytest.approx(info_p["energy"][0] + p * x.get_volume(), rel=1e-12)


def test_relaxation_with_a_learned_potential():
    """A random tiny SchNet (a rough landscape): both methods reach stationary points, checked by a
    fresh evaluation with the plain cutoff, downhill from the start."""
    from mindsponge_mm.data import collate
    from mindsponge_mm.models import Potential
    from mindsponge_mm.models import build as build_model

    model = build_model("schnet", elements=["H", "C", "O"], cutoff=4.0, n_features=16, n_interactions=2,
                        dtype="float64", seed=1)
    potential = Potential(model)
    mols = [molecule(n) for n in ("H2O", "CH4", "CH3OH")]
    for k, m in enumerate(mols):
        m.rattle(0.05, seed=k)

    def evaluate(atoms_list):
        frames = [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": a.cell[:], "pbc": a.pbc}
                  for a in atoms_list]
        out = potential.evaluate(collate(frames, 4.0, dtype="float64"))
        return out["energy"][: len(atoms_list)], out["forces"]

    start, _ = evaluate(mols)
    for method in ("fire", "lbfgs"):
        relaxed, info = optimize(mols, potential, method=method, fmax=0.005, steps=300)
        assert info["converged"].all(), (method, info)
        energy, forces = evaluate(relaxed)
        np.testing.assert_allclose(energy, info["energy"], rtol=0, atol=1e-10)
        assert np.sqrt((forces ** 2).sum(1)).max() < 0.005
        assert (energy < start).all()


def test_bad_input(lj, structures):
    with pytest.raises(ConfigError, match="did you mean 'lbfgs'"):
        optimize(structures, lj, method="lbgfs")
    with pytest.raises(ConfigError, match="fmax"):
        optimize(structures, lj, fmax=0)
    slab = bulk("Ar", "fcc", a=5.3, cubic=True)
    slab.pbc = (True, True, False)
    with pytest.raises(UserError, match="pbc on all three axes"):
        optimize([slab], lj, relax_cell=True)
    kr = structures[0].copy()
    kr.numbers[0] = 36
    with pytest.raises(UserError, match="Kr"):
        optimize([kr], lj)
    with pytest.raises(ConfigError, match="lbfgs"):
        optimize(structures, lj, method="lbfgs", finc=1.2)
    overlapping = structures[0].copy()
    overlapping.positions[1] = overlapping.positions[0]
    with pytest.raises(UserError, match="structure 0: non-finite"):
        optimize([overlapping], lj)
