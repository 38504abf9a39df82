"""Training: loss against numpy, schedules, EMA, exact resume (also after kill -9 at three moments), bit-for-bit
repeat runs, NaN handling, config and data errors, evaluate (metrics recomputed) and MindIR export."""
import csv
import os
import signal
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
import yaml

from mindsponge_mm.config import validate
from mindsponge_mm.data import collate
from mindsponge_mm.errors import ConfigError, UserError
from mindsponge_mm.job_schema import JOB_SCHEMA
from mindsponge_mm.jobs import evaluate, export, train
from mindsponge_mm.models import Potential, build
from mindsponge_mm.train import EMA, LRSchedule, PotentialLoss, TrainStep, WeightSchedule, loss_inputs
from mindsponge_mm.train.export import example_batch, load_mindir

TINY = {"name": "schnet", "n_features": 8, "n_interactions": 1, "n_rbf": 8}


def job(tmp_path, **sections):
    raw = {
        "run": {"seed": 0, "output": str(tmp_path / "run")},
        "data": {"path": "bundled:ethanol", "cutoff": 4.0, "batch_size": 10, "split": [30, 10, 10]},
        "model": dict(TINY),
        "training": {"epochs": 3, "lr": 0.005, "scheduler": {"type": "plateau", "patience": 0, "factor": 0.5}},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return validate(raw, JOB_SCHEMA, "test.yaml")


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def compare_histories(a, b, skip=("time_s",)):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        for key in ra:
            if key not in skip:
                assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-6, abs=1e-9), key


# ---------------------------------------------------------------------------------------------- loss
def test_loss_matches_numpy_for_mse_huber_and_stress(copper_frames):
    model = build("schnet", elements=["Cu"], cutoff=4.0, n_features=8, n_interactions=1, n_rbf=8, dtype="float64")
    potential = Potential(model)
    frames = [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": a.cell[:], "pbc": a.pbc,
               "energy": a.get_potential_energy(), "forces": a.get_forces(),
               "stress": a.get_stress(voigt=False)} for a in copper_frames[:3]]
    batch = collate(frames, 4.0, properties=["energy", "forces", "stress"], dtype="float64")
    pred = potential.evaluate(batch)
    s, a = batch.structure_mask, batch.atom_mask
    de = (pred["energy"][s] - batch.targets["energy"][s])
    df = pred["forces"][a] - batch.targets["forces"][a]
    ds = pred["stress"][s] - batch.targets["stress"][s]
    for kind, rho in (("mse", lambda x: x * x),
                      ("huber", lambda x: np.where(np.abs(x) <= 0.5, 0.5 * x * x, 0.5 * (np.abs(x) - 0.25)))):
        for mode, scale in (("per_atom", batch.n_atoms[s]), ("per_structure", 1.0)):
            loss = PotentialLoss(potential, (0.3, 2.0, 50.0), kind, huber_delta=0.5, energy_mode=mode)
            got = float(ms.jit(loss.construct)(*loss_inputs(potential, batch)).asnumpy())
            want = 0.3 * rho(de / scale).mean() + 2.0 * rho(df).mean() + 50.0 * rho(ds).mean()
            assert got == pytest.approx(want, rel=1e-10)


