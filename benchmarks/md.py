"""MD speed: steps/s and ns/day of the compiled loop (``md.Simulation``, velocity Verlet, k steps per
``ms.jit`` call, neighbor list in the graph) against ASE's VelocityVerlet driving our ASE calculator
(``interfaces.ase.Calculator``) on the same potential, in the same process.

Systems: ethanol with PaiNN (dt 0.5 fs), 864-atom fcc Cu with SchNet (dt 2 fs), a 4000-atom LJ argon
fluid (dt 5 fs, 8.5 Å cutoff). Two more ethanol rows explain the ethanol ratio: ``ethanol-lj`` (the
same molecule with a Lennard-Jones potential: the ratio when the model costs almost nothing, i.e. the
ceiling set by the per-call overhead of the ASE path) and ``ethanol-x16`` (16 ethanol replicas
simulated as one batch with PaiNN; its steps/s count molecule-steps, against ASE driving one molecule,
which is how ASE would produce 16 trajectories). PaiNN/SchNet: 128 features, 3 interactions, 20 radial functions, 5 Å
(random weights: speed does not depend on them). For ethanol, when schnetpack is importable (a
benchmark environment: ../shared/PEERS.md), its PaiNN of the same size runs under ASE's
VelocityVerlet in the same process, through a calculator that does what SpkCalculator does
(AtomsConverter with matscipy's neighbor list, then the model) without loading a pickled file;
otherwise the ratio uses the number measured on this machine (132 steps/s, PEERS.md).

Run alone on the machine (MindSpore slows down badly when another process competes for the cores)::

    python benchmarks/md.py [--systems ethanol cu lj] [--steps 2000] [--ase-steps 200] [--block 100]
    python benchmarks/md.py --quick      # tiny step counts: checks that everything runs
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402
from ase import units  # noqa: E402
from ase.build import bulk, molecule  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402

from mindsponge_mm.md import MDState, Simulation, build_integrator  # noqa: E402
from peers import interleaved_medians, schnetpack_model  # noqa: E402

SIZE = dict(n_features=128, n_interactions=3, n_rbf=20)
SPK_PAINN_ASE_STEPS_PER_S = 132.0  # PEERS.md: ASE VelocityVerlet + SpkCalculator, PaiNN, ethanol


REPLICAS = 16  # ethanol-x16


def make_system(name):
    """(atoms: one Atoms or a list of replicas, potential, dt in fs, temperature K)."""
    from mindsponge_mm.models import Potential, build

    if name in ("ethanol", "ethanol-x16"):
        atoms = molecule("CH3CH2OH")
        if name == "ethanol-x16":
            atoms = [atoms.copy() for _ in range(REPLICAS)]
        return atoms, Potential(build("painn", elements=["H", "C", "O"], cutoff=5.0, seed=0, **SIZE)), 0.5, 300.0
    if name == "ethanol-lj":
        from mindsponge_mm.potentials import LennardJones

        return molecule("CH3CH2OH"), LennardJones(0.5, 1.0, 5.0, shift=True), 0.5, 300.0  # r_min 1.12 Å, near the bond lengths: a speed row, not a model of ethanol
    if name == "cu":
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (6, 6, 6)
        atoms.rattle(0.02, seed=1)
        return atoms, Potential(build("schnet", elements=["Cu"], cutoff=5.0, seed=0, **SIZE)), 1.0, 300.0
    if name == "lj":
        from mindsponge_mm.potentials import LennardJones

        atoms = bulk("Ar", "fcc", a=5.75, cubic=True) * (10, 10, 10)  # 4000 atoms, liquid-like density
        atoms.rattle(0.1, seed=2)
        return atoms, LennardJones(0.0104, 3.4, 8.5, shift=True), 5.0, 100.0
    raise SystemExit(f"unknown system {name!r}; choose ethanol, ethanol-lj, ethanol-x16, cu or lj")


SKIN = {"ethanol": 1.0, "ethanol-lj": 1.0, "ethanol-x16": 1.0, "cu": 0.3, "lj": 0.5}  # Å: a thin skin for costly models (rebuilds are cheap)


def prepare_ours(atoms, potential, dt, temperature, block, skin):
    """(our Simulation, compile + warm-up seconds); ``sim.run(block, block=block)`` is one timed call."""
    state = MDState.from_atoms(atoms).maxwell_boltzmann(temperature, seed=0)
    start = time.perf_counter()
    # random weights: a low overlap threshold (speed does not depend on the trajectory)
    sim = Simulation(state, potential, build_integrator("verlet", dt=dt), skin=skin, min_distance=0.1)
    sim.run(block, block=block)  # compile + warm-up
    return sim, time.perf_counter() - start


def ase_dynamics(atoms, calculator, dt, temperature):
    """ASE's VelocityVerlet on a copy of ``atoms`` driving ``calculator``, warmed up (3 steps)."""
    atoms = atoms.copy()
    atoms.set_momenta(MDState.from_atoms(atoms).maxwell_boltzmann(temperature, seed=0).momenta.astype(np.float64))
    atoms.calc = calculator
    dyn = VelocityVerlet(atoms, dt * units.fs)
    dyn.run(3)  # compile
    return dyn


