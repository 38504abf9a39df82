"""Our MACE against mace-torch 0.3.16's ScaleShiftMACE for the same weights.

The fixtures (tests/fixtures/mace, written by tests/make_mace_fixtures.py in the peers environment)
hold random-weight mace-torch models of several architectures, structures, and mace-torch's
energies, per-atom energies, forces and stress in float64. The live tests regenerate them with
mace-torch: in this process when ``mace`` imports, or with the interpreter named by
``MINDSPONGE_MM_MACE_PYTHON`` (e.g. /work/peers-venv/bin/python) in a subprocess.
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
ARCHITECTURES = ["mp_medium", "off23", "hidden_l0", "hidden_l2", "single"]
STRUCTURES = ["ethanol", "water", "triclinic", "small_cell", "isolated", "pair"]


def load_fixture(directory: Path, arch: str):
    data = np.load(directory / f"{arch}.npz")
    state = {k[len("state/"):]: data[k] for k in data.files if k.startswith("state/")}
    hparams = json.loads((directory / f"{arch}.json").read_text())
    structures = np.load(directory / "structures.npz")
    frames = [{"atomic_numbers": structures[f"{arch}/{s}/numbers"], "positions": structures[f"{arch}/{s}/positions"],
               "cell": structures[f"{arch}/{s}/cell"], "pbc": structures[f"{arch}/{s}/pbc"]} for s in STRUCTURES]
    reference = {s: {q: data[f"{q}/{s}"] for q in ("energy", "node_energy", "forces", "stress")} for s in STRUCTURES}
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
    errors = {"energy": 0.0, "node_energy": 0.0, "forces": 0.0, "stress": 0.0}
    scale = dict(errors)
    for name, frame, (e, ne, f, s) in zip(STRUCTURES, frames, evaluate(potential, frames)):
        ref = reference[name]
        for q, ours in (("energy", e), ("node_energy", ne), ("forces", f), ("stress", s)):
            errors[q] = max(errors[q], float(np.abs(np.ravel(ours) - np.ravel(ref[q])).max()))
            scale[q] = max(scale[q], float(np.abs(ref[q]).max()))
    return errors, scale


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_float64_parity(arch):
    errors, scale = compare(FIXTURES, arch)
    assert max(errors.values()) < 1e-10, (errors, scale)


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
    with pytest.raises(UserError, match="distance_transform"):
        model_from_mace_state_dict(state, {**hparams, "distance_transform": "Agnesi"})
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
