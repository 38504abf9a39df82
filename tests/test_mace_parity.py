"""Our MACE against mace-torch 0.3.16's ScaleShiftMACE for the same weights.

The fixtures (tests/fixtures/mace, written by tests/make_mace_fixtures.py in the peers environment)
hold random-weight mace-torch models of several architectures, structures, and mace-torch's
energies, per-atom energies, forces and stress in float64. The live tests regenerate them with
mace-torch: in this process when ``mace`` imports, or with the interpreter named by
``MINDSPONGE_MM_MACE_PYTHON`` (e.g. /work/peers-venv/bin/python) in a subprocess.

``mp0b`` is MACE-MP-0b's architecture: ZBL pair repulsion and the Agnesi distance transform (with
buffers moved off mace-torch's defaults, so the converter must read them), evaluated also on
``close`` and ``close_cell`` (pairs at 0.7-1.0 Å, where ZBL matters).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mindsponge_mm.data import collate
from mindsponge_mm.errors import UserError
from mindsponge_mm.models import Potential
from mindsponge_mm.models.mace_convert import model_from_mace_state_dict

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mace"
ARCHITECTURES = ["mp_medium", "off23", "hidden_l0", "hidden_l2", "single", "mp0b"]
STRUCTURES = ["ethanol", "water", "triclinic", "small_cell", "isolated", "pair"]
CLOSE = ["close", "close_cell"]  # architectures with pair repulsion


def structure_names(hparams: dict) -> list:
    return STRUCTURES + (CLOSE if hparams.get("pair_repulsion") else [])


def load_fixture(directory: Path, arch: str):
    data = np.load(directory / f"{arch}.npz")
    state = {k[len("state/"):]: data[k] for k in data.files if k.startswith("state/")}
    hparams = json.loads((directory / f"{arch}.json").read_text())
    names = structure_names(hparams)
    structures = np.load(directory / "structures.npz")
    frames = [{"atomic_numbers": structures[f"{arch}/{s}/numbers"], "positions": structures[f"{arch}/{s}/positions"],
               "cell": structures[f"{arch}/{s}/cell"], "pbc": structures[f"{arch}/{s}/pbc"]} for s in names]
    reference = {s: {q: data[f"{q}/{s}"] for q in ("energy", "node_energy", "forces", "stress")} for s in names}
    return state, hparams, frames, reference


def evaluate(potential, frames):
    """Per structure: (energy, per-atom energies, forces, stress) of one padded batch."""
    batch = collate(frames, potential.cutoff, dtype=potential.model.dtype_name)
    out = potential.evaluate(batch)
    results, start = [], 0
    for k, frame in enumerate(frames):
        n = len(frame["atomic_numbers"])
        results.append((out["energy"][k], out["energies"][start:start + n], out["forces"][start:start + n],
                        out["stress"][k]))
        start += n
    return results


def compare(directory: Path, arch: str, dtype: str = "float64"):
    """Largest |ours - mace-torch| per quantity (absolute), and the largest reference magnitude."""
    state, hparams, frames, reference = load_fixture(directory, arch)
    potential = Potential(model_from_mace_state_dict(state, hparams, dtype=dtype))
    return differences(potential, frames, reference, structure_names(hparams))


def differences(potential, frames, reference, names):
    errors = {"energy": 0.0, "node_energy": 0.0, "forces": 0.0, "stress": 0.0}
    scale = dict(errors)
    for name, (e, ne, f, s) in zip(names, evaluate(potential, frames)):
        ref = reference[name]
        for q, ours in (("energy", e), ("node_energy", ne), ("forces", f), ("stress", s)):
            errors[q] = max(errors[q], float(np.abs(np.ravel(ours) - np.ravel(ref[q])).max()))
            scale[q] = max(scale[q], float(np.abs(ref[q]).max()))
    return errors, scale


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if a != "mp0b"])
def test_float64_parity(arch):
    errors, scale = compare(FIXTURES, arch)
    assert max(errors.values()) < 1e-10, (errors, scale)


@pytest.fixture(scope="module")
def mp0b():
    """The mp0b fixture converted and compiled once (the live test reuses the graph with new weights)."""
    state, hparams, frames, reference = load_fixture(FIXTURES, "mp0b")
    return Potential(model_from_mace_state_dict(state, hparams)), frames, reference, structure_names(hparams)


def test_zbl_agnesi_parity(mp0b):
    """MACE-MP-0b's ZBL + Agnesi against mace-torch's numbers, close pairs and a small cell included."""
    potential, frames, reference, names = mp0b
    assert potential.model.hyperparameters["pair_repulsion"] is True
    assert potential.model.hyperparameters["distance_transform"] == "agnesi"
    errors, scale = differences(potential, frames, reference, names)
    assert max(errors.values()) < 1e-10, (errors, scale)


def test_live_zbl_agnesi(mp0b):
    """mace-torch now: a new random ScaleShiftMACE with ZBL and Agnesi (float64), its hyperparameters
    read from the module as for a ``.model`` file, converted, and its weights copied into the compiled
    mp0b graph (same architecture), against mace-torch's energies, per-atom energies, forces, stress."""
    pytest.importorskip("mace")
    import mindspore as ms
    import torch
    from ase import Atoms

    from mindsponge_mm.interfaces.mace_torch import hparams_from_module

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import make_mace_fixtures

    potential, frames, _, names = mp0b
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        module, _ = make_mace_fixtures.build(make_mace_fixtures.ARCHITECTURES["mp0b"], seed=41)
        state = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
        hp = hparams_from_module(module, "live", state)
        assert hp["pair_repulsion"] is True and hp["distance_transform"] == "Agnesi"
        reference = {}
        for name, frame in zip(names, frames):
            atoms = Atoms(numbers=frame["atomic_numbers"], positions=frame["positions"], cell=frame["cell"],
                          pbc=frame["pbc"])
            values = make_mace_fixtures.evaluate(module, atoms, hp["r_max"], hp["atomic_numbers"])
            reference[name] = dict(zip(("energy", "node_energy", "forces", "stress"), values))
    finally:
        torch.set_default_dtype(default)
    converted = model_from_mace_state_dict(state, hp)
    assert converted.hyperparameters == potential.model.hyperparameters
    new = {name: p.asnumpy().copy() for name, p in converted.parameters_and_names()}
    params = dict(potential.model.parameters_and_names())
    old = {name: p.asnumpy().copy() for name, p in params.items()}
    try:
        for name, param in params.items():
            param.copy_(ms.Tensor(new[name]))
        errors, scale = differences(potential, frames, reference, names)
    finally:
        for name, param in params.items():
            param.copy_(ms.Tensor(old[name]))
    assert max(errors.values()) < 1e-10, (errors, scale)


