"""SchNet and PaiNN through Potential: symmetry, forces and stress against finite differences,
extensivity, padding, element checks, checkpoints and the registry."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from scipy.spatial.transform import Rotation

from mindsponge_mm.data import collate
from mindsponge_mm.errors import ConfigError, UserError
from mindsponge_mm.models import Potential, build

MODELS = ["schnet", "painn", "mace"]
CUTOFF = 4.0
SMALL = {
    "schnet": dict(cutoff=CUTOFF, n_features=16, n_interactions=2),
    "painn": dict(cutoff=CUTOFF, n_features=16, n_interactions=2),
    "mace": dict(cutoff=CUTOFF, n_channels=8, hidden_l=1, l_max=2, correlation=3, n_layers=2, radial_hidden=16),
}


def frames_of(*atoms_list):
    return [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": a.cell[:], "pbc": a.pbc} for a in atoms_list]


def run(potential, *atoms_list, **kwargs):
    frames = frames_of(*atoms_list)
    batch = collate(frames, potential.cutoff, dtype=potential.model.dtype_name, **kwargs)
    out = potential.evaluate(batch)
    n = sum(len(a) for a in atoms_list)
    return out["energy"][: len(atoms_list)], out["forces"][:n], out["stress"][: len(atoms_list)], out


@pytest.fixture(scope="module", params=[(m, d) for m in MODELS for d in ("float64", "float32")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def potential(request):
    name, dtype = request.param
    model = build(name, elements=["H", "C", "O", "Cu"], dtype=dtype, seed=1, **SMALL[name])
    model.set_energy_offsets({1: -13.6, 6: -1029.0, 8: -2041.0, 29: -3.5}, scale=0.7, shift=0.05)
    return Potential(model)


@pytest.fixture(scope="module")
def crystal():
    a = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    a.set_cell(a.cell[:] @ (np.eye(3) + 0.05 * np.array([[0, 1, -1], [0.5, 0, 1], [-1, 0.3, 0]])), scale_atoms=True)
    a.rattle(0.1, seed=2)
    return a


@pytest.fixture(scope="module")
def ethanol():
    a = molecule("CH3CH2OH")
    a.rattle(0.05, seed=3)
    return a


def tolerance(potential):
    return 1e-10 if potential.model.dtype_name == "float64" else 1e-5


def test_rotation_reflection_translation_permutation(potential, crystal, ethanol):
    tol = tolerance(potential)
    e0, f0, s0, _ = run(potential, crystal, ethanol)
    rng = np.random.default_rng(0)
    for k in range(3):
        q = Rotation.random(random_state=k).as_matrix() * (-1 if k == 2 else 1)  # k = 2: a reflection
        shift = rng.normal(size=3) * 3
        moved = []
        for a in (crystal, ethanol):
            b = a.copy()
            b.positions = a.positions @ q.T + shift
            b.set_cell(a.cell[:] @ q.T if a.pbc.any() else a.cell[:], scale_atoms=False)
            moved.append(b)
        e1, f1, s1, _ = run(potential, *moved)
        scale = np.abs(e0).max()
        assert np.abs(e1 - e0).max() <= tol * scale
        fscale = np.abs(f0).max()
        np.testing.assert_allclose(f1, f0 @ q.T, rtol=0, atol=tol * fscale * 10)
        np.testing.assert_allclose(s1[0], q @ s0[0] @ q.T, rtol=0, atol=tol * np.abs(s0[0]).max() * 10)
    perm = rng.permutation(len(ethanol))
    e2, f2, _, _ = run(potential, ethanol[perm])
    assert abs(e2[0] - e0[1]) <= tol * abs(e0[1])
    np.testing.assert_allclose(f2, f0[len(crystal):][perm], rtol=0, atol=tol * np.abs(f0).max() * 10)


def _energy(potential, atoms):
    return float(run(potential, atoms)[0][0])


def five_point(f, h):
    """f'(0) from f(±h), f(±2h): error O(h⁴), so h can be large enough to beat rounding."""
    return (8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h)


