"""Tutorial 5: molecular dynamics (NVE, NVT, NPT), H5MD trajectories and geometry optimisation.

Run it with ``python tutorials/05_md.py`` (about five minutes on 2 cores; the tests run a shorter
version with ``MINDSPONGE_MM_TUTORIAL_QUICK=1``). Everything is written under ./tutorial_runs.

1. Lennard-Jones argon: NVE (energy drift), NVT (mean temperature) and NPT (mean volume), the
   NPT run written to an H5MD file and read back.
2. Learned potentials: a small PaiNN trained on the bundled ethanol set runs NVE and NVT; a small
   SchNet trained on the bundled copper set (energies, forces and stress) runs NPT.
3. Relaxation: ASE's BFGS with our ASE calculator, and our batched FIRE / L-BFGS on many
   structures at once.

The same MD from the command line (run from the repository root)::

    mindsponge-mm md configs/md_lj.yaml              # liquid argon, NPT
    mindsponge-mm run configs/quickstart.yaml        # train; ends with a short NVT run of ethanol
    mindsponge-mm md configs/md_ethanol.yaml         # NVT ethanol with that checkpoint

Units: Å, eV, amu, K, fs, bar. ``MDState`` holds positions and momenta on the host;
``Simulation`` runs ``block`` steps per compiled call and syncs the state between blocks.
"""
import itertools
import os
import time
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.optimize import BFGS
from scipy.optimize import minimize_scalar

from mindsponge_mm.config import load_config
from mindsponge_mm.job_schema import JOB_SCHEMA
from mindsponge_mm.data import AtomsDataset
from mindsponge_mm.interfaces.ase import Calculator
from mindsponge_mm.jobs import train
from mindsponge_mm.md import MDState, Simulation, build_integrator
from mindsponge_mm.md.h5md import H5MDWriter, read_atoms, read_h5md
from mindsponge_mm.md.optimize import optimize
from mindsponge_mm.models import Potential
from mindsponge_mm.potentials import LennardJones

QUICK = os.environ.get("MINDSPONGE_MM_TUTORIAL_QUICK") == "1"
ROOT = Path(__file__).resolve().parents[1]
OUT = Path("tutorial_runs") / ("md_quick" if QUICK else "md")
OUT.mkdir(parents=True, exist_ok=True)
STEPS = 400 if QUICK else 2000  # LJ steps of 5 fs for NVE and NVT (NPT: twice as many)
START = time.perf_counter()


def section(title):
    print(f"\n=== {title}  [{time.perf_counter() - START:.0f} s]")


def run(sim, steps, block):
    """Run ``steps`` steps; return the observables after each block as arrays [n_blocks] (structure 0)."""
    rows = []
    sim.run(steps, block=block, callback=lambda s: rows.append({k: v[0] for k, v in s.observables().items()}))
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


# ---------------------------------------------------------------------------------------------
# 1. Lennard-Jones argon: 108 atoms (3x3x3 fcc cells), ε = 0.0104 eV, σ = 3.4 Å, cutoff 8.5 Å.
#    shift=True makes the energy continuous at the cutoff (good for NVE); tail=True adds the
#    long-range pressure correction (right for NPT).
section("1. Lennard-Jones argon")
lj = LennardJones(epsilon=0.0104, sigma=3.4, cutoff=8.5, shift=True, tail=True)
argon = bulk("Ar", "fcc", a=5.6, cubic=True) * (3, 3, 3)
argon.rattle(0.05, seed=0)
n_ar = len(argon)

# NVE: velocity Verlet. Velocities from Maxwell-Boltzmann at 60 K (centre-of-mass motion removed).
state = MDState.from_atoms(argon).maxwell_boltzmann(60.0, seed=1)
sim = Simulation(state, lj, build_integrator("verlet", dt=5.0), skin=1.0)
e0 = sim.observables()["total_energy"][0]
obs = run(sim, STEPS, block=100)
drift = np.abs(obs["total_energy"] - e0).max() / n_ar
print(f"NVE  {STEPS} steps of 5 fs: max |E_total - E_0| = {drift:.2e} eV/atom "
      f"(kinetic energy {obs['kinetic_energy'].mean() / n_ar:.2e} eV/atom)")