def test_zbl_agnesi_element_subset_keeps_the_tables(tmp_path):
    """--elements keeps the kept elements' rows of ZBL's and Agnesi's covalent radii: the pair terms of
    a CuOH cell are the same with all four elements and with H, O, Cu (eager calls, no graph); a
    checkpoint keeps the options and the buffers."""
    state, hparams, frames, _ = load_fixture(FIXTURES, "mp0b")
    full = model_from_mace_state_dict(state, hparams)
    sub = model_from_mace_state_dict(state, hparams, elements=["H", "O", "Cu"])
    assert sub.elements == [1, 8, 29]
    np.testing.assert_array_equal(sub.pair_repulsion_fn.covalent_radii.asnumpy(),
                                  state["pair_repulsion_fn.covalent_radii"][[1, 8, 29]])
    np.testing.assert_array_equal(sub.distance_transform.covalent_radii.asnumpy(),
                                  state["radial_embedding.distance_transform.covalent_radii"][[1, 8, 29]])
    frame = frames[structure_names(hparams).index("close_cell")]
    a, b = _pair_terms(full, frame), _pair_terms(sub, frame)
    assert a[0].max() > 1.0  # the close pairs repel
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    loaded = Potential.load(Potential(sub).save(tmp_path / "mp0b.safetensors")).model
    assert loaded.hyperparameters == sub.hyperparameters
    saved = dict(sub.parameters_and_names())
    for name, param in loaded.parameters_and_names():
        np.testing.assert_array_equal(param.asnumpy(), saved[name].asnumpy(), err_msg=name)
    assert "pair_repulsion_fn.a_prefactor" in saved and "distance_transform.q" in saved


