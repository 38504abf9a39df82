"""Classical potentials: Lennard-Jones against ASE's calculator and a numpy double loop, tail
corrections against their formulas and numerical integrals, derivatives against finite differences,
padding, sums of potentials and the registry."""
import itertools
import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.lj import LennardJones as AseLJ
from ase.neighborlist import neighbor_list
from ase.stress import full_3x3_to_voigt_6_stress
from scipy.integrate import quad

from mindsponge_mm.batch import pad_pairs
from mindsponge_mm.data import collate
from mindsponge_mm.errors import ConfigError, UserError
from mindsponge_mm.potentials import LennardJones, SumPotential, build, from_config

EPS, SIG, RC = 0.0104, 3.4, 7.5


def frames_of(*atoms_list):
    return [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": a.cell[:], "pbc": a.pbc} for a in atoms_list]


def evaluate(potential, *atoms_list, cutoff=None, **kwargs):
    batch = collate(frames_of(*atoms_list), cutoff or potential.cutoff, dtype=potential.dtype_name, **kwargs)
    return potential.evaluate(batch), batch


def random_cell(cell, n, min_dist, seed, symbols="Ar"):
    """n atoms at random fractional positions, no two images closer than min_dist (Å)."""
    rng = np.random.default_rng(seed)
    atoms = Atoms(symbols * n if len(symbols) <= 2 else symbols, cell=cell, pbc=True)
    frac = []
    while len(frac) < n:
        x = rng.random(3)
        ok = True
        for y in frac:
            d = x - y
            d -= np.round(d)
            if np.linalg.norm(d @ np.asarray(cell)) < min_dist:
                ok = False
                break
        if ok:
            frac.append(x)
    atoms.set_scaled_positions(np.array(frac))
    return atoms


TRICLINIC = np.array([[9.0, 0.0, 0.0], [2.5, 8.5, 0.0], [-1.5, 2.0, 9.5]])
CUBIC = 10.0 * np.eye(3)


@pytest.fixture(scope="module")
def configs():
    return [random_cell(CUBIC, 14, 3.0, 0), random_cell(TRICLINIC, 12, 3.0, 1)]


@pytest.fixture(scope="module", params=["float64", "float32"])
def dtype(request):
    return request.param


def ase_reference(atoms, shift):
    a = atoms.copy()
    a.calc = AseLJ(epsilon=EPS, sigma=SIG, rc=RC, smooth=False)
    e, f, ea = a.get_potential_energy(), a.get_forces(), a.get_potential_energies()
    s = a.get_stress() if a.pbc.all() else None
    if not shift:  # ASE always shifts u by u(rc) inside rc: undo it per pair
        e_cut = 4 * EPS * ((SIG / RC) ** 12 - (SIG / RC) ** 6)
        i = neighbor_list("i", a, RC)
        per_atom = 0.5 * e_cut * np.bincount(i, minlength=len(a))
        e, ea = e + per_atom.sum(), ea + per_atom
    return e, f, s, ea


@pytest.mark.parametrize("shift", [True, False])
def test_lennard_jones_matches_ase(configs, dtype, shift):
    lj = LennardJones(epsilon={"Ar": EPS}, sigma={"Ar": SIG}, cutoff=RC, shift=shift, dtype=dtype)
    cluster = molecule("CH4")  # as a non-periodic Ar5 cluster
    cluster.numbers[:] = 18
    cluster.positions *= 3.4
    structures = configs + [cluster]
    out, _ = evaluate(lj, *structures)
    tol = 1e-11 if dtype == "float64" else 2e-5
    start = 0
    for k, atoms in enumerate(structures):
        e, f, s, ea = ase_reference(atoms, shift)
        n = len(atoms)
        fscale = np.abs(f).max()
        assert abs(out["energy"][k] - e) <= tol * max(abs(e), 1.0)
        np.testing.assert_allclose(out["forces"][start:start + n], f, rtol=0, atol=tol * fscale * 10)
        np.testing.assert_allclose(out["energies"][start:start + n], ea, rtol=0, atol=tol * max(np.abs(ea).max(), 1e-3) * 10)
        if atoms.pbc.all():
            np.testing.assert_allclose(full_3x3_to_voigt_6_stress(out["stress"][k]), s, rtol=0, atol=tol * np.abs(s).max() * 10)
        else:
            assert np.all(out["stress"][k] == 0)
        start += n


# ---------------------------------------------------------------------- mixture vs a numpy double loop
MIX = dict(epsilon={"Ar": 0.0104, "Kr": 0.014}, sigma={"Ar": 3.4, "Kr": 3.65},
           pairs={"Ar-Kr": {"epsilon": 0.0115}}, cutoff=8.0)


def lj_params(zi, zj):
    eps = {18: 0.0104, 36: 0.014}
    sig = {18: 3.4, 36: 3.65}
    e = 0.0115 if {zi, zj} == {18, 36} else math.sqrt(eps[zi] * eps[zj])
    return e, 0.5 * (sig[zi] + sig[zj])


def double_loop(atoms, rc, shift):
    """E, per-atom E, F, stress [3, 3] of a two-element LJ by brute force over images."""
    pos, cell, z = atoms.positions, atoms.cell[:], atoms.numbers
    n = len(atoms)
    recip = np.linalg.inv(cell).T
    reps = [int(math.ceil(rc * np.linalg.norm(recip[k]))) + 1 for k in range(3)]
    energy, energies = 0.0, np.zeros(n)
    forces, virial = np.zeros((n, 3)), np.zeros((3, 3))
    for i in range(n):
        for j in range(n):
            e, s = lj_params(z[i], z[j])
            ucut = 4 * e * ((s / rc) ** 12 - (s / rc) ** 6) if shift else 0.0
            for sh in itertools.product(*(range(-m, m + 1) for m in reps)):
                if i == j and sh == (0, 0, 0):
                    continue
                d = pos[j] - pos[i] + np.array(sh) @ cell
                r = np.linalg.norm(d)
                if r >= rc:
                    continue
                u = 4 * e * ((s / r) ** 12 - (s / r) ** 6) - ucut
                du = 4 * e * (-12 * s ** 12 / r ** 13 + 6 * s ** 6 / r ** 7)
                energy += 0.5 * u
                energies[i] += 0.5 * u
                forces[i] += du * d / r
                virial += 0.5 * du * np.outer(d, d) / r
    return energy, energies, forces, virial / atoms.get_volume()


def mixture(seed=3):
    a = random_cell(TRICLINIC, 10, 3.2, seed)
    a.numbers[::3] = 36
    return a


def test_mixture_matches_double_loop():
    atoms = mixture()
    lj = LennardJones(shift=True, dtype="float64", **MIX)
    out, _ = evaluate(lj, atoms)
    e, ea, f, s = double_loop(atoms, 8.0, shift=True)
    n = len(atoms)
    assert abs(out["energy"][0] - e) < 1e-12 * max(1, abs(e))
    np.testing.assert_allclose(out["energies"][:n], ea, rtol=0, atol=1e-13)
    np.testing.assert_allclose(out["forces"][:n], f, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["stress"][0], s, rtol=0, atol=1e-14)
    assert lj.elements == [18, 36]
    np.testing.assert_allclose(lj.epsilon_table, [[0.0104, 0.0115], [0.0115, 0.014]])
    np.testing.assert_allclose(lj.sigma_table, [[3.4, 3.525], [3.525, 3.65]])


def test_forces_and_stress_against_finite_differences():
    atoms = mixture(seed=4)
    atoms.rattle(0.05, seed=1)
    lj = LennardJones(shift=True, dtype="float64", **MIX)
    out, _ = evaluate(lj, atoms)
    n = len(atoms)

    def energy(a):
        return evaluate(lj, a)[0]["energy"][0]

    h = 1e-5
    fd = np.zeros((n, 3))
    for i in range(n):
        for k in range(3):
            p, m = atoms.copy(), atoms.copy()
            p.positions[i, k] += h
            m.positions[i, k] -= h
            fd[i, k] = -(energy(p) - energy(m)) / (2 * h)
    np.testing.assert_allclose(out["forces"][:n], fd, rtol=0, atol=1e-7 * max(1.0, np.abs(fd).max()))
    fd_stress = np.zeros((3, 3))
    volume = atoms.get_volume()
    for k, l in itertools.product(range(3), range(3)):
        eps = np.zeros((3, 3))
        eps[k, l] = eps[l, k] = h / 2 if k != l else h  # symmetric strain, ∂/∂ε_kl of the symmetric part
        values = []
        for sign in (1, -1):
            a = atoms.copy()
            a.set_cell(atoms.cell[:] @ (np.eye(3) + sign * eps), scale_atoms=True)
            values.append(energy(a))
        fd_stress[k, l] = (values[0] - values[1]) / (2 * h) / volume
    np.testing.assert_allclose(out["stress"][0], fd_stress, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------- tail corrections
def test_tail_corrections_one_component():
    atoms = random_cell(CUBIC * 1.2, 20, 3.0, 5)
    base = LennardJones(EPS, SIG, RC, dtype="float64")
    tail = LennardJones(EPS, SIG, RC, tail=True, dtype="float64")
    (o0, _), (o1, _) = evaluate(base, atoms), evaluate(tail, atoms)
    n, v = len(atoms), atoms.get_volume()
    rho, x = n / v, SIG / RC
    e_tail = 8 / 3 * math.pi * n * rho * EPS * SIG ** 3 * (x ** 9 / 3 - x ** 3)
    p_tail = 16 / 3 * math.pi * rho ** 2 * EPS * SIG ** 3 * (2 / 3 * x ** 9 - x ** 3)
    assert e_tail < 0 and p_tail < 0
    assert o1["energy"][0] - o0["energy"][0] == pytest.approx(e_tail, rel=1e-12)
    np.testing.assert_allclose(o1["stress"][0] - o0["stress"][0], -p_tail * np.eye(3), rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(o1["energies"][:n] - o0["energies"][:n], e_tail / n, rtol=1e-12)
    np.testing.assert_array_equal(o1["forces"], o0["forces"])


def test_tail_corrections_mixture_against_integrals():
    atoms = mixture(seed=6)
    cluster = atoms.copy()
    cluster.pbc = False
    lj0 = LennardJones(dtype="float64", **MIX)
    lj1 = LennardJones(tail=True, dtype="float64", **MIX)
    (o0, _), (o1, _) = evaluate(lj0, atoms, cluster), evaluate(lj1, atoms, cluster)
    rc, v, z = 8.0, atoms.get_volume(), atoms.numbers
    counts = {18: int(np.sum(z == 18)), 36: int(np.sum(z == 36))}
    e_tail = p_tail = p_impulse = 0.0
    per_element = {18: 0.0, 36: 0.0}
    for za, zb in itertools.product(counts, counts):
        e, s = lj_params(za, zb)

        def u(r):
            return 4 * e * ((s / r) ** 12 - (s / r) ** 6)

        def du(r):
            return 4 * e * (-12 * s ** 12 / r ** 13 + 6 * s ** 6 / r ** 7)

        nn = counts[za] * counts[zb]
        integral = quad(lambda r: 4 * math.pi * r * r * u(r), rc, np.inf, epsabs=0, epsrel=1e-13)[0]
        e_tail += 0.5 * nn / v * integral  # ½ Σ_ab N_a N_b / V ∫ 4πr² u, g = 1 beyond rc
        per_element[za] += 0.5 * counts[zb] / v * integral
        p_tail += -2 * math.pi / 3 * nn / v ** 2 * quad(lambda r: r ** 3 * du(r), rc, np.inf, epsabs=0, epsrel=1e-13)[0]
        p_impulse += 2 * math.pi / 3 * nn / v ** 2 * rc ** 3 * u(rc)
    assert o1["energy"][0] - o0["energy"][0] == pytest.approx(e_tail, rel=1e-9)
    np.testing.assert_allclose(np.diag(o1["stress"][0] - o0["stress"][0]), -p_tail, rtol=1e-9)
    n = len(atoms)
    np.testing.assert_allclose(o1["energies"][:n] - o0["energies"][:n], [per_element[k] for k in z], rtol=1e-9)
    # the documented relation: P_tail = -dE_tail/dV + impulsive term of the truncation
    de_dv = -(e_tail * v) / v ** 2  # E_tail ∝ 1/V at fixed composition
    assert p_tail == pytest.approx(-de_dv + p_impulse, rel=1e-9)
    # a non-periodic structure gets no tail
    assert o1["energy"][1] == pytest.approx(o0["energy"][1], abs=1e-15)
    assert np.all(o1["stress"][1] == 0)


# ---------------------------------------------------------------------- padding
def test_padding_contributes_nothing(configs):
    lj = LennardJones(EPS, SIG, RC, shift=True, tail=True, dtype="float64")
    a = configs[1]
    ref, batch = evaluate(lj, a)
    n, p = len(a), int(batch.pair_mask.sum())
    big = pad_pairs(batch, batch.shape[2] + 512)
    # make the padding as hostile as possible: zero-length pairs (atom 0 to itself, no shift) and
    # masked pairs between real atoms at short range
    idx_i, idx_j, shifts = big.idx_i.copy(), big.idx_j.copy(), big.shifts.copy()
    idx_i[p:p + 256] = idx_j[p:p + 256] = 0
    shifts[p:] = 0.0
    idx_i[p + 256:], idx_j[p + 256:] = 0, 1
    hostile = big.replace(idx_i=idx_i, idx_j=idx_j, shifts=shifts)
    out = lj.evaluate(hostile)
    for key in ("energy", "energies", "forces", "stress"):
        assert np.isfinite(out[key]).all()
    assert out["energy"][0] == pytest.approx(ref["energy"][0], rel=1e-14)
    np.testing.assert_allclose(out["forces"][:n], ref["forces"][:n], rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["stress"], ref["stress"], rtol=0, atol=1e-17)
    np.testing.assert_array_equal(out["energies"][n:], 0)
    np.testing.assert_array_equal(out["forces"][n:], 0)
    # more structures and atom padding change nothing either
    both, _ = evaluate(lj, configs[0], a, n_structures=4, atom_multiple=64)
    assert both["energy"][1] == pytest.approx(ref["energy"][0], rel=1e-13)
    assert np.all(both["energy"][2:] == 0)


# ---------------------------------------------------------------------- sums
def test_sum_uses_each_cutoff_and_adds(configs):
    a = configs[0]
    far = LennardJones(EPS, SIG, RC, shift=True, dtype="float64")
    near = LennardJones(0.002, 3.0, 5.0, shift=True, dtype="float64")
    total = SumPotential([far, near])
    assert total.cutoff == RC and total.elements is None
    out, _ = evaluate(total, a)
    o_far, _ = evaluate(far, a)
    o_near, _ = evaluate(near, a)  # its own (shorter) pair list
    n = len(a)
    assert out["energy"][0] == pytest.approx(o_far["energy"][0] + o_near["energy"][0], rel=1e-13)
    np.testing.assert_allclose(out["forces"][:n], o_far["forces"][:n] + o_near["forces"][:n], rtol=0, atol=1e-14)
    np.testing.assert_allclose(out["stress"], o_far["stress"] + o_near["stress"], rtol=0, atol=1e-16)
    # the near term alone on the longer list: pairs beyond 5 Å are ignored
    o_near_long, _ = evaluate(near, a, cutoff=RC)
    assert o_near_long["energy"][0] == pytest.approx(o_near["energy"][0], rel=1e-13)
    with pytest.raises(ConfigError, match="twice"):
        SumPotential([far, far])
    with pytest.raises(ConfigError, match="dtype"):
        SumPotential([far, LennardJones(EPS, SIG, RC)])


def test_sum_with_a_learned_potential(tmp_path):
    from mindsponge_mm.models import Potential
    from mindsponge_mm.models import build as build_model

    model = build_model("schnet", elements=["Ar"], cutoff=4.0, n_features=8, n_interactions=1, dtype="float64", seed=2)
    nnp = Potential(model)
    path = nnp.save(tmp_path / "schnet.safetensors")
    lj_spec = {"type": "lennard_jones", "epsilon": {"Ar": EPS}, "sigma": {"Ar": SIG}, "cutoff": 6.0, "shift": True,
               "dtype": "float64"}
    total = from_config({"type": "sum", "terms": [{"type": "checkpoint", "path": str(path)}, lj_spec]})
    assert total.cutoff == 6.0 and total.elements == [18]
    a = bulk("Ar", "fcc", a=5.3) * (2, 2, 2)
    a.rattle(0.1, seed=0)
    out, _ = evaluate(total, a)
    o_nnp, _ = evaluate(nnp, a)
    o_lj, _ = evaluate(from_config(lj_spec), a)
    n = len(a)
    assert out["energy"][0] == pytest.approx(o_nnp["energy"][0] + o_lj["energy"][0], rel=1e-12)
    np.testing.assert_allclose(out["forces"][:n], o_nnp["forces"][:n] + o_lj["forces"][:n], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["stress"][0], o_nnp["stress"][0] + o_lj["stress"][0], rtol=0, atol=1e-13)
    with pytest.raises(UserError, match="Kr"):
        evaluate(total, Atoms("ArKr", positions=[[0, 0, 0], [0, 0, 3.5]]))


# ---------------------------------------------------------------------- registry and errors
def test_registry_builds_from_yaml_and_reports_mistakes(configs):
    spec = {"type": "lennard_jones", "epsilon": {"Ar": EPS}, "sigma": {"Ar": SIG}, "cutoff": 8.5, "shift": True}
    lj = from_config(spec)
    assert isinstance(lj, LennardJones) and lj.cutoff == 8.5 and lj.shift and lj.elements == [18]
    assert lj.dtype_name == "float32"
    with pytest.raises(ConfigError, match="did you mean 'lennard_jones'"):
        build("lenard_jones", epsilon=EPS, sigma=SIG, cutoff=8.0)
    with pytest.raises(ConfigError, match="did you mean 'cutoff'"):
        build("lennard_jones", epsilon=EPS, sigma=SIG, cutof=8.0)
    with pytest.raises(ConfigError, match="needs cutoff"):
        build("lennard_jones", epsilon=EPS, sigma=SIG)
    with pytest.raises(ConfigError, match="'Xx' is not an element"):
        build("lennard_jones", epsilon={"Xx": EPS}, sigma=SIG, cutoff=8.0)
    with pytest.raises(ConfigError, match="no sigma for Kr"):
        build("lennard_jones", epsilon={"Ar": EPS, "Kr": 0.014}, sigma={"Ar": SIG}, cutoff=8.0)
    with pytest.raises(ConfigError, match="positive"):
        build("lennard_jones", epsilon=EPS, sigma=-1.0, cutoff=8.0)
    with pytest.raises(ConfigError, match="'type' key"):
        from_config({"epsilon": EPS})
    # elements without parameters are a one-line UserError at evaluation
    with pytest.raises(UserError, match="atom 1 is Ne.*add Ne"):
        evaluate(lj, Atoms("ArNe", positions=[[0, 0, 0], [0, 0, 3.5]]))
    # a pair override alone is enough for a pair whose elements have no per-element values
    lj2 = build("lennard_jones", epsilon={"Ar": EPS}, sigma={"Ar": SIG}, cutoff=8.0,
                pairs={"Ar-Ne": {"epsilon": 0.005, "sigma": 3.1}, "Ne-Ne": {"epsilon": 0.003, "sigma": 2.8}})
    assert lj2.elements == [10, 18]
    # one compiled graph per padded shape
    lj3 = LennardJones(EPS, SIG, RC, dtype="float64")
    for seed in range(3):
        b = configs[0].copy()
        b.rattle(0.02, seed=seed)
        evaluate(lj3, b)
    assert len(lj3.compiled_shapes) == 1


# ---------------------------------------------------------------------- the contract
def test_the_contract_names_what_a_potential_lacks_and_adapts_plain_cells():
    from mindspore import nn

    from mindsponge_mm.batch import GRAPH_INPUTS
    from mindsponge_mm.potentials import CellPotential, PotentialBase, as_potential

    class Bare(PotentialBase):
        pass

    bare = Bare()
    for name in ("cutoff", "elements", "dtype_name"):
        with pytest.raises(NotImplementedError, match=f"Bare does not set '{name}'"):
            getattr(bare, name)
    with pytest.raises(NotImplementedError, match="Bare does not implement construct"):
        bare.construct(*GRAPH_INPUTS)
    assert Bare.GRAPH_INPUTS == GRAPH_INPUTS and GRAPH_INPUTS[0] == "positions" and len(GRAPH_INPUTS) == 10
    lj = LennardJones(EPS, SIG, RC)
    assert as_potential(lj) is lj and lj.cheap_pairs and not PotentialBase.cheap_pairs

    class Plain(nn.Cell):
        cutoff = 5.0

        def construct(self, *inputs):
            return lj(*inputs)

    wrapped = as_potential(Plain())
    assert isinstance(wrapped, CellPotential) and wrapped.cutoff == 5.0 and wrapped.dtype_name == "float32"
    assert wrapped.elements is None and not wrapped.cheap_pairs
    with pytest.raises(UserError, match="not a potential"):
        as_potential(42)

    class Argon(Plain):
        elements = [18]

    argon = as_potential(Argon())
    argon.check_elements(np.array([18, 0]), np.array([True, False]))  # padding atoms are not checked
    with pytest.raises(UserError, match="atom 1 is Kr, which this CellPotential has no parameters for"):
        argon.check_elements(np.array([18, 36]), np.ones(2, bool))
    with pytest.raises(ConfigError, match="not a potential"):
        SumPotential([lj, Plain()])


def test_default_energy_forces_is_the_full_call_without_stress():
    """LJ has no energy_forces of its own: molecules run the contract's default, with the same numbers."""
    from mindsponge_mm.potentials import PotentialBase

    lj = LennardJones(EPS, SIG, RC, dtype="float64")
    assert type(lj).energy_forces is PotentialBase.energy_forces
    mol = molecule("CH4")
    mol.set_chemical_symbols(["Ar"] * len(mol))
    mol.positions *= 3.0
    out, batch = evaluate(lj, mol)  # not periodic: the energy_forces graph
    assert lj._jit_energy_forces is not None and lj._jit_construct is None
    energy, energies, forces, stress = lj(*lj.inputs(batch))  # the full call (PyNative)
    np.testing.assert_allclose(out["forces"], forces.asnumpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out["energy"], energy.asnumpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out["energies"], energies.asnumpy(), rtol=1e-12, atol=1e-15)
    assert np.abs(out["forces"]).max() > 1e-4 and not out["stress"].any() and not stress.asnumpy().any()


def test_sum_of_a_learned_and_a_classical_potential_on_a_molecule():
    """Molecules run SumPotential.energy_forces: the learned term's graph without strain plus LJ's default."""
    from mindsponge_mm.models import Potential
    from mindsponge_mm.models import build as build_model

    def terms():
        model = build_model("schnet", elements=["Ar"], cutoff=4.0, n_features=8, n_interactions=1, dtype="float64",
                            seed=2)
        return Potential(model), LennardJones(EPS, SIG, 6.0, shift=True, dtype="float64")

    total = SumPotential(terms())
    nnp, lj = terms()
    a = Atoms("Ar4", positions=[[0, 0, 0], [3.6, 0, 0], [0, 3.7, 0.2], [1.8, 1.9, 3.1]])
    out, _ = evaluate(total, a, cutoff=6.0)
    o_nnp, _ = evaluate(nnp, a, cutoff=6.0)
    o_lj, _ = evaluate(lj, a, cutoff=6.0)
    assert total._jit_energy_forces is not None and total._jit_construct is None
    assert out["energy"][0] == pytest.approx(o_nnp["energy"][0] + o_lj["energy"][0], rel=1e-12)
    np.testing.assert_allclose(out["forces"][:4], o_nnp["forces"][:4] + o_lj["forces"][:4], rtol=0, atol=1e-12)
    assert not out["stress"].any()