# Verlet's energy error is of order (ω dt)²/8 ≈ 5e-4 of the kinetic energy (argon: ω dt ≈ 0.06);
# 1e-2 leaves room for the force steps at the cutoff and float32 sums.
assert drift < 1e-2 * obs["kinetic_energy"].mean() / n_ar, drift

# NVT: Bussi stochastic velocity rescaling at 90 K, started at 60 K.
sim = Simulation(state, lj, build_integrator("bussi", dt=5.0, temperature=90.0, tau=100.0), skin=1.0, seed=2)
obs = run(sim, STEPS, block=50)
half = len(obs["temperature"]) // 2
print(f"NVT  {STEPS} steps, target 90 K: mean temperature (second half) {obs['temperature'][half:].mean():.1f} K")


def temperature_bound(target, n_dof, samples, duration, tau):
    """Three standard deviations of a mean temperature: one sample fluctuates by T √(2/N_f), and a run
    of ``duration`` fs holds about duration / tau independent ones (at most ``samples``)."""
    return 3 * target * np.sqrt(2 / n_dof) / np.sqrt(max(1.0, min(samples, duration / tau)))


second_half = obs["temperature"][half:]
assert abs(second_half.mean() - 90.0) < temperature_bound(90.0, 3 * n_ar - 3, len(second_half), STEPS / 2 * 5.0, 100.0)

# NPT: stochastic cell rescaling at 120 K and 100 bar (above the LJ melting line: the crystal
# melts and expands). The run is written to an H5MD file, one frame per block.
integ = build_integrator("stochastic_cell_rescaling", dt=5.0, temperature=120.0, tau=100.0, pressure=100.0,
                         barostat_tau=500.0, compressibility=2e-4)
sim = Simulation(MDState.from_atoms(argon).maxwell_boltzmann(120.0, seed=3), lj, integ, skin=1.0, seed=3, wrap=True)
v0 = sim.observables()["volume"][0]
traj = OUT / "argon_npt.h5"
with H5MDWriter(traj, sim.state, velocities=True) as writer:
    writer.append(sim)  # frame 0
    sim.run(2 * STEPS, block=50, callback=writer.append)
data = read_h5md(traj)  # everything as numpy arrays
volume = data["observables"]["all"]["volume"]["value"]
pressure = data["observables"]["all"]["pressure"]["value"]
half = len(volume) // 2
print(f"NPT  {2 * STEPS} steps, 120 K, 100 bar: volume {v0:.0f} -> mean {volume[half:].mean():.0f} Å³ "
      f"(second half), mean pressure {pressure[half:].mean():.0f} bar (it fluctuates by hundreds of bar)")
# The crystal melts: the liquid at 120 K and 100 bar takes ~1.4x the volume. A barostat that does not
# act keeps v0, where the hot crystal's pressure is thousands of bar.
assert volume[half:].mean() > 1.05 * v0 and abs(pressure[half:].mean() - 100.0) < 500.0
last = read_atoms(traj, -1)  # a frame as ase.Atoms, with velocities
print(f"H5MD {traj}: {len(data['groups']['all']['step'])} frames, last at step {last.info['step']} "
      f"({last.info['time_fs']:.0f} fs), cell {last.cell.lengths().round(2)} Å, "
      f"T {last.get_temperature():.0f} K (3N degrees of freedom)")
assert len(data["groups"]["all"]["step"]) == 2 * STEPS // 50 + 1 and last.info["step"] == 2 * STEPS
assert np.allclose(last.get_volume(), volume[-1], rtol=1e-5)  # float32 cell

# ---------------------------------------------------------------------------------------------
# 2. Learned potentials. Train small models quickly from the bundled configs (see tutorial 4);
#    an existing run directory is reused.
section("2. learned potentials: training")