def _pair_terms(model, frame):
    """(per-atom ZBL energies, Agnesi-transformed distances) of a frame, by eager calls."""
    import mindspore as ms
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    atoms = Atoms(numbers=frame["atomic_numbers"], positions=frame["positions"], cell=frame["cell"],
                  pbc=frame["pbc"])
    i, j, d = neighbor_list("ijd", atoms, model.cutoff)
    species = model.species(atoms.numbers)
    idx_i, idx_j = ms.Tensor(i.astype(np.int32)), ms.Tensor(j.astype(np.int32))
    dist, mask = ms.Tensor(d), ms.Tensor(np.ones(len(d), bool))
    zbl = model.pair_repulsion_fn(ms.Tensor(species), dist, idx_i, idx_j, mask, len(atoms))
    t = model.distance_transform(dist, ms.Tensor(species[i]), ms.Tensor(species[j]))
    return zbl.asnumpy(), t.asnumpy()


def test_float32_parity():
    errors, scale = compare(FIXTURES, "mp_medium", dtype="float32")
    for q in errors:
        assert errors[q] <= 1e-5 * max(scale[q], 1.0), (q, errors, scale)


def test_element_subset_keeps_the_function():
    """Dropping the elements a structure does not use (MACE-MP-0's 89 -> a few) changes nothing."""
    state, hparams, frames, reference = load_fixture(FIXTURES, "off23")
    model = model_from_mace_state_dict(state, hparams, elements=["H", "C", "O"])
    assert model.elements == [1, 6, 8]
    (e, ne, f, _), = evaluate(Potential(model), frames[:1])
    np.testing.assert_allclose(e, reference["ethanol"]["energy"][0], atol=1e-10, rtol=0)
    np.testing.assert_allclose(f, reference["ethanol"]["forces"], atol=1e-10, rtol=0)


def test_converter_rejects_mismatches():
    state, hparams, _, _ = load_fixture(FIXTURES, "single")
    with pytest.raises(UserError, match="not in this mace model"):
        model_from_mace_state_dict(state, hparams, elements=["Fe"])
    with pytest.raises(UserError, match="distance_transform = 'Soft'"):
        model_from_mace_state_dict(state, {**hparams, "distance_transform": "Soft"})
    with pytest.raises(UserError, match="lacks 'radial_embedding.distance_transform.q'"):
        model_from_mace_state_dict(state, {**hparams, "distance_transform": "Agnesi"})
    with pytest.raises(UserError, match="lacks 'pair_repulsion_fn.c'"):
        model_from_mace_state_dict(state, {**hparams, "pair_repulsion": True})
    zbl_state, zbl_hparams, _, _ = load_fixture(FIXTURES, "mp0b")
    with pytest.raises(UserError, match="pair_repulsion_fn.* but the hyperparameters do not set pair_repulsion"):
        model_from_mace_state_dict(zbl_state, {**zbl_hparams, "pair_repulsion": False})
    # mace-torch's own spellings of its defaults are accepted
    model_from_mace_state_dict(state, {**hparams, "distance_transform": None, "pair_repulsion": "False",
                                       "gate": "<function silu at 0x7f>", "heads": ["Default"],
                                       "interaction_cls": "<class 'mace.modules.blocks.RealAgnosticResidualInteractionBlock'>"})
    with pytest.raises(UserError, match="one head"):
        model_from_mace_state_dict(state, {**hparams, "heads": ["a", "b"]})
    bad = dict(state)
    bad["interactions.0.linear.weight"] = bad["interactions.0.linear.weight"][:-1]
    with pytest.raises(UserError, match="interactions.0.linear.weight"):
        model_from_mace_state_dict(bad, hparams)


