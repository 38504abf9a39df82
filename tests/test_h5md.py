"""H5MD output (layout checked with h5py, read back, survives kill -9), bit-for-bit restarts, the MD job."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

from md_helpers import SmoothLJ, argon
from mindsponge_mm.errors import UserError
from mindsponge_mm.md import MDState, Simulation, build_integrator
from mindsponge_mm.md.h5md import OBSERVABLE_UNITS, H5MDWriter, read_atoms, read_h5md

LJ = {"type": "lennard_jones", "epsilon": 0.0104, "sigma": 3.4, "cutoff": 6.0, "shift": True}


def small_sim(n=2, integrator="bussi", **kw):
    params = dict(dt=5.0, temperature=120.0) if integrator != "verlet" else dict(dt=5.0)
    params.update(kw)
    state = MDState.from_atoms(argon(n, rattle=0.15)).maxwell_boltzmann(120, seed=1)
    return Simulation(state, SmoothLJ(cutoff=5.5, r_on=4.5), build_integrator(integrator, **params), skin=0.5, seed=3)


def test_layout_follows_h5md_and_reads_back(tmp_path):
    sim = small_sim(2)
    path = tmp_path / "traj.h5"
    recorded = [sim.state.positions.copy()]
    with H5MDWriter(path, sim.state, velocities=True, forces=True, author="tester") as writer:
        writer.append(sim)
        sim.run(30, block=10, callback=lambda s: (writer.append(s), recorded.append(s.state.positions.copy())))
    with h5py.File(path, "r") as f:
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert f["h5md/author"].attrs["name"] == "tester"
        assert f["h5md/creator"].attrs["name"] == "mindsponge_mm" and "version" in f["h5md/creator"].attrs
        assert sorted(f["particles"]) == ["system_0", "system_1"]
        g = f["particles/system_1"]
        assert g["box"].attrs["dimension"] == 3
        assert [b.decode() for b in g["box"].attrs["boundary"]] == ["periodic"] * 3
        for name, shape in (("position", (4, 32, 3)), ("velocity", (4, 32, 3)), ("force", (4, 32, 3)),
                            ("box/edges", (4, 3, 3))):
            el = g[name]
            assert el["value"].shape == shape and el["value"].maxshape[0] is None and el["value"].chunks
            assert list(el["step"][()]) == [0, 10, 20, 30]
            np.testing.assert_allclose(el["time"][()], [0, 50, 100, 150])
        assert g["position/value"].attrs["unit"] == "Angstrom" and g["position/time"].attrs["unit"] == "fs"
        assert list(g["species"][()]) == [18] * 32
        for key, unit in OBSERVABLE_UNITS.items():
            obs = f[f"observables/system_1/{key}"]
            assert obs["value"].shape == (4,) and obs["value"].attrs["unit"] == unit
    data = read_h5md(path)
    np.testing.assert_array_equal(data["groups"]["system_0"]["position"], np.array(recorded)[:, :32])
    np.testing.assert_array_equal(data["groups"]["system_1"]["position"], np.array(recorded)[:, 32:])
    obs = sim.observables()
    assert data["observables"]["system_1"]["temperature"]["value"][-1] == pytest.approx(obs["temperature"][1])
    atoms = read_atoms(path, -1, group="system_1")
    np.testing.assert_allclose(atoms.positions, sim.state.positions[32:], atol=1e-6)
    np.testing.assert_allclose(atoms.get_velocities(), sim.state.to_atoms()[1].get_velocities(), rtol=1e-5, atol=1e-7)
    assert atoms.info["step"] == 30 and atoms.pbc.all()
    assert len(read_atoms(path, None, group="system_0")) == 4


def test_single_structure_uses_group_all(tmp_path):
    sim = small_sim(1, "verlet")
    with H5MDWriter(tmp_path / "one.h5", sim.state) as w:
        w.append(sim)
    with h5py.File(tmp_path / "one.h5", "r") as f:
        assert list(f["particles"]) == ["all"] and "velocity" not in f["particles/all"]
        assert f["observables/potential_energy/value"].shape == (1,)
    with pytest.raises(UserError, match="trajectory not found"):
        read_h5md(tmp_path / "missing.h5")


@pytest.mark.parametrize("integrator, kw", [
    ("langevin", {}),
    ("nose_hoover_chain", {}),
    ("stochastic_cell_rescaling", dict(pressure=500.0, barostat_tau=200.0, compressibility=2e-4)),
])
def test_restart_continues_bit_for_bit(tmp_path, integrator, kw):
    k = 40
    straight = small_sim(2, integrator, **kw)
    straight.run(2 * k, block=20)
    first = small_sim(2, integrator, **kw)
    first.run(k, block=20)
    first.save_checkpoint(tmp_path / "md.npz")
    second = Simulation.restore(tmp_path / "md.npz", SmoothLJ(cutoff=5.5, r_on=4.5))
    assert second.state.step == k
    second.run(k, block=20)
    for name in ("positions", "momenta", "cell"):
        np.testing.assert_array_equal(getattr(second.state, name), getattr(straight.state, name), err_msg=name)
    np.testing.assert_array_equal(second.aux_np, straight.aux_np)
    assert second.state.step == straight.state.step and second.state.time == straight.state.time


def md_config(out, steps, **extra):
    md = {"system": str(out.parent / "argon.xyz"), "potential": LJ, "integrator": "bussi", "dt": 5.0,
          "steps": steps, "block": 20, "temperature": 120.0, "progress": False, "skin": 0.5}
    md.update(extra)
    return {"run": {"seed": 1, "output": str(out)}, "md": md}


def test_job_writes_trajectory_and_plot_and_restarts_exactly(tmp_path):
    from mindsponge_mm.md.job import run_md

    write(tmp_path / "argon.xyz", argon(1, rattle=0.1)[0])
    lines = []
    res = run_md(md_config(tmp_path / "a", 80), log=lines.append)
    assert res["trajectory"].exists() and res["plot"].exists() and res["plot"].stat().st_size > 1000
    assert res["steps_per_second"] > 0 and res["ns_per_day"] > 0 and any("ns/day" in line for line in lines)
    full = read_h5md(res["trajectory"])["groups"]["all"]
    assert list(full["step"]) == [0, 20, 40, 60, 80]
    # 40 steps, then restart from the checkpoint up to 80 steps: the same trajectory, appended to the same file
    run_md(md_config(tmp_path / "b", 40, plot=False), log=lines.append)
    run_md(md_config(tmp_path / "b", 80, restart=str(tmp_path / "b" / "md_checkpoint.npz")), log=lines.append)
    part = read_h5md(tmp_path / "b" / "trajectory.h5")["groups"]["all"]
    assert list(part["step"]) == [0, 20, 40, 60, 80]
    np.testing.assert_array_equal(part["position"], full["position"])
    with pytest.raises(UserError, match="md.dt = 50.0 is out of range"):
        run_md(md_config(tmp_path / "c", 10, dt=50.0))
    with pytest.raises(UserError, match="checkpoint not found"):
        run_md(md_config(tmp_path / "c", 10, potential=str(tmp_path / "missing.safetensors")))
    with pytest.raises(UserError, match="not found"):
        run_md(md_config(tmp_path / "c", 10, system=str(tmp_path / "missing.xyz")))


def test_kill_9_leaves_a_readable_trajectory(tmp_path):
    write(tmp_path / "argon.xyz", argon(1, rattle=0.1)[0])
    config = md_config(tmp_path / "run", 1_000_000, block=5, plot=False)
    script = tmp_path / "run_md.py"
    script.write_text(textwrap.dedent(f"""
        from mindsponge_mm.md.job import run_md
        run_md({config!r}, log=lambda line: None)
    """))
    env = dict(os.environ, GLOG_v="3")
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = tmp_path / "run" / "md_checkpoint.npz"
    try:
        deadline = time.time() + 240
        step = 0
        while time.time() < deadline and proc.poll() is None:
            if checkpoint.exists():
                import json

                with np.load(checkpoint) as z:
                    step = json.loads(str(z["meta"]))["step"]
                if step >= 30:
                    break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert step >= 30
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    data = read_h5md(tmp_path / "run" / "trajectory.h5")["groups"]["all"]
    assert len(data["step"]) >= step // 5 + 1 and np.isfinite(data["position"]).all()
    assert read_atoms(tmp_path / "run" / "trajectory.h5").info["step"] >= step


def test_job_systems_from_bundled_smiles_and_files(tmp_path):
    from mindsponge_mm.config import validate
    from mindsponge_mm.md.job import MD_SCHEMA, load_system

    def md(**kw):
        return validate({"md": {"potential": "x", **kw}}, {"md": MD_SCHEMA})["md"]

    ethanol = load_system(md(system="bundled:ethanol", frame=-1))
    assert sorted(ethanol.get_chemical_symbols()) == sorted("CCOHHHHHH") and not ethanol.pbc.any()
    pytest.importorskip("rdkit")
    water = load_system(md(system="smiles:O"))
    assert water.get_chemical_formula() == "H2O"
    write(tmp_path / "cu.xyz", bulk("Cu", cubic=True))
    cu = load_system(md(system=str(tmp_path / "cu.xyz"), replicate=[2, 2, 2]))
    assert len(cu) == 32
    with pytest.raises(UserError, match="replicate needs a fully periodic"):
        load_system(md(system="smiles:O", replicate=[2, 1, 1]))
    with pytest.raises(UserError, match="md.frame = 99999"):
        load_system(md(system="bundled:ethanol", frame=99999))
