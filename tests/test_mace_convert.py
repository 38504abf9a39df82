"""``mindsponge-mm convert mace``: mace-torch models -> our checkpoints, through the real CLI.

The fixtures (tests/fixtures/mace_files, written by tests/make_mace_model_file.py in the peers
environment) are two random float64 ``ScaleShiftMACE`` models, one single-head and one with heads
``pt_head`` and ``Default``, each as a pickled ``.model`` file and as a state dict (``.npz``) plus
hyperparameters (``.json``), with mace-torch's energies and forces per head on three structures.

The state-dict path needs no torch and always runs; its checkpoints are compared with mace-torch's
numbers. The ``.model`` path must give the same checkpoint bit for bit. It runs where torch and
mace-torch import in this interpreter (the ``[mace]`` extra); elsewhere, with
``MINDSPONGE_MM_MACE_PYTHON`` naming an interpreter that has them (e.g. /work/peers-venv/bin/python),
the pickle is read there (``read_mace_model_file`` needs no MindSpore) into an npz + JSON pair, which
this interpreter converts; without either it is skipped.
"""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from mindsponge_mm.data import collate
from mindsponge_mm.models import Potential, read_checkpoint

FILES = Path(__file__).resolve().parent / "fixtures" / "mace_files"
ROOT = Path(__file__).resolve().parent.parent
STRUCTURES = ["ethanol", "water", "cu_o"]