def trained(config_name, name, overrides):
    out = OUT / name
    best = out / "checkpoints" / "best.safetensors"
    if not best.exists():
        config = load_config(ROOT / "configs" / config_name, [f"run.output={out}", *overrides], schema=JOB_SCHEMA)
        train(config, log=lambda _text: None)
    return Potential.load(best)


epochs, split = (1, [40, 10, 10]) if QUICK else (4, [300, 50, 50])
painn = trained("quickstart.yaml", "painn_ethanol",
                [f"training.epochs={epochs}", f"data.split={split}", "model.n_features=32", "model.n_interactions=2"])
schnet = trained("schnet_copper.yaml", "schnet_copper",
                 [f"training.epochs={epochs}", f"data.split={split}", "model.n_features=16",
                  f"model.n_interactions={1 if QUICK else 2}"])
print(f"trained {painn.model.name} (elements {painn.elements}) and {schnet.model.name} (elements {schnet.elements})")

section("2. learned potentials: MD")
ethanol = AtomsDataset.open("bundled:ethanol").to_atoms(0)
mol_steps = 200 if QUICK else 1000

# NVE ethanol, 0.25 fs steps (hydrogens), started at 300 K.
state = MDState.from_atoms(ethanol).maxwell_boltzmann(300.0, seed=4)
sim = Simulation(state, painn, build_integrator("verlet", dt=0.25), skin=0.5)
e0 = sim.observables()["total_energy"][0]
obs = run(sim, mol_steps, block=50)
drift = np.abs(obs["total_energy"] - e0).max()
print(f"NVE  ethanol, {mol_steps} steps of 0.25 fs: max |E_total - E_0| = "
      f"{1000 * drift:.2f} meV (kinetic energy ~{obs['kinetic_energy'].mean():.2f} eV)")
# O-H and C-H stretches: ω dt ≈ 0.15, so Verlet's error is ~(ω dt)²/8 ≈ 3e-3 of the kinetic energy.
assert drift < 1e-2 * obs["kinetic_energy"].mean(), drift

# NVT ethanol: Langevin (BAOAB) at 300 K, 0.5 fs steps.
sim = Simulation(state, painn, build_integrator("langevin", dt=0.5, temperature=300.0, tau=50.0), skin=0.5, seed=5)
obs = run(sim, mol_steps, block=50)
print(f"NVT  ethanol, {mol_steps} steps of 0.5 fs, target 300 K: mean temperature {obs['temperature'].mean():.0f} K "
      f"(one molecule, N_f = 24: it fluctuates by ~{300 * np.sqrt(2 / 24):.0f} K)")
assert abs(obs["temperature"].mean() - 300.0) < temperature_bound(300.0, 24, len(obs["temperature"]), mol_steps * 0.5, 50.0)

# NPT copper: the SchNet's stress drives the barostat. 32 atoms, 300 K, 1 bar.
copper = AtomsDataset.open("bundled:copper").to_atoms(0)
integ = build_integrator("stochastic_cell_rescaling", dt=2.0, temperature=300.0, tau=100.0, pressure=1.0,
                         barostat_tau=500.0, compressibility=7e-7)  # copper: bulk modulus ~140 GPa
sim = Simulation(MDState.from_atoms(copper).maxwell_boltzmann(300.0, seed=6), schnet, integ, skin=0.5, seed=6)
v0 = sim.observables()["volume"][0]
obs = run(sim, mol_steps, block=50)
print(f"NPT  copper ({len(copper)} atoms), {mol_steps} steps of 2 fs, 300 K, 1 bar: volume {v0:.1f} -> mean "
      f"{obs['volume'].mean():.1f} Å³, mean temperature {obs['temperature'].mean():.0f} K")
assert abs(obs["volume"].mean() / v0 - 1) < 0.05  # copper is stiff: 5 % of its volume takes ~7 GPa

