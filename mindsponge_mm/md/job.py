"""The MD job: ``run_md(config)`` behind ``mindsponge-mm md CONFIG.yaml``.

A config has a ``run`` section (seed, output directory) and an ``md`` section validated by
:data:`MD_SCHEMA`::

    run: {seed: 0, output: runs/md}
    md:
      system: bundled:ethanol          # a file (ase.io / dataset .h5 .db), bundled:NAME, or smiles:CCO
      potential: runs/quickstart/model.safetensors   # or {type: lennard_jones, epsilon: ..., ...}
      integrator: langevin
      dt: 0.5                          # fs
      steps: 2000
      temperature: 300                 # K

Outputs in ``run.output``: the H5MD trajectory, an .npz checkpoint (restart with ``md.restart``;
``steps`` is then the total to reach) and a PNG of energies and temperature against time.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..config import RUN_SCHEMA, Field, validate
from ..errors import UserError
from ..io_utils import save_figure
from .integrators import INTEGRATORS
from .state import MAX_TEMPERATURE, MAX_TIMESTEP, MDState

MD_SCHEMA = {
    "system": Field(str, doc="structure: a file read by ase.io (or a dataset .h5/.db), bundled:NAME, or smiles:SMILES"),
    "frame": Field(int, 0, doc="frame of the file or dataset (negative counts from the end)"),
    "replicate": Field(list, [1, 1, 1], doc="supercell repetitions of a periodic system"),
    "potential": Field((str, dict), doc="checkpoint path, or a classical potential mapping with 'type' "
                                        "(e.g. {type: lennard_jones, epsilon: 0.0104, sigma: 3.4, cutoff: 8.5})"),
    "integrator": Field(str, "langevin", choices=tuple(sorted(INTEGRATORS)), doc="ensemble / integrator"),
    "dt": Field(float, 0.5, exclusive_minimum=0.0, maximum=MAX_TIMESTEP, doc="time step, fs"),
    "steps": Field(int, 1000, minimum=0, doc="number of steps (with restart: the total to reach)"),
    "temperature": Field(float, 300.0, exclusive_minimum=0.0, maximum=MAX_TEMPERATURE, doc="thermostat target (and initial velocities), K"),
    "initial_temperature": Field(float, None, nullable=True, minimum=0.0, maximum=MAX_TEMPERATURE,
                                 doc="Maxwell-Boltzmann temperature of the initial velocities, K (default: temperature)"),
    "tau": Field(float, 100.0, exclusive_minimum=0.0, doc="thermostat time (1/friction for langevin), fs"),
    "chain_length": Field(int, 3, minimum=1, doc="Nose-Hoover chain length"),
    "pressure": Field(float, 1.0, doc="target pressure, bar (NPT)"),
    "barostat_tau": Field(float, 1000.0, exclusive_minimum=0.0, doc="barostat time, fs (NPT)"),
    "compressibility": Field(float, 4.5e-5, exclusive_minimum=0.0, doc="isothermal compressibility, 1/bar (NPT)"),
    "block": Field(int, 50, minimum=1, doc="steps per compiled call; a frame is written after each"),
    "skin": Field(float, 0.5, minimum=0.0, doc="neighbor-list skin, Å (thin for costly models: rebuilds are cheap)"),
    "remove_com": Field(bool, True, doc="remove centre-of-mass motion (N_f = 3N - 3)"),
    "wrap": Field(bool, False, doc="wrap positions into the cell between blocks"),
    "min_distance": Field(float, 0.5, exclusive_minimum=0.0, doc="closer atoms stop the run, Å"),
    "dtype": Field(str, None, nullable=True, choices=("float32", "float64"), doc="default: the potential's"),
    "trajectory": Field(str, "trajectory.h5", doc="H5MD file (relative to run.output)"),
    "velocities": Field(bool, False, doc="write velocities"),
    "forces": Field(bool, False, doc="write forces"),
    "checkpoint": Field(str, "md_checkpoint.npz", doc="restart file written after every block (relative to run.output)"),
    "restart": Field(str, None, nullable=True, doc="continue from this checkpoint"),
    "plot": Field(bool, True, doc="write energies and temperature against time as PNG"),
    "progress": Field(bool, True, doc="show a progress bar"),
}


def load_system(md: dict, seed: int = 0):
    """``ase.Atoms`` of the ``md.system`` entry (file, bundled:NAME or smiles:SMILES), replicated."""
    spec, frame = md["system"], md["frame"]
    if spec.startswith("smiles:"):
        try:
            from ..interfaces.rdkit import smiles_to_atoms
        except ImportError:
            raise UserError("md.system uses smiles: but RDKit is not installed; pip install rdkit") from None
        atoms = smiles_to_atoms(spec[len("smiles:"):].strip(), seed=seed)[0]
    elif spec.startswith("bundled:") or Path(spec).suffix.lower() in (".h5", ".hdf5", ".db"):
        from ..data import AtomsDataset

        ds = AtomsDataset.open(spec)
        if not -len(ds) <= frame < len(ds):
            raise UserError(f"md.frame = {frame} but {spec} has {len(ds)} frames; pick one in range")
        atoms = ds.to_atoms(frame % len(ds))
    else:
        path = Path(spec)
        if not path.exists():
            raise UserError(f"md.system: {spec} not found; give a structure file, bundled:NAME or smiles:SMILES")
        import ase.io

        try:
            atoms = ase.io.read(path, index=frame)
        except Exception as err:  # noqa: BLE001 (ase raises many kinds)
            raise UserError(f"md.system: cannot read {spec} ({type(err).__name__}: {err}); check the file format") from None
    atoms = atoms.copy()
    atoms.calc = None
    reps = md["replicate"]
    if len(reps) != 3 or not all(isinstance(r, int) and r >= 1 for r in reps):
        raise UserError(f"md.replicate = {reps}; give three positive integers, e.g. [2, 2, 2]")
    if reps != [1, 1, 1]:
        if not atoms.pbc.all():
            raise UserError("md.replicate needs a fully periodic system; remove it for molecules")
        atoms = atoms * tuple(reps)
    return atoms


def load_potential(spec):
    """A potential Cell from a checkpoint path or a classical mapping with ``type``."""
    if isinstance(spec, str):
        from ..models import Potential

        return Potential.load(spec)
    from ..potentials import from_config

    return from_config(spec)


def integrator_config(md: dict) -> dict:
    cls = INTEGRATORS[md["integrator"]]
    return {"name": md["integrator"], **{k: md[k] for k in cls.PARAMS}}


def run_md(config: dict, log: Callable[[str], None] = print) -> dict:
    """Run the MD job of ``config`` (``{"run": ..., "md": ...}``); return paths and rates."""
    from .h5md import H5MDWriter
    from .simulation import Simulation

    checked = validate({"run": config.get("run") or {}, "md": config.get("md")}, {"run": RUN_SCHEMA, "md": MD_SCHEMA})
    run, md = checked["run"], checked["md"]
    out = Path(run["output"])
    out.mkdir(parents=True, exist_ok=True)
    traj_path, ckpt_path = out / md["trajectory"], out / md["checkpoint"]
    potential = load_potential(md["potential"])
    dtype = md["dtype"] or getattr(potential, "dtype_name", None) or getattr(getattr(potential, "model", None),
                                                                          "dtype_name", "float32")
    if md["restart"]:
        sim = Simulation.restore(md["restart"], potential)
        log(f"restart   {md['restart']} at step {sim.state.step} ({sim.state.time:.1f} fs)")
        writer = H5MDWriter(traj_path, sim.state, md["velocities"], md["forces"], append=True)
    else:
        atoms = load_system(md, run["seed"])
        state = MDState.from_atoms(atoms, dtype=dtype)
        t0 = md["initial_temperature"] if md["initial_temperature"] is not None else md["temperature"]
        state.maxwell_boltzmann(t0, seed=run["seed"], remove_com=md["remove_com"])
        sim = Simulation(state, potential, integrator_config(md), skin=md["skin"], remove_com=md["remove_com"],
                         wrap=md["wrap"], min_distance=md["min_distance"], seed=run["seed"], dtype=dtype)
        writer = H5MDWriter(traj_path, sim.state, md["velocities"], md["forces"])
        writer.append(sim)
    n_atoms = len(sim.state.positions)
    log(f"md        {n_atoms} atoms, {md['integrator']} ({sim.integrator.ensemble}), dt {md['dt']} fs, "
        f"{md['steps']} steps, T {md['temperature']} K; trajectory {traj_path}")
    todo = max(0, md["steps"] - sim.state.step)
    bar = None
    if md["progress"] and todo:
        from tqdm import tqdm

        bar = tqdm(total=todo, unit="step", dynamic_ncols=True)
    rate = {"steps": 0, "seconds": 0.0, "first": None}  # the first block compiles: rates start after it

    def steps_per_second():
        steps, seconds = (rate["steps"], rate["seconds"]) if rate["steps"] else (rate["first"] or (0, 0.0))
        return steps / seconds if seconds > 0 else 0.0

    def after_block(s, n, seconds):
        writer.append(s)
        s.save_checkpoint(ckpt_path)
        if rate["first"] is None:
            rate["first"] = (n, seconds)
        else:
            rate["steps"] += n
            rate["seconds"] += seconds
        if bar is not None:
            sps = steps_per_second()
            obs = s.observables()
            bar.set_postfix_str(f"{sps:.1f} steps/s, {sps * md['dt'] * 86400 / 1e6:.3f} ns/day, "
                                f"T {obs['temperature'].mean():.0f} K, E {obs['total_energy'].sum():.4f} eV")
            bar.update(n)

    try:
        left = todo
        while left > 0:
            n = min(md["block"], left)
            start = time.perf_counter()
            sim.run_block(n)
            after_block(sim, n, time.perf_counter() - start)
            left -= n
        if todo == 0:
            sim.save_checkpoint(ckpt_path)
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    sps = steps_per_second()
    ns_day = sps * md["dt"] * 86400 / 1e6
    obs = sim.observables()
    log(f"done      step {sim.state.step}, {sps:.1f} steps/s ({ns_day:.3f} ns/day, after compilation), "
        f"T {obs['temperature'].mean():.1f} K, E_total {obs['total_energy'].sum():.5f} eV")
    result = {"trajectory": traj_path, "checkpoint": ckpt_path, "steps_per_second": sps, "ns_per_day": ns_day,
              "observables": obs, "simulation": sim, "plot": None}
    if md["plot"]:
        result["plot"] = plot_trajectory(traj_path, out / (Path(md["trajectory"]).stem + ".png"))
        log(f"plot      {result['plot']}")
    return result


def plot_trajectory(trajectory, png) -> Path:
    """PNG of potential/kinetic/total energy and temperature against time (ps), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .h5md import read_h5md

    data = read_h5md(trajectory)
    fig, (ax_e, ax_t) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for name, obs in data["observables"].items():
        label = "" if name == "all" else f" ({name})"
        t = obs["total_energy"]["time"] / 1000.0
        for key, style in (("potential_energy", "-"), ("kinetic_energy", "--"), ("total_energy", "-.")):
            ax_e.plot(t, obs[key]["value"], style, label=key.replace("_", " ") + label)
        ax_t.plot(t, obs["temperature"]["value"], label="temperature" + label)
    ax_e.set_ylabel("energy (eV)")
    ax_e.legend(fontsize=8)
    ax_t.set_ylabel("temperature (K)")
    ax_t.set_xlabel("time (ps)")
    fig.tight_layout()
    return save_figure(fig, png)