def run_cli(*args, python=None):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([python or sys.executable, "-m", "mindsponge_mm.cli", "convert", "mace", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def frames(names=STRUCTURES):
    data = np.load(FILES / "structures.npz")
    return [{"atomic_numbers": data[f"{s}/numbers"], "positions": data[f"{s}/positions"], "cell": data[f"{s}/cell"],
             "pbc": data[f"{s}/pbc"]} for s in names]


def assert_matches_mace_torch(potential, model: str, head: str, names=STRUCTURES, tol=1e-10):
    """Energies and forces of a converted potential equal mace-torch's (stored next to the model)."""
    reference = np.load(FILES / f"{model}.npz")
    out = potential.evaluate(collate(frames(names), potential.cutoff, dtype="float64"))
    start = 0
    for k, name in enumerate(names):
        forces = reference[f"forces/{head}/{name}"]
        n = len(forces)
        np.testing.assert_allclose(out["energy"][k], reference[f"energy/{head}/{name}"][0], atol=tol, rtol=0,
                                   err_msg=f"{model} {head} {name}")
        np.testing.assert_allclose(out["forces"][start:start + n], forces, atol=tol, rtol=0,
                                   err_msg=f"{model} {head} {name}")
        start += n


def load_weights(potential, checkpoint: Path):
    """Copy a checkpoint's weights into an already compiled potential of the same architecture."""
    meta, tensors = read_checkpoint(checkpoint)
    assert meta["hyperparameters"] == potential.model.hyperparameters
    for name, param in potential.model.parameters_and_names():
        param.copy_(ms.Tensor(tensors[name]))
    return potential


def assert_same_checkpoint(a: Path, b: Path):
    """Same model, hyperparameters and weights (bit for bit)."""
    (meta_a, tensors_a), (meta_b, tensors_b) = read_checkpoint(a), read_checkpoint(b)
    assert meta_a["hyperparameters"] == meta_b["hyperparameters"]
    assert sorted(tensors_a) == sorted(tensors_b)
    for name in tensors_a:
        assert np.array_equal(tensors_a[name], tensors_b[name]), name


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The safe-path conversions, run once: name -> (checkpoint, completed process)."""
    out = tmp_path_factory.mktemp("converted")
    jobs = {
        "single": ["single.npz", "--hparams", "single.json"],
        "multihead-default": ["multihead.npz", "--hparams", "multihead.json"],
        "multihead-pt_head": ["multihead.npz", "--hparams", "multihead.json", "--head", "pt_head"],
        "single-HCO": ["single.npz", "--hparams", "single.json", "--elements", "H", "C", "O"],
        "multihead-mace-config": ["multihead.npz", "--hparams", "multihead_mace_config.json"],
    }
    result = {}
    for name, (model, *options) in jobs.items():
        target = out / f"{name}.safetensors"
        options = [str(FILES / o) if o.endswith(".json") else o for o in options]
        result[name] = (target, run_cli(FILES / model, target, *options))
    return result


def test_state_dict_single_head_matches_mace_torch(converted):
    """npz + JSON (no pickle, no torch) -> checkpoint: mace-torch's energies and forces to 1e-10 eV (float64)."""
    path, proc = converted["single"]
    assert proc.returncode == 0, proc.stderr
    assert "elements H C O Cu" in proc.stdout and "head Default" in proc.stdout, proc.stdout
    assert_matches_mace_torch(Potential.load(path), "single", "Default")


def test_state_dict_multihead_matches_mace_torch(converted):
    """Each head of a two-head model against mace-torch; without --head the 'Default' head, with a note."""
    for name, head in [("multihead-default", "Default"), ("multihead-pt_head", "pt_head")]:
        proc = converted[name][1]
        assert proc.returncode == 0, proc.stderr
        assert f"head {head}," in proc.stdout, proc.stdout
    assert "converting head 'Default', as mace-torch's calculator does" in converted["multihead-default"][1].stdout
    multihead = Potential.load(converted["multihead-default"][0])
    assert_matches_mace_torch(multihead, "multihead", "Default")
    assert_matches_mace_torch(load_weights(multihead, converted["multihead-pt_head"][0]), "multihead", "pt_head")


def test_mace_torch_config_json_is_accepted(converted):
    """The JSON of mace-torch's extract_config_mace_model + convert_to_json_format gives the same checkpoint."""
    path, proc = converted["multihead-mace-config"]
    assert proc.returncode == 0, proc.stderr
    assert_same_checkpoint(path, converted["multihead-default"][0])


def test_elements_subset_in_ase_calculator(converted):
    """--elements H C O: the same energies and forces for ethanol, through the ASE calculator."""
    from ase import Atoms

    from mindsponge_mm.interfaces.ase import Calculator

    path, proc = converted["single-HCO"]
    assert proc.returncode == 0, proc.stderr
    potential = Potential.load(path)
    assert potential.model.elements == [1, 6, 8]
    (frame,) = frames(["ethanol"])
    atoms = Atoms(numbers=frame["atomic_numbers"], positions=frame["positions"])
    atoms.calc = Calculator(potential)
    reference = np.load(FILES / "single.npz")
    assert abs(atoms.get_potential_energy() - reference["energy/Default/ethanol"][0]) < 1e-10
    np.testing.assert_allclose(atoms.get_forces(), reference["forces/Default/ethanol"], atol=1e-10, rtol=0)


def _python_with_mace():
    """An interpreter importing torch, mace and mindspore, or None."""
    if all(importlib.util.find_spec(m) for m in ("torch", "mace")):
        return sys.executable
    return None


@pytest.mark.parametrize("model, head", [("single", None), ("multihead", "pt_head")])
def test_model_file_end_to_end(tmp_path, converted, model, head):
    """A pickled mace-torch .model -> the same checkpoint, bit for bit, as its npz + JSON (which matches
    mace-torch to 1e-10 above): hyperparameters read from the module, weights from its state dict."""
    target = tmp_path / "out.safetensors"
    options = ["--head", head] if head else []
    python = _python_with_mace()
    if python is not None:
        proc = run_cli(FILES / f"{model}.model", target, *options, python=python)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("unpickling "), proc.stdout  # the user is told before the pickle is read
    else:
        other = os.environ.get("MINDSPONGE_MM_MACE_PYTHON")
        if not other:
            pytest.skip("torch and mace-torch are not installed (pip install -e '.[mace]'), and "
                        "MINDSPONGE_MM_MACE_PYTHON is not set")
        # read the pickle with mace-torch in the other interpreter, convert the result here
        script = ("import sys, json, numpy as np; from pathlib import Path; "
                  "from mindsponge_mm.interfaces.mace_torch import read_mace_model_file; "
                  "s, h = read_mace_model_file(Path(sys.argv[1])); "
                  "np.savez(sys.argv[2], **s); Path(sys.argv[3]).write_text(json.dumps(h))")
        npz, js = tmp_path / "state.npz", tmp_path / "hparams.json"
        subprocess.run([other, "-c", script, str(FILES / f"{model}.model"), str(npz), str(js)], check=True,
                       capture_output=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
        proc = run_cli(npz, target, "--hparams", js, *options)
        assert proc.returncode == 0, proc.stderr
    assert_same_checkpoint(target, converted["single" if model == "single" else "multihead-pt_head"][0])


def _bad(tmp_path):
    random_bytes = tmp_path / "random.model"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(2000))
    json_model = tmp_path / "hparams.npz"
    json_model.write_text((FILES / "single.json").read_text())
    soft = tmp_path / "soft.json"
    soft.write_text((FILES / "single.json").read_text().replace('"model"', '"distance_transform": "Soft", "model"'))
    no_default = tmp_path / "heads.json"
    no_default.write_text((FILES / "multihead.json").read_text().replace('"Default"', '"water"'))
    return {  # name -> (arguments, pattern of the one error line)
        "random bytes": ([random_bytes], "not a mace-torch model file|needs torch and mace-torch"),
        "torch file of something else": ([FILES / "not_a_model.pt"], "holds a dict|needs torch and mace-torch"),
        "Soft distance transform in a .model": ([FILES / "soft.model"],
                                                "uses a distance transform other than Agnesi|needs torch and mace-torch"),
        "JSON as a state dict": ([json_model, "--hparams", FILES / "single.json"], "not a readable state dict"),
        "JSON as the model": ([FILES / "single.json"], "unknown model file type"),
        "state dict without --hparams": ([FILES / "single.npz"], "needs --hparams"),
        "Soft distance transform in the JSON": ([FILES / "single.npz", "--hparams", soft],
                                                "uses a distance transform \\(distance_transform=Soft\\)"),
        "element not in the model": ([FILES / "single.npz", "--hparams", FILES / "single.json", "--elements", "H",
                                      "Fe"], "Fe is not in the mace model .* leave it out"),
        "head that does not exist": ([FILES / "multihead.npz", "--hparams", FILES / "multihead.json", "--head",
                                      "mp"], "no head 'mp'; this model's heads are pt_head, Default"),
        "multi-head without a Default head": ([FILES / "multihead.npz", "--hparams", no_default],
                                              "without a 'Default' head; pick one with --head"),
    }


def test_bad_input_is_one_line_and_leaves_no_file(tmp_path):
    cases = _bad(tmp_path)
    for name, (args, pattern) in cases.items():
        out_dir = tmp_path / name.replace(" ", "_")
        out_dir.mkdir()
        proc = run_cli(args[0], out_dir / "out.safetensors", *args[1:])
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert re.search(pattern, lines[0]), (name, lines[0])
        assert list(out_dir.iterdir()) == [], (name, list(out_dir.iterdir()))