def schnetpack_calculator():
    """An ASE calculator around SchNetPack's PaiNN (128 features, 3 interactions, 20 Gaussians, 5 Å) that
    does what SpkCalculator does; None when schnetpack is not importable."""
    peer = schnetpack_model("painn")
    if peer is None:
        return None
    from ase.calculators.calculator import Calculator as AseCalculator, all_changes

    model, converter = peer

    class SpkModelCalculator(AseCalculator):
        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            out = model(converter(atoms))
            self.results = {"energy": float(out["energy"].detach()[0]),
                            "forces": out["forces"].detach().numpy().astype(np.float64)}

    return SpkModelCalculator()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", nargs="+", default=["ethanol", "ethanol-lj", "ethanol-x16", "cu", "lj"])
    parser.add_argument("--steps", type=int, default=2000, help="timed steps of our loop (ethanol rows; 1/10 for the others)")
    parser.add_argument("--ase-steps", type=int, default=200, help="timed steps of ASE VelocityVerlet (same)")
    parser.add_argument("--block", type=int, default=100, help="steps per compiled call (ethanol rows; 1/10 for the others)")
    parser.add_argument("--quick", action="store_true", help="tiny step counts (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.ase_steps, args.block = 20, 4, 10
    from mindsponge_mm.interfaces.ase import Calculator

    rows, spk_rate, spk_ours = [], None, None
    for name in args.systems:
        atoms, potential, dt, temperature = make_system(name)
        small = name.startswith("ethanol")
        scale = 1 if small else 10
        block = max(1, args.block // scale)
        calls = max(2, args.steps // scale // block)  # timed calls of ours (and of each ASE run)
        ase_block = max(1, args.ase_steps // scale // calls)
        replicas = len(atoms) if isinstance(atoms, list) else 1
        one = atoms[0] if isinstance(atoms, list) else atoms
        sim, setup = prepare_ours(atoms, potential, dt, temperature, block, SKIN[name])
        runs = [lambda: sim.run(block, block=block)]
        dyns = [ase_dynamics(one, Calculator(potential), dt, temperature)]
        if name == "ethanol":
            spk = schnetpack_calculator()
            if spk is not None:
                dyns.append(ase_dynamics(one, spk, dt, temperature))
        runs += [lambda dyn=dyn: dyn.run(ase_block) for dyn in dyns]
        # alternating blocks of calls (peers.interleaved_medians): the machine's speed drifts within minutes
        ms = interleaved_medians(runs, calls, block=min(5, calls))
        ours = replicas * block / (ms[0] / 1e3)  # molecule-steps per second
        ase = ase_block / (ms[1] / 1e3)
        if len(ms) > 2:
            spk_rate, spk_ours = ase_block / (ms[2] / 1e3), ours
        rows.append((name, len(one) * replicas, dt, ours, ours * dt * 86400 / 1e6, ase, ours / ase, setup,
                     int(sim.nl.n_builds.asnumpy()), sim.n_resizes))
        print(f"{name}: done", flush=True)
    header = (f"{'system':11s} {'atoms':>6s} {'dt/fs':>6s} {'ours steps/s':>13s} {'ns/day':>8s} "
              f"{'ASE VV steps/s':>15s} {'ratio':>7s} {'setup s':>8s} {'nl builds':>9s}")
    print()
    print(header)
    print("-" * len(header))
    for name, n, dt, ours, nsday, ase, ratio, setup, builds, resizes in rows:
        print(f"{name:11s} {n:6d} {dt:6.1f} {ours:13.1f} {nsday:8.3f} {ase:15.2f} {ratio:6.1f}x {setup:8.1f} {builds:9d}")
    if spk_rate is not None:
        print(f"\nethanol/PaiNN vs SchNetPack's PaiNN under ASE VelocityVerlet, same process, alternating blocks: "
              f"{spk_rate:.1f} steps/s, ours {spk_ours / spk_rate:.1f}x")
    elif any(row[0] == "ethanol" for row in rows):
        ours = next(row[3] for row in rows if row[0] == "ethanol")
        print(f"\nethanol/PaiNN vs SchNetPack (ASE VelocityVerlet + SpkCalculator, PaiNN, PEERS.md "
              f"{SPK_PAINN_ASE_STEPS_PER_S:.0f} steps/s): {ours / SPK_PAINN_ASE_STEPS_PER_S:.1f}x"
              "  (schnetpack not importable here: a reference number from another day, not a same-process ratio)")
    if any(row[0] == "ethanol-x16" for row in rows):
        print(f"ethanol-x16: {REPLICAS} replicas in one batch; steps/s and ns/day count molecule-steps "
              "(the sampling throughput), ASE drives one molecule.")
    print("\nmedians over alternating blocks; steps/s exclude compilation (setup s); run alone on the machine.")


if __name__ == "__main__":
    main()