def test_loss_without_stress_has_the_same_value_and_weight_gradients(copper_frames):
    """stress=False (Potential.energy_forces: no strain in the graph) equals the full loss with w_S = 0."""
    model = build("schnet", elements=["Cu"], cutoff=4.0, n_features=8, n_interactions=1, n_rbf=8, dtype="float64",
                  seed=3)
    potential = Potential(model)
    frames = [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": a.cell[:], "pbc": a.pbc,
               "energy": a.get_potential_energy(), "forces": a.get_forces()} for a in copper_frames[:2]]
    batch = collate(frames, 4.0, properties=["energy", "forces"], dtype="float64")
    inputs = loss_inputs(potential, batch)
    weights = list(model.trainable_params())
    results = []
    for stress in (True, False):
        loss = PotentialLoss(potential, (0.7, 3.0, 0.0), stress=stress)
        value, grads = ms.jit(ms.value_and_grad(loss, None, weights))(*inputs)
        results.append((float(value.asnumpy()), [g.asnumpy() for g in grads]))
    (v_full, g_full), (v_lean, g_lean) = results
    assert v_lean == pytest.approx(v_full, rel=1e-12) and v_full > 0
    for a, b in zip(g_full, g_lean):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-14)
    e, _, f = ms.jit(potential.energy_forces)(*potential.inputs(batch))
    pred = potential.evaluate(batch)
    np.testing.assert_allclose(f.asnumpy(), pred["forces"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(e.asnumpy(), pred["energy"], rtol=1e-12)


def test_norms_make_shard_losses_add_up_to_the_combined_loss(molecule_frames):
    """Data parallel: rank losses normalised by the combined counts sum to the combined loss."""
    model = build("schnet", elements=["H", "C", "N", "O"], cutoff=4.0, n_features=8, n_interactions=1, n_rbf=8,
                  dtype="float64")
    potential = Potential(model)
    loss = ms.jit(PotentialLoss(potential, (1.0, 5.0, 0.0)).construct)
    frames = [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": np.zeros((3, 3)),
               "pbc": np.zeros(3, bool), "energy": a.get_potential_energy(), "forces": a.get_forces()}
              for a in molecule_frames[:6]]
    whole = collate(frames, 4.0, properties=["energy", "forces"], dtype="float64")
    total = float(loss(*loss_inputs(potential, whole)).asnumpy())
    norms = (6, sum(len(f["atomic_numbers"]) for f in frames), 0)
    shards = [collate(frames[r::2], 4.0, properties=["energy", "forces"], dtype="float64") for r in range(2)]
    parts = [float(loss(*loss_inputs(potential, b, norms)).asnumpy()) for b in shards]
    assert sum(parts) == pytest.approx(total, rel=1e-12)


# ----------------------------------------------------------------------------------------- schedules
def test_lr_schedules():
    cos = LRSchedule("cosine", 1e-3, epochs=10, warmup_epochs=1, min_lr=1e-5)
    assert cos.value(0, 0, 4) == pytest.approx(1e-3 * 0.25)  # warm-up: (0 + 1/4) / 1
    assert cos.value(1, 0, 4) == pytest.approx(1e-3)
    assert cos.value(10, 0, 4) == pytest.approx(1e-5)
    assert cos.value(5, 2, 4) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + np.cos(np.pi * 4.5 / 9)))
    plateau = LRSchedule("plateau", 1e-3, epochs=10, factor=0.5, patience=1, min_lr=3e-4)
    for v in (1.0, 0.5, 0.6, 0.6):  # two bad validations > patience 1 -> halve
        plateau.observe(v)
    assert plateau.value(4, 0, 1) == pytest.approx(5e-4)
    for v in (0.6, 0.6, 0.6, 0.6):
        plateau.observe(v)
    assert plateau.value(9, 0, 1) == pytest.approx(3e-4)  # floor
    ws = WeightSchedule(1.0, 10.0, 0.0, [{"epoch": 5, "energy": 100.0}])
    assert ws.value(4) == (1.0, 10.0, 0.0) and ws.value(5) == (100.0, 10.0, 0.0)
    with pytest.raises(ConfigError, match="schedule entries"):
        WeightSchedule(1.0, 1.0, 0.0, [{"energie": 1.0}])
    # MACE's stage two: its own constant learning rate from its epoch on
    stage = WeightSchedule(1.0, 10.0, 0.0, [{"epoch": 3, "energy": 100.0, "lr": 1e-3}])
    assert stage.lr(2) is None and stage.lr(3) == 1e-3 and stage.lr(9) == 1e-3
    with pytest.raises(ConfigError, match="lr must be a positive number"):
        WeightSchedule(1.0, 1.0, 0.0, [{"epoch": 1, "lr": -1.0}])


def test_ema_follows_its_formula(molecule_frames):
    model = build("schnet", elements=["H", "C", "N", "O"], cutoff=4.0, n_features=8, n_interactions=1, n_rbf=8)
    potential = Potential(model)
    frames = [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": np.zeros((3, 3)),
               "pbc": np.zeros(3, bool), "energy": a.get_potential_energy(), "forces": a.get_forces()}
              for a in molecule_frames[:4]]
    batch = collate(frames, 4.0, properties=["energy", "forces"])
    optimizer = ms.nn.Adam(model.trainable_params(), learning_rate=1e-2)
    ema = EMA(optimizer.parameters, decay=0.9)
    step = ms.jit(TrainStep(PotentialLoss(potential), optimizer, clip_norm=1.0, ema=ema).construct)
    inputs = loss_inputs(potential, batch)
    expected = [w.asnumpy().copy() for w in optimizer.parameters]
    for t in range(4):
        step(*inputs)
        d = min(0.9, (1 + t) / (10 + t))
        expected = [d * e + (1 - d) * w.asnumpy() for e, w in zip(expected, optimizer.parameters)]
    for e, s in zip(expected, ema.shadow):
        np.testing.assert_allclose(s.asnumpy(), e, rtol=1e-5, atol=1e-7)
    live = [w.asnumpy().copy() for w in optimizer.parameters]
    with ema.swapped():
        np.testing.assert_array_equal(optimizer.parameters[0].asnumpy(), ema.shadow[0].asnumpy())
    np.testing.assert_array_equal(optimizer.parameters[0].asnumpy(), live[0])