def _live_directory(tmp_path, full: bool = False):
    python = os.environ.get("MINDSPONGE_MM_MACE_PYTHON")
    script = Path(__file__).resolve().parent / "make_mace_fixtures.py"
    if python:
        subprocess.run([python, str(script), str(tmp_path)] + (["--full"] if full else []), check=True,
                       capture_output=True, timeout=600)
        return tmp_path
    pytest.importorskip("mace")
    sys.path.insert(0, str(script.parent))
    import make_mace_fixtures

    make_mace_fixtures.main(tmp_path, make_mace_fixtures.FULL if full else make_mace_fixtures.ARCHITECTURES)
    return tmp_path


@pytest.mark.slow
def test_live_mace_torch(tmp_path):
    """mace-torch itself, now: the fixtures regenerated and compared for every architecture."""
    directory = _live_directory(tmp_path)
    for arch in ARCHITECTURES:
        errors, scale = compare(directory, arch)
        assert max(errors.values()) < 1e-10, (arch, errors, scale)


@pytest.mark.slow
def test_live_mace_mp0_medium_full_size(tmp_path):
    """MACE-MP-0 "medium" at full size (128x0e+128x1o, 89 elements, radial MLP 64x3), float64 and float32."""
    directory = _live_directory(tmp_path, full=True)
    errors, scale = compare(directory, "mp0_medium_full")
    assert max(errors.values()) < 1e-10, (errors, scale)
    errors, scale = compare(directory, "mp0_medium_full", dtype="float32")
    for q in errors:
        assert errors[q] <= 1e-5 * max(scale[q], 1.0), (q, errors, scale)