def test_forces_and_stress_match_finite_differences(potential, crystal, ethanol):
    if potential.model.dtype_name != "float64":
        pytest.skip("finite differences are checked in float64")
    # without the large per-element offsets (~4000 eV for ethanol), whose rounding would swamp the stencil;
    # the shared fixture gets them back whether or not the checks pass
    potential.model.set_energy_offsets(None, scale=0.7, shift=0.05)
    try:
        _check_forces_and_stress_by_finite_differences(potential, crystal, ethanol)
    finally:
        potential.model.set_energy_offsets({1: -13.6, 6: -1029.0, 8: -2041.0, 29: -3.5}, scale=0.7, shift=0.05)


def _check_forces_and_stress_by_finite_differences(potential, crystal, ethanol):
    h = 1e-4  # small enough that no pair crosses the cutoff inside the stencil
    for atoms in (crystal, ethanol):
        _, forces, _, _ = run(potential, atoms)
        for atom, axis in [(0, 0), (1, 2), (len(atoms) - 1, 1)]:
            def energy(dx):
                moved = atoms.copy()
                moved.positions[atom, axis] += dx
                return _energy(potential, moved)

            assert forces[atom, axis] == pytest.approx(-five_point(energy, h), rel=1e-6, abs=1e-9)
    _, _, stress, _ = run(potential, crystal)
    volume = crystal.get_volume()
    for a, b in [(0, 0), (1, 1), (0, 1), (1, 2), (0, 2)]:
        def energy(e):
            eps = np.zeros((3, 3))
            eps[a, b] += e / 2
            eps[b, a] += e / 2
            strained = crystal.copy()
            strained.set_cell(crystal.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
            return _energy(potential, strained)

        assert stress[0, a, b] == pytest.approx(five_point(energy, h) / volume, rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(stress[0], stress[0].T, atol=1e-12)


def test_supercell_energy_is_extensive(potential, crystal):
    e1 = run(potential, crystal)[0][0]
    e8 = run(potential, crystal * (2, 2, 1))[0][0]
    assert e8 == pytest.approx(4 * e1, rel=tolerance(potential) * 10)


def test_padding_contributes_nothing(potential, ethanol, crystal):
    e_tight, f_tight, _, _ = run(potential, ethanol, crystal, atom_multiple=1, pair_multiple=1)
    e_loose, f_loose, _, out = run(potential, ethanol, crystal, n_structures=5, atom_multiple=64, pair_multiple=512)
    tol = tolerance(potential)
    np.testing.assert_allclose(e_loose, e_tight, rtol=tol, atol=0)
    np.testing.assert_allclose(f_loose, f_tight, rtol=0, atol=tol * np.abs(f_tight).max())
    n = len(ethanol) + len(crystal)
    assert np.all(out["forces"][n:] == 0) and np.all(out["energies"][n:] == 0) and np.all(out["energy"][2:] == 0)
    assert np.isfinite(out["forces"]).all() and np.isfinite(out["stress"]).all()


def test_molecule_stress_is_zero(potential, ethanol):
    assert np.all(run(potential, ethanol)[2] == 0)


def test_molecules_use_the_energy_forces_graph_with_the_same_results(potential, ethanol):
    """evaluate() runs the smaller energy+forces graph for batches without periodic structures: the same
    energies and forces as the full (stress) graph, and a zero stress."""
    import mindspore as ms

    batch = collate(frames_of(ethanol, ethanol), potential.cutoff, dtype=potential.model.dtype_name)
    out = potential.evaluate(batch)
    assert potential._jit_energy_forces is not None
    energy, energies, forces, stress = ms.jit(potential.construct)(*potential.inputs(batch))
    tol = tolerance(potential)
    np.testing.assert_allclose(out["forces"], forces.asnumpy(), rtol=0, atol=tol * np.abs(out["forces"]).max())
    np.testing.assert_allclose(out["energy"], energy.asnumpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(out["energies"], energies.asnumpy(), rtol=tol, atol=tol)
    assert out["stress"].shape == stress.shape and np.all(out["stress"] == 0) and np.all(stress.asnumpy() == 0)


def test_unknown_element_is_a_clear_error(potential):
    atoms = Atoms("NH3", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(UserError, match="atom 0 is N, which this .* model was not built for \\(elements: H, C, O, Cu\\)"):
        run(potential, atoms)


def test_checkpoint_round_trip(potential, ethanol, tmp_path):
    path = potential.save(tmp_path / "model.safetensors")
    loaded = Potential.load(path)
    assert loaded.model.hyperparameters == potential.model.hyperparameters
    assert loaded.cutoff == CUTOFF and loaded.elements == [1, 6, 8, 29]
    np.testing.assert_array_equal(run(loaded, ethanol)[1], run(potential, ethanol)[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_checkpoint_errors(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        Potential.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        Potential.load(tmp_path / "junk.safetensors")


def test_registry_errors():
    with pytest.raises(ConfigError, match="unknown model 'schnett'; did you mean 'schnet'"):
        build("schnett", elements=["H"])
    with pytest.raises(ConfigError, match="has no hyperparameter 'n_feature'; did you mean 'n_features'"):
        build("painn", elements=["H"], n_feature=8)
    with pytest.raises(ConfigError, match="needs elements"):
        build("schnet")
    with pytest.raises(ConfigError, match="unknown element symbol 'Xx'"):
        build("schnet", elements=["Xx"])


def test_offsets_set_after_compilation_are_used(potential, ethanol):
    """Parameters changed on the host after the graph compiled must reach the graph (copy_, not set_data)."""
    before = run(potential, ethanol)[0][0]
    potential.model.set_energy_offsets({1: -12.6, 6: -1029.0, 8: -2041.0, 29: -3.5}, scale=0.7, shift=0.05)
    try:
        after = run(potential, ethanol)[0][0]
    finally:
        potential.model.set_energy_offsets({1: -13.6, 6: -1029.0, 8: -2041.0, 29: -3.5}, scale=0.7, shift=0.05)
    # six H atoms, 1 eV each; ~4200 eV is summed in the model's dtype (float32 resolves 4.9e-4 eV there),
    # so allow a few roundings of the 9-atom sum in each energy: 16 ulps of the magnitude
    ulp = np.spacing(np.array(abs(before), dtype=potential.model.dtype_name))
    assert after - before == pytest.approx(6.0, rel=0, abs=16 * ulp)


def test_integer_power_and_envelope_exponent():
    """Products replace Pow (not bit-reproducible on the CPU): same values as numpy; bad exponents are a config error."""
    import mindspore as ms

    from mindsponge_mm.errors import ConfigError
    from mindsponge_mm.nn.basis import PolynomialEnvelope, _integer_power

    x = np.linspace(0.0, 1.2, 7)
    for n in (1, 2, 3, 5, 6, 7, 12):
        np.testing.assert_allclose(_integer_power(ms.Tensor(x), n).asnumpy(), x**n, rtol=1e-14)
    p, d = 5, np.linspace(0.1, 6.0, 9)
    u = np.minimum(d / 5.0, 1.0)
    expected = (1 - (p + 1) * (p + 2) / 2 * u**p + p * (p + 2) * u ** (p + 1) - p * (p + 1) / 2 * u ** (p + 2)) * (d < 5.0)
    np.testing.assert_allclose(PolynomialEnvelope(5.0, p)(ms.Tensor(d)).asnumpy(), expected, atol=1e-14)
    with pytest.raises(ConfigError, match="envelope_p"):
        PolynomialEnvelope(5.0, 5.5)


def test_painn_fused_radial_filters_equal_the_per_layer_filters():
    """PaiNN runs each layer's filters as matmuls with the bias and cutoff folded in, the vector blocks
    repeated per component; they must equal (rbf W_t + b_t) · fcut, split into [s | vv | vs] (the
    weights keep their per-layer names in checkpoints)."""
    import mindspore as ms

    model = build("painn", elements=["H", "C"], dtype="float64", seed=4, **SMALL["painn"])
    for f in model.filters:  # non-zero biases, so that their folding is tested too
        f.bias.copy_(ms.Tensor(np.random.default_rng(5).normal(size=f.bias.shape)))
    rng = np.random.default_rng(6)
    rbf, fcut = rng.normal(size=(7, 20)), rng.uniform(0, 1, (7, 1))
    fused = model.radial_filters(ms.Tensor(rbf), ms.Tensor(fcut))
    assert len(fused) == len(model.filters)
    n = model.n_features
    for (w_s, w_vv3, w_vs3), f in zip(fused, model.filters):
        expected = (rbf @ f.weight.asnumpy() + f.bias.asnumpy()) * fcut
        np.testing.assert_allclose(w_s.asnumpy(), expected[:, :n], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(w_vv3.asnumpy(), np.tile(expected[:, n:2 * n], 3), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(w_vs3.asnumpy(), np.tile(expected[:, 2 * n:], 3), rtol=1e-12, atol=1e-12)