# ---------------------------------------------------------------------------------- runs and resume
@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """A 3-epoch run of a tiny SchNet, uninterrupted (the reference for the resume tests)."""
    tmp = tmp_path_factory.mktemp("full")
    result = train(job(tmp), log=lambda _: None)
    return tmp / "run", result


def test_run_directory_and_compilations(full_run):
    run, result = full_run
    for name in ("config.yaml", "split.npz", "statistics.json", "metrics.csv", "steps.csv", "learning_curve.png",
                 "train.log", "checkpoints/last.safetensors", "checkpoints/best.safetensors"):
        assert (run / name).exists(), name
    rows = read_rows(run / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for key in ("train_loss", "val_energy_mae", "val_energy_per_atom_rmse", "val_forces_mae", "val_forces_rmse"):
        assert np.isfinite(float(rows[-1][key])), key
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert len(read_rows(run / "steps.csv")) == 9  # 30 frames / batch 10 x 3 epochs
    assert result["compiled_shapes"] == 1  # ethanol: one padded shape, so the step compiled once
    best = Potential.load(run / "checkpoints" / "best.safetensors")
    assert best.model.name == "schnet"


def run_cli(*args, env_extra=None):
    """``mindsponge-mm ARGS`` in a subprocess, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if k != "MINDSPONGE_MM_TEST_KILL_AT"}
    env.update(GLOG_v="3", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "mindsponge_mm.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def cli_train(tmp_path, name):
    """A fresh CLI run of the tiny 3-epoch job into tmp_path/name: (run directory, completed process)."""
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(job(tmp_path, run={"seed": 0, "output": str(tmp_path / name)})))
    out = run_cli("train", cfg)
    assert out.returncode == 0, out.stderr[-2000:]
    return tmp_path / name, out


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """The uninterrupted 3-epoch run through the CLI (reference for the kill -9 and reproducibility tests)."""
    return cli_train(tmp_path_factory.mktemp("cli"), "run")


def assert_same_metrics(ref_run, run):
    """metrics.csv equal in every number but the wall time (as written: bit for bit), steps.csv byte for byte."""
    ref_rows, rows = read_rows(ref_run / "metrics.csv"), read_rows(run / "metrics.csv")
    assert len(rows) == len(ref_rows) == 3
    for ra, rb in zip(ref_rows, rows):
        assert {k: v for k, v in ra.items() if k != "time_s"} == {k: v for k, v in rb.items() if k != "time_s"}
    assert (run / "steps.csv").read_text() == (ref_run / "steps.csv").read_text()


def checkpoint_epoch(run):
    from mindsponge_mm.models.potential import read_checkpoint

    return read_checkpoint(run / "checkpoints" / "last.safetensors")[0]["training_state"]["epoch"]


def test_two_identical_cli_runs_print_and_write_the_same_numbers(cli_run, tmp_path):
    """Same config and seed, two processes: the printed lines (but for wall times and the output path),
    metrics.csv, steps.csv and the checkpoint tensors are identical, bit for bit."""
    import re

    from safetensors.numpy import load_file

    ref_run, ref_out = cli_run
    run, out = cli_train(tmp_path, "again")

    def printed(text, path):
        text = text.replace(str(path), "RUN")
        return [re.sub(r"\s+[0-9.]+ s$", "", ln) for ln in text.splitlines()]

    assert printed(out.stdout, run) == printed(ref_out.stdout, ref_run)
    assert sum(ln.startswith("epoch ") for ln in printed(out.stdout, run)) == 3
    assert_same_metrics(ref_run, run)
    for name in ("last", "best"):
        a, b = (load_file(str(r / "checkpoints" / f"{name}.safetensors")) for r in (ref_run, run))
        assert a.keys() == b.keys()
        for key in a:
            assert np.array_equal(a[key], b[key]), (name, key)


@pytest.mark.slow
def test_resume_after_kill_9_at_every_write_point_matches_the_uninterrupted_run(cli_run, tmp_path):
    """The process SIGKILLs itself (test hook MINDSPONGE_MM_TEST_KILL_AT in train/trainer.py) at three moments,
    each resumed with ``mindsponge-mm train --resume RUN``: after steps.csv but before the checkpoint (epoch 2),
    halfway through writing the checkpoint's temporary file (epoch 2 again), and during validation (epoch 3).
    The last resume ends with exactly the metrics and step losses of the uninterrupted run."""
    ref_run, _ = cli_run
    ref_steps = (ref_run / "steps.csv").read_text().splitlines()
    run = tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(job(tmp_path)))

    killed = run_cli("train", cfg, env_extra={"MINDSPONGE_MM_TEST_KILL_AT": "after_steps_csv:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (run / "steps.csv").read_text().splitlines() == ref_steps[:7]  # header + epochs 1 and 2
    assert len(read_rows(run / "metrics.csv")) == 1 and checkpoint_epoch(run) == 1

    killed = run_cli("train", "--resume", run, env_extra={"MINDSPONGE_MM_TEST_KILL_AT": "mid_checkpoint:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    partial = list((run / "checkpoints").glob(".last.safetensors.*.tmp"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < (run / "checkpoints" / "last.safetensors").stat().st_size
    assert len(read_rows(run / "metrics.csv")) == 1 and checkpoint_epoch(run) == 1

    killed = run_cli("train", "--resume", run, env_extra={"MINDSPONGE_MM_TEST_KILL_AT": "during_eval:3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert len(read_rows(run / "metrics.csv")) == 2 and checkpoint_epoch(run) == 2
    assert (run / "steps.csv").read_text().splitlines() == ref_steps[:7]

    out = run_cli("train", "--resume", run)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resumed" in out.stdout and "after epoch 2" in out.stdout
    assert_same_metrics(ref_run, run)
    assert checkpoint_epoch(run) == 3


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(full_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(full_run[0], run)
    before = (run / "checkpoints" / "last.safetensors").read_bytes()
    config = job(tmp_path, training={"epochs": 6, "lr": 1e30, "clip_grad_norm": None,
                                     "scheduler": {"type": "constant"}})
    with pytest.raises(UserError, match="loss became .*last.safetensors holds the last good epoch"):
        train(config, resume=run, log=lambda _: None)
    assert (run / "checkpoints" / "last.safetensors").read_bytes() == before
    Potential.load(run / "checkpoints" / "last.safetensors")


def test_resume_with_another_model_is_refused(full_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(full_run[0], run)
    config = job(tmp_path, model={"name": "painn", "n_features": 8, "n_interactions": 1, "n_rbf": 8})
    with pytest.raises(UserError, match="other hyperparameters"):
        train(config, resume=run, log=lambda _: None)
    config = job(tmp_path)
    with pytest.raises(UserError, match="already holds a training run"):
        train(config, log=lambda _: None)


def test_data_and_model_mismatches(tmp_path):
    with pytest.raises(UserError, match="no 'stress' column"):
        train(job(tmp_path, training={"loss": {"stress_weight": 1.0}}), log=lambda _: None)
    with pytest.raises(ConfigError, match="model.elements lacks O"):
        train(job(tmp_path, model={**TINY, "elements": ["H", "C"]}), log=lambda _: None)
    with pytest.raises(ConfigError, match="exceeds data.cutoff"):
        train(job(tmp_path, model={**TINY, "cutoff": 6.0}), log=lambda _: None)


# ------------------------------------------------------------------------------ evaluate and export
def test_evaluate_writes_metrics_and_parity_plots(full_run, tmp_path):
    run, _ = full_run
    lines = []
    result = evaluate(run, "bundled:ethanol", "test", out_dir=tmp_path, log=lines.append)
    assert (tmp_path / "parity_energy.png").exists() and (tmp_path / "parity_forces.png").exists()
    assert "forces" in lines[-1] and "meV/Ang" in lines[-1]
    # recompute every metric from the best checkpoint's predictions, one test frame at a time, with numpy
    import json

    from mindsponge_mm.data import AtomsDataset

    with np.load(run / "split.npz") as split:
        test_frames = split["test"]
    assert len(test_frames) == 10
    potential = Potential.load(run / "checkpoints" / "best.safetensors")
    ds = AtomsDataset.open("bundled:ethanol")
    de, dea, df = [], [], []
    for i in test_frames:
        frame = ds[int(i)]
        pred = potential.evaluate(collate([frame], 4.0, properties=["energy", "forces"]))
        n = len(frame["atomic_numbers"])
        de.append(float(pred["energy"][0]) - float(frame["energy"]))
        dea.append(de[-1] / n)
        df.append(pred["forces"][:n] - frame["forces"])
    de, dea, df = np.array(de), np.array(dea), np.concatenate(df)
    want = {"energy_mae": np.abs(de).mean(), "energy_rmse": np.sqrt((de ** 2).mean()),
            "energy_per_atom_mae": np.abs(dea).mean(), "energy_per_atom_rmse": np.sqrt((dea ** 2).mean()),
            "forces_mae": np.abs(df).mean(), "forces_rmse": np.sqrt((df ** 2).mean())}
    stored = json.loads((tmp_path / "evaluation.json").read_text())
    assert stored["split"] == "test" and stored["metrics"] == result["metrics"]
    assert set(stored["metrics"]) == set(want)
    for key, value in want.items():
        # float32 model: energies near -310 eV carry ~3e-5 eV rounding, forces ~1e-7 eV/Ang
        tol = 1e-4 if key.startswith("energy") else 1e-5
        assert stored["metrics"][key] == pytest.approx(value, rel=tol), key
    with pytest.raises(UserError, match="needs a run directory"):
        evaluate(run / "checkpoints" / "best.safetensors", "bundled:ethanol", "test", out_dir=tmp_path)
    with pytest.raises(UserError, match="no such run directory or checkpoint"):
        evaluate(tmp_path / "nope", "bundled:ethanol")


def test_mindir_export_gives_the_same_numbers(full_run, tmp_path):
    run, _ = full_run
    path = export(run, "mindir", tmp_path / "potential.mindir", log=lambda _: None)
    graph = load_mindir(path)
    potential = Potential.load(run / "checkpoints" / "best.safetensors")
    batch = example_batch(potential, yaml.safe_load((run / "config.yaml").read_text()))
    got = graph(*potential.inputs(batch))
    want = potential.evaluate(batch)
    np.testing.assert_allclose(got[0].asnumpy(), want["energy"], rtol=1e-6)
    np.testing.assert_allclose(got[2].asnumpy(), want["forces"], rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="not supported"):
        export(run, "onnx")


def test_stress_loss_weight_gradient_matches_finite_differences(copper_frames):
    """The stress term needs the weight gradient of ∂E/∂ε (double backward through the strain)."""
    model = build("schnet", elements=["Cu"], cutoff=4.0, n_features=8, n_interactions=1, n_rbf=8, dtype="float64",
                  seed=2)
    potential = Potential(model)
    frames = [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": a.cell[:], "pbc": a.pbc,
               "energy": a.get_potential_energy(), "forces": a.get_forces(),
               "stress": a.get_stress(voigt=False)} for a in copper_frames[4:6]]
    batch = collate(frames, 4.0, properties=["energy", "forces", "stress"], dtype="float64")
    loss = PotentialLoss(potential, (0.0, 0.0, 1.0))
    inputs = loss_inputs(potential, batch)
    weights = list(model.trainable_params())
    _, grads = ms.jit(ms.value_and_grad(loss, None, weights))(*inputs)
    loss_at = ms.jit(loss.construct)
    assert max(float(np.abs(g.asnumpy()).max()) for g in grads) > 1e-6  # the stress term does reach the weights
    rng = np.random.default_rng(1)
    for p, g in list(zip(weights, grads))[:4]:
        flat = p.asnumpy().reshape(-1).copy()
        k = int(rng.integers(flat.size))
        values = []
        for sign in (1, -1):
            moved = flat.copy()
            moved[k] += sign * 1e-5
            p.copy_(ms.Tensor(moved.reshape(p.shape)))
            values.append(float(loss_at(*inputs).asnumpy()))
        p.copy_(ms.Tensor(flat.reshape(p.shape)))
        assert g.asnumpy().reshape(-1)[k] == pytest.approx((values[0] - values[1]) / 2e-5, rel=1e-5, abs=1e-12)


def test_global_norm_clipping_matches_mindspore():
    import mindspore as ms
    from mindspore import ops

    from mindsponge_mm.train.step import clip_by_global_norm

    rng = np.random.default_rng(0)
    grads = tuple(ms.Tensor(rng.normal(size=shape).astype(np.float32)) for shape in [(3, 4), (5,), (2, 2, 2)])
    norm = np.sqrt(sum((g.asnumpy() ** 2).sum() for g in grads))
    for clip in (0.5 * norm, 2.0 * norm):  # clipped, and left alone
        ours = clip_by_global_norm(grads, float(clip))
        reference = ops.clip_by_global_norm(grads, float(clip))
        for a, b in zip(ours, reference):
            np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-6, atol=1e-7)
    clipped = clip_by_global_norm(grads, float(0.5 * norm))
    assert np.sqrt(sum((g.asnumpy() ** 2).sum() for g in clipped)) == pytest.approx(0.5 * norm, rel=1e-5)
