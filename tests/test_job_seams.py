"""The seams between jobs and what they drive: models' data-dependent defaults, the run directory's
files, one function that loads any potential, and the loader's data-parallel shards."""
import ast
from pathlib import Path

import numpy as np
import pytest

from mindsponge_mm.data import AtomsDataset, AtomsLoader, average_neighbors
from mindsponge_mm.errors import ConfigError, UserError
from mindsponge_mm.io_utils import RunDirectory, run_directory
from mindsponge_mm.models import MODELS, AtomisticModel, Potential, build, load_potential

PACKAGE = Path(__file__).resolve().parents[1] / "mindsponge_mm"
TINY = {"n_features": 8, "n_interactions": 1, "n_rbf": 8}


@pytest.fixture(scope="module")
def ethanol():
    return AtomsDataset.open("bundled:ethanol")


# ----------------------------------------------------------------------------- model defaults
def test_models_fill_in_their_data_dependent_defaults(ethanol):
    assert AtomisticModel.defaults_from_data(ethanol, 4.0, {}) == {}
    assert MODELS["schnet"].defaults_from_data(ethanol, 4.0, {}) == {}
    found = MODELS["mace"].defaults_from_data(ethanol, 4.0, {"n_channels": 8})
    assert found == {"avg_num_neighbors": average_neighbors(ethanol, 4.0)}
    assert 1.0 < found["avg_num_neighbors"] < 9.0  # ethanol has 9 atoms
    assert MODELS["mace"].defaults_from_data(ethanol, 4.0, {"avg_num_neighbors": 3.0}) == {}


def test_no_job_tests_a_model_name():
    """jobs, training, MD and the CLI never compare anything with a registered model's name."""
    names = {"mace", "painn", "schnet"}
    files = [PACKAGE / "jobs.py", PACKAGE / "cli.py", *(PACKAGE / "train").glob("*.py"),
             *(PACKAGE / "md").glob("*.py")]
    hits = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                operands += [e for o in operands if isinstance(o, (ast.Tuple, ast.List, ast.Set)) for e in o.elts]
                if any(isinstance(o, ast.Constant) and o.value in names for o in operands):
                    hits.append(f"{path.name}:{node.lineno}")
    assert not hits, hits


# ----------------------------------------------------------------------------- run directory
def test_run_directory_names_every_file(tmp_path):
    run = RunDirectory(tmp_path)
    expected = {
        "config": "config.yaml", "lock": ".lock", "split": "split.npz", "statistics": "statistics.json",
        "last_checkpoint": "checkpoints/last.safetensors", "best_checkpoint": "checkpoints/best.safetensors",
        "metrics": "metrics.csv", "steps": "steps.csv", "learning_curve": "learning_curve.png",
        "train_log": "train.log", "training_state": "training_state.json", "evaluation": "evaluation.json",
        "parity_energy": "parity_energy.png", "parity_forces": "parity_forces.png",
        "export_mindir": "export/potential.mindir", "trajectory": "trajectory.h5",
        "md_checkpoint": "md_checkpoint.npz", "trajectory_plot": "trajectory.png",
    }
    for name, rel in expected.items():
        assert getattr(run, name) == tmp_path / rel, name
    md = RunDirectory(tmp_path, trajectory="nve/traj.h5", md_checkpoint="nve/restart.npz")
    assert md.trajectory_plot == tmp_path / "traj.png"  # beside the run, named after the trajectory
    assert md.md_outputs == (tmp_path / "nve" / "traj.h5", tmp_path / "nve" / "restart.npz")
    assert Path(run) == tmp_path and RunDirectory(run).root == tmp_path


def test_run_directory_context_yields_the_files_and_removes_a_failed_fresh_start(tmp_path):
    out = tmp_path / "run"
    with run_directory(out, RunDirectory(out).training_outputs) as run:
        assert isinstance(run, RunDirectory) and run.root == out and run.lock.exists()
    with pytest.raises(RuntimeError):
        with run_directory(out / "fresh", ()) as run:
            run.config.write_text("x")
            raise RuntimeError
    assert not (out / "fresh").exists()
    with pytest.raises(RuntimeError):
        with run_directory(out / "kept", ("split.npz",)) as run:
            run.split.write_text("x")
            raise RuntimeError
    assert (out / "kept" / "split.npz").exists()


# ----------------------------------------------------------------------------- loading potentials
def test_load_potential_takes_paths_mappings_sums_and_potentials(tmp_path):
    path = tmp_path / "schnet.safetensors"
    Potential(build("schnet", elements=["H", "C", "O"], cutoff=4.0, **TINY)).save(path)
    assert load_potential(path).dtype_name == "float32"
    assert load_potential(str(path), dtype="float64").dtype_name == "float64"
    lj = {"type": "lennard_jones", "epsilon": 0.0104, "sigma": 3.4, "cutoff": 6.0}
    assert load_potential(lj).dtype_name == "float32"
    assert load_potential(lj, dtype="float64").dtype_name == "float64"
    both = load_potential({"type": "sum", "terms": [lj, {"type": "checkpoint", "path": str(path)}]},
                          dtype="float64")
    assert both.dtype_name == "float64" and both.cutoff == 6.0
    ready = load_potential(lj)
    assert load_potential(ready) is ready
    with pytest.raises(UserError, match="checkpoint not found"):
        load_potential(tmp_path / "missing.safetensors")
    with pytest.raises(ConfigError, match="unknown potential type"):
        load_potential({"type": "lenard_jones"})
    with pytest.raises(UserError, match="not a potential"):
        load_potential(42)


# ----------------------------------------------------------------------------- data-parallel shards
def test_loader_shards_split_each_batch_and_count_the_whole_batch(ethanol):
    def loader():
        return AtomsLoader(ethanol, 4, 4.0, shuffle=True, seed=3, indices=np.arange(10))

    shards = [loader().shard(r, 2) for r in range(2)]  # one loader per rank, as in training
    assert len(shards[0]) == len(loader()) == 3
    whole = loader().shard(0, 1)
    for shard in (*shards, whole):
        shard.set_epoch(1)
        list(shard)  # epoch 1, so the next iteration is epoch 2
    whole, parts = list(whole), [list(s) for s in shards]
    assert whole[0].batch.frame_index[:4].tolist() == loader().order(2)[:4].tolist()  # iteration follows epochs
    for k, (full, totals) in enumerate(whole):
        frames = full.frame_index[full.frame_index >= 0]
        assert totals == (len(frames), 9 * len(frames), 0)
        for r in range(2):
            local, local_totals = parts[r][k]
            assert local_totals == totals
            assert local.structure_mask.shape[0] == 3  # batch_size // 2 structures + 1 padding
            np.testing.assert_array_equal(local.frame_index[local.frame_index >= 0], frames[r::2])
    with pytest.raises(UserError, match="must be a multiple of the 3 data-parallel ranks"):
        loader().shard(0, 3)
