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
``steps`` is then the total to reach) and a PNG of energies and temperature against time. An
existing trajectory is never overwritten silently: ``existing="restart"`` (``mindsponge-mm md
--restart``) continues it from the restart file, ``existing="overwrite"`` (``--overwrite``) starts
a new one, and the default refuses with a one-line error. One process at a time writes a run
directory (:class:`~mindsponge_mm.io_utils.RunLock`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..config import RUN_SCHEMA, Field, validate
from ..errors import ConfigError, UserError
from ..io_utils import RunDirectory, run_directory, save_figure
from ..runtime import check_interrupt, deferred_interrupts
from .integrators import INTEGRATORS
from .state import MAX_TEMPERATURE, MAX_TIMESTEP, MDState

MD_SCHEMA = {
    "system": Field(str, doc="structure: a file read by ase.io (or a dataset .h5/.db), bundled:NAME, or smiles:SMILES"),
    "frame": Field(int, 0, doc="frame of the file or dataset (negative counts from the end)"),
    "replicate": Field(list, [1, 1, 1], doc="supercell repetitions of a periodic system"),
    "potential": Field((str, dict), doc="checkpoint path, or a classical potential mapping with 'type' "
                                        "(e.g. {type: lennard_jones, epsilon: 0.0104, sigma: 3.4, cutoff: 8.5})"),
    "integrator": Field(str, "langevin", choices=INTEGRATORS, doc="ensemble / integrator"),
    "dt": Field(float, 0.5, exclusive_minimum=0.0, maximum=MAX_TIMESTEP, doc="time step, fs"),
    "steps": Field(int, 1000, minimum=0, doc="number of steps (with restart: the total to reach)"),
    "temperature": Field(float, 300.0, minimum=0.0, maximum=MAX_TEMPERATURE,
                         doc="thermostat target (and initial velocities), K; 0 starts NVE from rest"),
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
    "trajectory": Field(str, RunDirectory.TRAJECTORY, doc="H5MD file (relative to run.output)"),
    "velocities": Field(bool, False, doc="write velocities"),
    "forces": Field(bool, False, doc="write forces"),
    "checkpoint": Field(str, RunDirectory.MD_CHECKPOINT,
                        doc="restart file written after every block (relative to run.output)"),
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


def load_potential(spec, source: str = "config"):
    """A potential (``potentials.base.PotentialBase``) from a checkpoint path or a classical mapping with
    ``type`` (:func:`mindsponge_mm.models.load_potential`).

    Errors name ``source`` (the config file) and the key path ``md.potential``.
    """
    from ..models import load_potential as load

    try:
        return load(spec)
    except UserError as err:
        raise type(err)(f"{source}: md.potential: {err}") from None


EXISTING = ("refuse", "restart", "overwrite")
PROGRESS_LINE_SECONDS = 10.0


def integrator_config(md: dict) -> dict:
    """The integrator of the md section: its name and the md keys its constructor takes."""
    return {"name": md["integrator"], **{k: md[k] for k in INTEGRATORS.parameters(md["integrator"])}}


def run_md(config: dict, log: Callable[[str], None] = print, existing: str = "refuse",
           source: str = "config") -> dict:
    """Run the MD job of ``config`` (``{"run": ..., "md": ...}``); return paths and rates.

    ``existing``: what to do when the trajectory already exists in ``run.output``: ``refuse``
    (a one-line error), ``restart`` (continue from the restart file) or ``overwrite``.
    ``source`` names the config file in error messages.
    """
    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {EXISTING}, got {existing!r}")
    checked = validate({"run": config.get("run") or {}, "md": config.get("md")}, {"run": RUN_SCHEMA, "md": MD_SCHEMA},
                       source)
    run, md = checked["run"], checked["md"]
    files = RunDirectory(run["output"], trajectory=md["trajectory"], md_checkpoint=md["checkpoint"])
    out, traj_path, ckpt_path = files.root, files.trajectory, files.md_checkpoint
    if "temperature" in INTEGRATORS.parameters(md["integrator"]) and md["temperature"] <= 0:
        raise ConfigError(f"{source}: md.temperature = {md['temperature']} K, but {md['integrator']} needs a positive "
                          f"target temperature; set md.temperature > 0, or md.integrator: verlet to run NVE from rest")
    if traj_path.exists() and not md["restart"]:
        if existing == "refuse":
            raise UserError(f"{traj_path} already exists; continue it with mindsponge-mm md --restart, write over it "
                            f"with --overwrite, or choose another run.output")
        if existing == "restart":
            if not ckpt_path.exists():
                raise UserError(f"{traj_path} exists but its restart file {ckpt_path} does not; write over the "
                                f"trajectory with --overwrite, or choose another run.output")
            md["restart"] = str(ckpt_path)
    elif existing == "restart" and not md["restart"] and not ckpt_path.exists():
        log(f"restart   no earlier trajectory in {out}; starting a new one")
    with run_directory(files, files.md_outputs):
        return _run_md_locked(run, md, files, log, source)


def _run_md_locked(run: dict, md: dict, files: RunDirectory, log, source: str) -> dict:
    from .h5md import H5MDWriter
    from .simulation import Simulation

    traj_path, ckpt_path = files.trajectory, files.md_checkpoint
    potential = load_potential(md["potential"], source)
    dtype = md["dtype"] or potential.dtype_name
    if md["restart"]:
        sim = Simulation.restore(md["restart"], potential)
        log(f"restart   {md['restart']} at step {sim.state.step} ({sim.state.time:.1f} fs)")
        writer = H5MDWriter(traj_path, sim.state, md["velocities"], md["forces"], append=True)
    else:
        try:
            atoms = load_system(md, run["seed"])
        except UserError as err:
            text = str(err)
            raise type(err)(f"{source}: {text}" if text.startswith("md.")
                            else f"{source}: md.system = {md['system']!r}: {text}") from None
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

        bar = tqdm(total=todo, unit="step", dynamic_ncols=True, disable=None)  # None: on terminals only
    last_line = [time.perf_counter()]
    rate = {"steps": 0, "seconds": 0.0, "first": None}  # the first block compiles: rates start after it

    def steps_per_second():
        steps, seconds = (rate["steps"], rate["seconds"]) if rate["steps"] else (rate["first"] or (0, 0.0))
        return steps / seconds if seconds > 0 else 0.0

    def after_block(s, n, seconds):
        with deferred_interrupts():  # the frame and the restart file are written together
            writer.append(s)
            s.save_checkpoint(ckpt_path)
        if rate["first"] is None:
            rate["first"] = (n, seconds)
        else:
            rate["steps"] += n
            rate["seconds"] += seconds
        if md["progress"]:
            sps = steps_per_second()
            obs = s.observables()
            status = (f"{sps:.1f} steps/s, {sps * md['dt'] * 86400 / 1e6:.3f} ns/day, "
                      f"T {obs['temperature'].mean():.0f} K, E {obs['total_energy'].sum():.4f} eV")
            if bar is not None and not bar.disable:
                bar.set_postfix_str(status)
                bar.update(n)
            elif time.perf_counter() - last_line[0] >= PROGRESS_LINE_SECONDS or s.state.step >= md["steps"]:
                last_line[0] = time.perf_counter()  # no terminal: one plain line per block, at most every 10 s
                log(f"step      {s.state.step}/{md['steps']}: {status}")

    try:
        left = todo
        while left > 0:
            check_interrupt()  # Ctrl-C that landed where its KeyboardInterrupt was dropped
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
        result["plot"] = plot_trajectory(traj_path, files.trajectory_plot)
        log(f"plot      {result['plot']}")
    return result


def plot_trajectory(trajectory, png) -> Path:
    """PNG of the energies and the temperature against time (ps), written atomically.

    Three panels: potential and kinetic energy as changes from their first frame (eV), the
    total energy's change from its first frame (meV, so a drift or a thermostat's exchange is
    visible instead of a flat line at -300 eV), and the temperature (K).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .h5md import read_h5md

    data = read_h5md(trajectory)
    fig, (ax_e, ax_total, ax_t) = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    for name, obs in data["observables"].items():
        label = "" if name == "all" else f" ({name})"
        t = obs["total_energy"]["time"] / 1000.0
        for key, style in (("potential_energy", "-"), ("kinetic_energy", "--")):
            value = obs[key]["value"]
            ax_e.plot(t, value - value[0], style, label=f"{key.replace('_', ' ')}{label}, start {value[0]:.3f} eV")
        total = obs["total_energy"]["value"]
        ax_total.plot(t, 1000.0 * (total - total[0]), label=f"total energy{label}, start {total[0]:.3f} eV")
        ax_t.plot(t, obs["temperature"]["value"], label="temperature" + label)
    ax_e.set_ylabel("E - E(0) (eV)")
    ax_e.legend(fontsize=8)
    ax_total.set_ylabel("E_total - E_total(0) (meV)")
    ax_total.legend(fontsize=8)
    ax_t.set_ylabel("temperature (K)")
    ax_t.set_xlabel("time (ps)")
    fig.tight_layout()
    return save_figure(fig, png)