# ---------------------------------------------------------------------------------------------
# 3. Relaxation. A distorted ethanol relaxed with ASE's BFGS driving our calculator, and the same
#    plus several more distortions relaxed together with our batched optimisers.
section("3. relaxation")
distorted = []
for k in range(4):
    a = ethanol.copy()
    a.calc = None
    a.rattle(0.1, seed=10 + k)
    distorted.append(a)
calculator = Calculator(painn)
starts = []
for a in distorted:
    a.calc = calculator
    starts.append(a.get_potential_energy())
    a.calc = None
atoms = distorted[0].copy()
atoms.calc = calculator
e_start = atoms.get_potential_energy()
bfgs = BFGS(atoms, logfile=None)
converged = bfgs.run(fmax=0.05, steps=300)
print(f"ASE BFGS: {e_start:.4f} -> {atoms.get_potential_energy():.4f} eV in {bfgs.nsteps} steps "
      f"(converged {converged}, max force {np.linalg.norm(atoms.get_forces(), axis=1).max():.3f} eV/Å)")
assert converged and np.linalg.norm(atoms.get_forces(), axis=1).max() < 0.05
assert atoms.get_potential_energy() < e_start

e_bfgs = atoms.get_potential_energy()
for method in ("fire", "lbfgs"):
    relaxed, info = optimize(distorted, painn, method=method, fmax=0.05, steps=500)
    print(f"batched {method:5s} ({len(distorted)} structures, {info['evaluations']} evaluations): relaxed energies "
          f"{np.round(info['energy'], 4).tolist()} eV, converged {info['converged'].tolist()}; "
          f"structure 0 differs from BFGS by {1000 * (info['energy'][0] - e_bfgs):+.1f} meV")
    assert info["converged"].all() and (info["fmax"] < 0.05).all() and (info["energy"] < np.array(starts)).all()

# A periodic crystal with its cell: LJ argon compressed by 3 % relaxes back to the LJ lattice.
squeezed = bulk("Ar", "fcc", a=5.2, cubic=True)
squeezed.rattle(0.02, seed=1)
lj_plain = LennardJones(epsilon=0.0104, sigma=3.4, cutoff=8.5)
relaxed, info = optimize([squeezed], lj_plain, method="lbfgs", fmax=1e-3, relax_cell=True, steps=500)
print(f"cell relaxation (LJ argon): a {5.2:.2f} -> {relaxed[0].cell.lengths().mean():.4f} Å, "
      f"energy {info['energy'][0] / len(squeezed):.6f} eV/atom, converged {bool(info['converged'][0])}")


def lj_fcc_energy(a, epsilon=0.0104, sigma=3.4, cutoff=8.5):
    """Energy per atom of the perfect fcc lattice (constant a) with the truncated LJ pair energy, eV."""
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    cells = np.array(list(itertools.product(range(-3, 4), repeat=3)))
    r = np.linalg.norm(a * (cells[:, None, :] + basis).reshape(-1, 3), axis=1)
    s6 = (sigma / r[(r > 0) & (r < cutoff)]) ** 6
    return 0.5 * np.sum(4 * epsilon * (s6 * s6 - s6))


best = minimize_scalar(lj_fcc_energy, bounds=(5.0, 5.6), method="bounded", options={"xatol": 1e-8})
print(f"  the minimum of the lattice sum: a = {best.x:.4f} Å, {best.fun:.6f} eV/atom")
# The optimiser stops when each cell row's generalised force V σ / N is below fmax (1e-3 eV/Å): near the
# minimum that allows |Δa| up to 3 fmax / (a e''), e'' = d²E/da² per atom, and an energy ½ e'' Δa² above it.
curvature = (lj_fcc_energy(best.x + 1e-3) - 2 * best.fun + lj_fcc_energy(best.x - 1e-3)) / 1e-6
da_max = 3 * 1e-3 / (best.x * curvature)
assert info["converged"][0] and abs(relaxed[0].cell.lengths().mean() - best.x) < da_max
excess = info["energy"][0] / len(squeezed) - best.fun
assert -1e-7 < excess < 0.5 * curvature * da_max**2 + 1e-7, excess  # ± float32 rounding of the energy
section("done")
