"""Bad input and interruptions through the real command: one line on stderr, exit code 2 (130 for an
interrupt), no traceback, no half-written file, and no run lost to a second writer."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
import ase.io

from mindsponge_mm.io_utils import RunLock, atomic_path, remove_stale_temporaries

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
TINY_TRAINING = ("data.split=[20,5,5]", "data.batch_size=5", "model.n_features=8", "model.n_interactions=1",
                 "md.steps=0")


def cli(*args, cwd=None, prefix=(), env=None, **kwargs):
    """The installed command exactly as a user runs it."""
    env = {**os.environ, "GLOG_v": "3", **(env or {})}
    return subprocess.run([*prefix, sys.executable, "-m", "mindsponge_mm.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=600, **kwargs)


def assert_one_line_error(out, *words, code=2):
    assert out.returncode == code, (out.returncode, out.stdout[-2000:], out.stderr[-2000:])
    err = out.stderr.strip()
    assert "Traceback" not in out.stderr, out.stderr
    assert err.startswith("error: ") and "\n" not in err, err
    for word in words:
        assert word in err, (word, err)
    return err


def frames_in(path) -> int:
    with h5py.File(path, "r") as f:
        return f["particles/all/position/value"].shape[0]


@pytest.fixture(scope="module")
def argon(tmp_path_factory):
    """A 32-atom argon crystal and an MD config for it (LJ, tiny blocks)."""
    folder = tmp_path_factory.mktemp("argon")
    atoms = bulk("Ar", "fcc", a=5.3, cubic=True) * (2, 2, 2)
    ase.io.write(folder / "argon.extxyz", atoms)
    config = folder / "md.yaml"
    config.write_text(
        f"run: {{seed: 0, output: {folder / 'run'}}}\n"
        f"md:\n  system: {folder / 'argon.extxyz'}\n"
        "  potential: {type: lennard_jones, epsilon: 0.0104, sigma: 3.4, cutoff: 5.0, dtype: float64}\n"
        "  integrator: langevin\n  dt: 5.0\n  steps: 20\n  temperature: 100.0\n  block: 10\n  plot: false\n"
    )
    return config


# ----------------------------------------------------------------------------- one writer per run


def test_a_second_writer_is_refused_and_names_the_running_process(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("first run's config\n")
    with RunLock(run):  # this process plays the first, still running job
        out = cli("train", QUICKSTART, f"run.output={run}", "training.epochs=1", *TINY_TRAINING)
    assert_one_line_error(out, f"{run} is in use by a running job", f"PID {os.getpid()}", "choose another run.output")
    assert (run / "config.yaml").read_text() == "first run's config\n"
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.yaml"]


def test_md_never_overwrites_a_trajectory_silently(argon):
    run = Path(argon.parent / "run")
    assert cli("md", argon).returncode == 0
    assert frames_in(run / "trajectory.h5") == 3  # frames at steps 0, 10, 20
    again = cli("md", argon, "md.steps=10")
    assert_one_line_error(again, "trajectory.h5 already exists", "--restart", "--overwrite")
    assert frames_in(run / "trajectory.h5") == 3
    longer = cli("md", argon, "--restart", "md.steps=40")
    assert longer.returncode == 0, longer.stderr
    assert "restart" in longer.stdout and frames_in(run / "trajectory.h5") == 5
    fresh = cli("md", argon, "--overwrite", "md.steps=10")
    assert fresh.returncode == 0, fresh.stderr
    assert frames_in(run / "trajectory.h5") == 2
    assert_one_line_error(cli("md", argon, "--restart", "--overwrite"), "not allowed with argument")


def test_nve_may_start_from_rest_and_thermostats_need_a_temperature(argon, tmp_path):
    out = cli("md", argon, f"run.output={tmp_path / 'nve'}", "md.integrator=verlet", "md.temperature=0")
    assert out.returncode == 0, out.stderr
    assert_one_line_error(cli("md", argon, f"run.output={tmp_path / 'nvt'}", "md.temperature=0"),
                          "md.temperature = 0", "md.integrator: verlet")
    assert not (tmp_path / "nvt").exists()


# ----------------------------------------------------------------------------- unwritable outputs


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody may write, and the command prefix that makes root obey that too."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    prefix = ()
    if os.geteuid() == 0:
        if subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "true"]).returncode != 0:
            pytest.skip("running as root without setpriv: every folder is writable")
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    yield folder, prefix
    folder.chmod(0o755)


def test_unwritable_outputs_are_one_line_errors_before_any_work(read_only, argon, tmp_path):
    folder, prefix = read_only
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"not loaded before the output folder is checked")
    cases = [
        (("train", QUICKSTART, f"run.output={folder / 'run'}", *TINY_TRAINING), "run.output"),
        (("evaluate", fake, "bundled:ethanol", "--out", folder / "eval"), "--out"),
        (("export", fake, "--out", folder / "x" / "potential.mindir"), "--out"),
        (("md", argon, f"run.output={folder / 'md'}"), "run.output"),
        (("data", "convert", "bundled:ethanol", folder / "eth.h5"), "choose a writable location"),
    ]
    for args, word in cases:
        assert_one_line_error(cli(*args, prefix=prefix), word, "writable")
    assert list(folder.iterdir()) == []


# ----------------------------------------------------------------------------- interruptions


def _interrupt_when(proc, ready, timeout=300):
    start = time.time()
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - start < timeout, "the run never got going"
        time.sleep(0.2)
    time.sleep(1.0)  # inside a compiled block or step by now
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _popen(*args):
    env = {**os.environ, "GLOG_v": "3"}
    return subprocess.Popen([sys.executable, "-m", "mindsponge_mm.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_ctrl_c_during_compiled_md_and_training_exits_130_and_resumes(argon, tmp_path):
    run = tmp_path / "md"
    proc = _popen("md", argon, f"run.output={run}", "md.steps=100000", "md.block=200")
    code, _, err = _interrupt_when(proc, lambda: (run / "md_checkpoint.npz").exists())
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    with h5py.File(run / "trajectory.h5", "r") as f:
        reached = int(f["particles/all/position/step"][-1])
    target = reached + 400
    again = cli("md", argon, f"run.output={run}", "--restart", f"md.steps={target}", "md.block=200")
    assert again.returncode == 0, again.stderr
    assert f"done      step {target}" in again.stdout
    assert frames_in(run / "trajectory.h5") == target // 200 + 1

    train_dir = tmp_path / "train"
    proc = _popen("train", QUICKSTART, f"run.output={train_dir}", "training.epochs=30", *TINY_TRAINING)
    code, _, err = _interrupt_when(proc, lambda: (train_dir / "checkpoints" / "last.safetensors").exists())
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    resumed = cli("train", "--resume", train_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed" in resumed.stdout


# ----------------------------------------------------------------------------- files


def test_stale_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "eth.h5"
    dead = tmp_path / ".eth.h5.4194000.abcd.tmp"  # a PID above any live one here
    legacy = tmp_path / ".eth.h5.x1y2z3.tmp"
    other = tmp_path / ".other.h5.4194000.abcd.tmp"
    live = tmp_path / f".eth.h5.{os.getpid()}.abcd.tmp"  # a live writer's file stays
    for path in (dead, legacy, other, live):
        path.write_bytes(b"half")
    out = cli("data", "convert", "bundled:ethanol", target)
    assert out.returncode == 0, out.stderr
    assert not dead.exists() and not legacy.exists()
    assert other.exists() and live.exists()
    assert remove_stale_temporaries(tmp_path / "other.h5") == [other]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_follow_the_umask(tmp_path, umask):
    target = tmp_path / "eth.db"
    out = cli("data", "convert", "bundled:ethanol", target, preexec_fn=lambda: os.umask(umask))
    assert out.returncode == 0, out.stderr
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    old = os.umask(umask)
    try:  # safetensors and MindIR writers create 0600 / 0400 files; the rename keeps the umask's mode
        with atomic_path(tmp_path / "w.safetensors") as tmp:
            tmp.write_bytes(b"x")
            tmp.chmod(0o400)
    finally:
        os.umask(old)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_start_leaves_no_run_folder(tmp_path):
    run = tmp_path / "run"
    out = cli("train", QUICKSTART, f"run.output={run}", "data.path=nowhere.h5", *TINY_TRAINING)
    assert_one_line_error(out, "nowhere.h5")
    assert not run.exists()


def test_a_malformed_extxyz_line_is_named(tmp_path):
    frames = [molecule("H2O") for _ in range(3)]
    for k, atoms in enumerate(frames):
        atoms.info["energy"] = float(k)
    ase.io.write(tmp_path / "w.extxyz", frames)
    lines = (tmp_path / "w.extxyz").read_text().splitlines()
    lines[7] = "H 0.0 oops 0.1"  # the second atom of frame 1
    (tmp_path / "bad.extxyz").write_text("\n".join(lines) + "\n")
    assert_one_line_error(cli("data", "info", tmp_path / "bad.extxyz"), "frame 1 (lines 6-10)", "oops")


# ----------------------------------------------------------------------------- configs and overrides


def test_errors_in_overrides_are_blamed_on_the_command_line():
    err = assert_one_line_error(cli("train", QUICKSTART, "training.lr_typo=1"), "command line (training.lr_typo=1)",
                                "unknown key 'training.lr_typo'")
    assert "quickstart.yaml" not in err
    assert_one_line_error(cli("train", QUICKSTART, "training.epoch=1"), "command line (training.epoch=1)",
                          "did you mean 'training.epochs'")
    assert_one_line_error(cli("train", QUICKSTART, "training.lr=-1"), "command line (training.lr=-1)")


def test_md_potential_and_system_errors_name_the_key_path_and_the_file(argon, tmp_path):
    out = tmp_path / "md"
    err = assert_one_line_error(cli("md", argon, f"run.output={out}", "md.potential.sigmaa=3.4"),
                                f"{argon}: md.potential", "sigmaa", "did you mean 'sigma'")
    assert_one_line_error(cli("md", argon, f"run.output={out}", "md.potential.cutoff=0"),
                          f"{argon}: md.potential", "cutoff")
    assert_one_line_error(cli("md", argon, f"run.output={out}", "md.system=nowhere.xyz"),
                          f"{argon}: md.system", "nowhere.xyz")
    assert not out.exists(), err


def test_run_points_an_md_only_config_to_the_md_command():
    assert_one_line_error(cli("run", ROOT / "configs" / "md_lj.yaml"), "MD-only config", "mindsponge-mm md")


def test_generate_overrides_parse_after_seed_smiles():
    out = cli("generate", "sample", ROOT / "configs" / "generate.yaml", "--seed-smiles", "C=O", "CCO",
              "sample.bogus_key=1")
    assert_one_line_error(out, "command line (sample.bogus_key=1)", "unknown key 'sample.bogus_key'")


def test_the_missing_energy_error_names_the_loss_schedule(tmp_path):
    frames = []
    for k in range(12):
        atoms = molecule("H2O")
        atoms.rattle(0.05, seed=k)
        atoms.calc = SinglePointCalculator(atoms, forces=np.zeros((3, 3)))
        frames.append(atoms)
    ase.io.write(tmp_path / "forces_only.extxyz", frames)
    out = cli("train", QUICKSTART, f"run.output={tmp_path / 'run'}", f"data.path={tmp_path / 'forces_only.extxyz'}",
              "data.split=[8,2,2]", "training.loss.energy_weight=0", *TINY_TRAINING[1:])
    assert_one_line_error(out, "training.loss.schedule sets energy > 0 at epoch 11", "energy: 0 in every")
    assert not (tmp_path / "run").exists()


def test_an_interrupt_dropped_where_it_landed_is_raised_again(capsys):
    """A signal handler's KeyboardInterrupt raised inside a finaliser is dropped by Python; the recorded
    request makes the next check (each train step, each MD block) raise it again, and the dropped one
    prints no "Exception ignored" report."""
    import gc
    import weakref

    from mindsponge_mm import runtime

    previous = runtime.install_interrupt_handlers()
    try:
        runtime.check_interrupt()  # nothing pending

        class Anything:
            pass

        thing = Anything()
        weakref.finalize(thing, runtime._on_interrupt, signal.SIGTERM, None)
        del thing
        gc.collect()  # the KeyboardInterrupt is raised in the finaliser and dropped there
        assert runtime.interrupt_requested()
        with pytest.raises(KeyboardInterrupt):
            runtime.check_interrupt()
    finally:
        runtime.restore_interrupt_handlers(previous)
    assert "Exception ignored" not in capsys.readouterr().err
