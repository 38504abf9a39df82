"""The mindsponge-mm command: main job, data subcommands, one-line errors with exit code 2."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mindsponge_mm.cli import main
from mindsponge_mm.data import AtomsDataset, bundled_datasets

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None):
    """Run the installed console script exactly as a user would."""
    env = {**os.environ, "GLOG_v": "3"}
    return subprocess.run([sys.executable, "-m", "mindsponge_mm.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def test_bundled_datasets_are_installed_and_described():
    assert bundled_datasets() == ["copper", "ethanol"]
    eth = AtomsDataset.open("bundled:ethanol")
    cu = AtomsDataset.open("bundled:copper")
    assert len(eth) == 1000 and set(eth.elements) == {1, 6, 8} and not eth[0]["pbc"].any()
    assert set(eth.properties) == {"energy", "forces"}
    assert len(cu) == 500 and set(cu.properties) == {"energy", "forces", "stress"}
    assert len(np.unique(cu.n_atoms)) >= 3
    cells = np.stack([cu[i]["cell"] for i in range(len(cu))])
    off_diagonal = cells[:, ~np.eye(3, dtype=bool)]
    assert (np.abs(off_diagonal) > 1e-3).all(axis=1).any(), "no triclinic cell"
    for ds in (eth, cu):
        assert "mindsponge-mm data generate" in ds.metadata["command"]


@pytest.mark.parametrize("name", ["ethanol", "copper"])
def test_data_info_describes_bundled_sets(name):
    out = run_cli("data", "info", f"bundled:{name}")
    assert out.returncode == 0, out.stderr
    for word in ("frames", "elements", "energy", "forces", "eV/Ang", "made by"):
        assert word in out.stdout
    assert out.stderr.strip() == ""


def test_main_job_quickstart(tmp_path):
    """The README's main job, shortened: trains, evaluates, writes the run directory; a rerun resumes."""
    args = ("run", ROOT / "configs/quickstart.yaml", f"run.output={tmp_path / 'qs'}", "data.split=[40,10,10]",
            "training.epochs=2", "md.steps=200")
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    assert "split     train 40, val 10, test 10" in out.stdout
    assert "model     painn:" in out.stdout and "epoch    2  loss" in out.stdout
    assert "forces                 " in out.stdout and "meV/Ang" in out.stdout
    assert "md        9 atoms, langevin (NVT)" in out.stdout and "done      step 200" in out.stdout
    for name in ("split.npz", "config.yaml", "metrics.csv", "learning_curve.png", "parity_energy.png",
                 "parity_forces.png", "checkpoints/best.safetensors", "trajectory.h5", "trajectory.png"):
        assert (tmp_path / "qs" / name).exists(), name
    assert yaml.safe_load((tmp_path / "qs/config.yaml").read_text())["data"]["batch_size"] == 10
    again = run_cli(*args)  # a finished run is resumed (nothing left to train) and evaluated again
    assert again.returncode == 0, again.stderr
    assert "nothing to do: the run already finished 2 epochs" in again.stdout


def test_data_stage_alone_without_a_model(tmp_path):
    path = tmp_path / "data_only.yaml"
    path.write_text("data:\n  path: bundled:ethanol\n  batch_size: 32\n  split: [800, 100, null]\n"
                    f"run:\n  output: {tmp_path / 'd'}\n")
    out = run_cli("run", path)
    assert out.returncode == 0, out.stderr
    assert "split     train 800, val 100, test 100" in out.stdout
    assert "Batch: 32 structures, 288 atoms" in out.stdout


def test_data_convert(tmp_path, capsys):
    assert main(["data", "convert", "bundled:ethanol", str(tmp_path / "eth.db")]) == 0
    assert "1000 frames" in capsys.readouterr().out
    db = AtomsDataset.open(tmp_path / "eth.db")
    np.testing.assert_array_equal(db[999]["forces"], AtomsDataset.open("bundled:ethanol")[999]["forces"])


def write(tmp_path, text):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return path


ETH = "data:\n  path: bundled:ethanol\n"
BAD_CONFIGS = [
    ("data: [unclosed", "malformed YAML at line 1"),
    ("", "the config file is empty"),
    ("data:\n  path: bundled:ethanol\n  batch_sise: 4\n", "unknown key 'data.batch_sise'; did you mean 'data.batch_size'"),
    ("data:\n  path: bundled:ethanol\n  batch_size: four\n", "data.batch_size must be an integer"),
    ("data:\n  cutoff: 5.0\n", "data.path is required"),
    ("data:\n  path: bundled:ethanol\n  cutoff: -1\n", "data.cutoff = -1 is out of range"),
    ("data:\n  path: nowhere.h5\n", "nowhere.h5: file not found"),
    ("data:\n  path: bundled:water\n", "no bundled dataset named 'water'"),
    (f"{ETH}model:\n  name: pain\n", "model: unknown model 'pain'; did you mean 'painn'?"),
    (f"{ETH}model:\n  n_features: 8\n", "model.name is required"),
    (f"{ETH}model:\n  name: painn\n  n_featurs: 8\n",
     "model: model 'painn' has no hyperparameter 'n_featurs'; did you mean 'n_features'?"),
    (f"{ETH}model:\n  name: painn\n  n_features: 8.5\n", "model.n_features must be an integer"),
    (f"{ETH}model:\n  name: painn\n  n_features: 0\n", "model.n_features = 0 is out of range"),
    (f"{ETH}training:\n  lr: -1\n", "training.lr = -1 is out of range"),
    (f"{ETH}training:\n  optimizer: sgd\n", "training.optimizer: unknown optimizer 'sgd'; choose one of adam, adamw"),
    (f"{ETH}training:\n  loss:\n    forces_wieght: 1\n",
     "unknown key 'training.loss.forces_wieght'; did you mean 'training.loss.forces_weight'?"),
    (f"{ETH}training:\n  epochs: many\n", "training.epochs must be an integer"),
]


@pytest.mark.parametrize("text, message", BAD_CONFIGS)
def test_bad_config_gives_one_line_and_exit_code_2(tmp_path, capsys, text, message):
    code = main(["run", str(write(tmp_path, text))])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_errors_through_the_real_command(tmp_path):
    out = run_cli("data", "info", tmp_path / "missing.extxyz")
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "missing.extxyz: file not found" in out.stderr
    assert "Traceback" not in out.stderr
    out = run_cli("run", write(tmp_path, "run:\n  seed: 0\ndata:\n  path: bundled:ethanol\n"), "data.batch_size=0")
    assert out.returncode == 2 and "data.batch_size = 0 is out of range" in out.stderr


def test_bad_units_option(capsys):
    assert main(["data", "info", "bundled:ethanol", "--units", "energy"]) == 2
    assert "NAME=UNIT" in capsys.readouterr().err