def test_checkpoint_versions(tmp_path):
    """New models record version 2; version 1 (and checkpoints without the key) is the legacy model."""
    from ase.build import molecule

    from mindsponge_mm.models import build
    from mindsponge_mm.models.mace import MACE
    from mindsponge_mm.models.mace_legacy import LegacyMACE

    small = dict(elements=["H", "C", "O"], cutoff=4.0, n_channels=4, hidden_l=1, l_max=2, correlation=2,
                 n_layers=2, radial_hidden=8, dtype="float64")
    assert build("mace", **small).hyperparameters["version"] == 2
    legacy = build("mace", version=1, **small)
    assert isinstance(legacy, LegacyMACE) and legacy.hyperparameters["version"] == 1
    a = molecule("CH3CH2OH")
    frame = [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": np.zeros((3, 3)), "pbc": a.pbc}]
    before = evaluate(Potential(legacy), frame)[0]
    path = Potential(legacy).save(tmp_path / "legacy.safetensors")
    loaded = Potential.load(path)
    assert isinstance(loaded.model, LegacyMACE)
    np.testing.assert_allclose(evaluate(loaded, frame)[0][2], before[2], atol=1e-12)
    old = {k: v for k, v in legacy.hyperparameters.items() if k != "version"}  # written before versioning
    assert MACE.checkpoint_hyperparameters(old)["version"] == 1
    assert MACE.checkpoint_hyperparameters({**old, "version": 2})["version"] == 2


def _zbl_by_hand(z1: int, z2: int, r: float, radii_sum: float, p: int = 5) -> float:
    """The ZBL energy of one pair (eV), written out from the formula."""
    a = 0.4543 * 0.529 / (z1 ** 0.3 + z2 ** 0.3)
    x = r / a
    phi = 0.1818 * np.exp(-3.2 * x) + 0.5099 * np.exp(-0.9423 * x) + 0.2802 * np.exp(-0.4028 * x) \
        + 0.02817 * np.exp(-0.2016 * x)
    u = r / radii_sum
    envelope = 1 - (p + 1) * (p + 2) / 2 * u ** p + p * (p + 2) * u ** (p + 1) - p * (p + 1) / 2 * u ** (p + 2)
    return 14.3996 * z1 * z2 / r * phi * (envelope if u < 1 else 0.0)


def test_zbl_pair_energy_by_hand():
    """Two atoms (C, O: covalent radii 0.76 + 0.66 Å): half of V on each, nothing beyond 1.42 Å, and
    dV/dr against a central difference of the hand-written formula."""
    import mindspore as ms

    from mindsponge_mm.models.mace_repulsion import ZBLRepulsion

    zbl = ZBLRepulsion([6, 8], 5, dtype="float64")
    species, idx_i, idx_j = (ms.Tensor(np.array(v, np.int32)) for v in ([0, 1], [0, 1], [1, 0]))
    mask = ms.Tensor(np.array([True, True]))
    for r in (0.6, 0.8, 1.3, 1.5):
        per_atom = zbl(species, ms.Tensor(np.array([r, r])), idx_i, idx_j, mask, 2).asnumpy()
        want = _zbl_by_hand(6, 8, r, 0.76 + 0.66)
        np.testing.assert_allclose(per_atom, [want / 2, want / 2], rtol=1e-12, atol=1e-14)
        assert (want > 1.0) == (r < 1.0) and (want == 0.0) == (r > 1.42)
        grad = ms.grad(lambda d: zbl(species, d, idx_i, idx_j, mask, 2).sum())(ms.Tensor(np.array([r, r])))
        h = 1e-6
        fd = (_zbl_by_hand(6, 8, r + h, 1.42) - _zbl_by_hand(6, 8, r - h, 1.42)) / (2 * h)
        np.testing.assert_allclose(grad.asnumpy(), [fd / 2, fd / 2], rtol=1e-7, atol=1e-9)


def test_zbl_agnesi_forces_are_the_energy_gradient():
    """A random MACE with ZBL and the Agnesi transform (float64): forces equal central differences of
    the energy on a molecule with pairs at 0.7-1.0 Å; every displaced copy in one batch (one graph)."""
    from mindsponge_mm.models.mace import MACE

    model = MACE(elements=["H", "C", "O"], cutoff=3.0, n_channels=4, hidden_l=1, l_max=1, correlation=2,
                 n_layers=1, n_radial=4, radial_mlp=[8], pair_repulsion=True, distance_transform="agnesi",
                 dtype="float64", seed=3)
    assert model.hyperparameters["pair_repulsion"] is True
    assert model.hyperparameters["distance_transform"] == "agnesi"
    positions = np.array([[0.0, 0.0, 0.0], [0.95, 0.1, 0.0], [-0.6, 0.5, 0.3], [-0.2, 1.1, 0.4], [1.5, -0.5, 0.2]])
    numbers = np.array([6, 6, 8, 1, 1])
    h = 1e-5
    frames = []
    for k in range(positions.size):
        for sign in (1.0, -1.0):
            moved = positions.copy().reshape(-1)
            moved[k] += sign * h
            frames.append({"atomic_numbers": numbers, "positions": moved.reshape(-1, 3), "cell": np.zeros((3, 3)),
                           "pbc": np.zeros(3, bool)})
    frames.append({"atomic_numbers": numbers, "positions": positions, "cell": np.zeros((3, 3)),
                   "pbc": np.zeros(3, bool)})
    results = evaluate(Potential(model), frames)
    energies = np.array([r[0] for r in results]).reshape(-1)
    fd = -(energies[0:-1:2] - energies[1:-1:2]) / (2 * h)
    forces = results[-1][2]
    assert np.abs(forces).max() > 1.0  # the close pairs push hard
    np.testing.assert_allclose(forces.reshape(-1), fd, rtol=0, atol=1e-6 * np.abs(forces).max())
