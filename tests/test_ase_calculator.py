"""interfaces.ase.Calculator: forces and stress against ASE's numerical derivatives, ASE's BFGS,
compiled-graph reuse, checkpoints and bad input."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.calculators.lj import LennardJones as AseLJ
from ase.optimize import BFGS

from mindsponge_mm.errors import UserError
from mindsponge_mm.interfaces.ase import Calculator
from mindsponge_mm.models import Potential
from mindsponge_mm.models import build as build_model
from mindsponge_mm.potentials import LennardJones

EPS, SIG, RC = 0.0104, 3.4, 7.0


@pytest.fixture(scope="module")
def lj():
    return LennardJones({"Ar": EPS}, {"Ar": SIG}, RC, shift=True, dtype="float64")


@pytest.fixture(scope="module")
def schnet():
    model = build_model("schnet", elements=["H", "C", "O"], cutoff=4.0, n_features=16, n_interactions=2,
                        dtype="float64", seed=1)
    model.set_energy_offsets({1: -13.6, 6: -1029.0, 8: -2041.0})
    return Potential(model)


@pytest.fixture(scope="module")
def argon():
    a = bulk("Ar", "fcc", a=5.3, cubic=True) * (2, 1, 1)
    a.set_cell(a.cell[:] @ (np.eye(3) + 0.04 * np.array([[0, 1, -1], [0.5, 0, 1], [-1, 0.3, 0]])), scale_atoms=True)
    a.rattle(0.15, seed=2)
    return a


def test_lj_calculator_matches_ase_and_numerical_derivatives(lj, argon):
    a = argon.copy()
    a.calc = Calculator(lj)
    ref = argon.copy()
    ref.calc = AseLJ(epsilon=EPS, sigma=SIG, rc=RC, smooth=False)
    assert a.get_potential_energy() == pytest.approx(ref.get_potential_energy(), rel=1e-12)
    assert a.get_potential_energy() == pytest.approx(a.get_potential_energies().sum(), rel=1e-12)
    assert a.calc.get_property("free_energy", a) == a.get_potential_energy()
    np.testing.assert_allclose(a.get_forces(), ref.get_forces(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.get_stress(), ref.get_stress(), rtol=0, atol=1e-14)
    numeric = calculate_numerical_forces(a, eps=1e-4)
    np.testing.assert_allclose(a.get_forces(), numeric, rtol=0, atol=1e-7)
    numeric_stress = calculate_numerical_stress(a, eps=1e-5)
    np.testing.assert_allclose(a.get_stress(), numeric_stress, rtol=0, atol=1e-8)


def test_schnet_calculator_numerical_forces_and_graph_reuse(schnet):
    a = molecule("CH3CH2OH")
    a.rattle(0.05, seed=1)
    calc = Calculator(schnet)
    a.calc = calc
    forces = a.get_forces()
    numeric = calculate_numerical_forces(a, eps=1e-4)
    np.testing.assert_allclose(forces, numeric, rtol=0, atol=1e-6 * max(1.0, np.abs(forces).max()))
    assert a.get_potential_energies().sum() == pytest.approx(a.get_potential_energy(), rel=1e-12)
    with pytest.raises(PropertyNotImplementedError):
        a.get_stress()  # a molecule has no stress
    # ~ 2 × 9 × 3 displaced calls above: one compiled shape for one atom count, with tight padding
    # (9 atoms + 1 padding atom -> 16; 72 pairs -> 96 from collate, + an eighth of headroom -> 128)
    assert len(calc.compiled_shapes) == 1
    (n_atoms, n_structures, n_pairs), = calc.compiled_shapes
    assert n_atoms == 16 and n_structures == 2 and 72 <= n_pairs <= 128


@pytest.mark.parametrize("which", ["lj", "schnet"])
def test_ase_bfgs_converges(which, lj, schnet):
    if which == "lj":
        a = bulk("Ar", "fcc", a=5.3, cubic=True)
        a.rattle(0.2, seed=4)
        a.calc = Calculator(lj)
    else:
        a = molecule("H2O")
        a.rattle(0.05, seed=4)
        a.calc = Calculator(schnet)
    start = a.copy()
    e0 = a.get_potential_energy()
    opt = BFGS(a, logfile=None)
    assert opt.run(fmax=0.01, steps=300)
    assert np.abs(a.get_forces()).max() < 0.01 * 1.01
    assert a.get_potential_energy() < e0
    if which == "lj":
        # ASE's own LJ calculator (same energies and forces to 1e-12) relaxed by the same BFGS from the same start
        # takes the same steps: the minima agree to float64 rounding of the path, not only to fmax.
        ref = start.copy()
        ref.calc = AseLJ(epsilon=EPS, sigma=SIG, rc=RC, smooth=False)
        BFGS(ref, logfile=None).run(fmax=0.01, steps=300)
        assert a.get_potential_energy() == pytest.approx(ref.get_potential_energy(), rel=1e-10)
        np.testing.assert_allclose(a.positions, ref.positions, rtol=0, atol=1e-8)
        # and the minimum is the perfect fcc lattice of that cell: with residual forces F (|F_i| < fmax) the
        # energy above it is ½ F·H⁻¹·F <= N fmax² / (2 λ_min), λ_min the softest non-translational mode of H
        perfect = bulk("Ar", "fcc", a=5.3, cubic=True)
        perfect.calc = AseLJ(epsilon=EPS, sigma=SIG, rc=RC, smooth=False)
        h, n = 1e-4, 3 * len(perfect)
        hessian = np.zeros((n, n))
        for k in range(n):
            for sign in (1, -1):
                moved = perfect.copy()
                moved.calc = perfect.calc
                moved.positions.reshape(-1)[k] += sign * h
                hessian[:, k] -= sign * moved.get_forces().reshape(-1) / (2 * h)
        modes = np.linalg.eigvalsh((hessian + hessian.T) / 2)
        assert np.abs(modes[:3]).max() < 1e-6 < modes[3]  # three translations, then a stable lattice
        excess = a.get_potential_energy() - perfect.get_potential_energy()
        assert 0 <= excess <= len(a) * 0.01**2 / (2 * modes[3]), (excess, modes[3])


def test_checkpoint_path_and_errors(schnet, tmp_path):
    path = schnet.save(tmp_path / "model.safetensors")
    a = molecule("CH4")
    a.calc = Calculator(str(path))
    b = a.copy()
    b.calc = Calculator(schnet)
    assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), rel=1e-13)
    with pytest.raises(UserError, match="checkpoint not found"):
        Calculator(tmp_path / "missing.safetensors")
    bad = Atoms("CHN", positions=[[0, 0, 0], [0, 0, 1.1], [0, 1.2, 0]])
    bad.calc = Calculator(schnet)
    with pytest.raises(UserError, match="atom 2 is N"):
        bad.get_potential_energy()
    with pytest.raises(UserError, match="not a potential"):
        Calculator(42)
