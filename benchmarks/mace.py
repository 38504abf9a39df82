"""Our ``mace`` against mace-torch's ``ScaleShiftMACE`` with the same weights, side by side in one process.

A random-weight mace-torch model (float32) is converted to ours with
``mindsponge_mm.models.mace_convert.model_from_mace_state_dict``, so both compute the same function; each
case first checks that the energies and forces agree, then times both in alternating warm blocks
(``peers.interleaved_medians``: the machine's speed drifts within minutes, so only same-window ratios mean
anything). Ratio = our time / mace-torch's (for MD our time per step / theirs; for memory our peak / theirs),
so below 1 means we are better; the issue's target is <= 0.8.

Cases (``--cases``):

* ``ethanol``: energy+forces of 50 rattled ethanol molecules in one batch;
* ``drugs``: energy+forces of a batch of 5 drug-sized molecules (16-24 atoms, RDKit conformers of SMILES);
* ``cu``: energy+forces of 864-atom fcc Cu (rattled, periodic);
* ``train``: one training step (per-atom energy MSE + 10 x force MSE, global-norm clipping at 10, Adam
  1e-4) on the batch of 5 drug-sized molecules; ours the compiled ``TrainStep``, theirs a plain torch loop
  (mace-torch's forward with ``training=True``: forces with ``create_graph=True``);
* ``md``: 864-atom Cu, MACE-MP-0 "medium" size; our compiled loop (``md.Simulation``, velocity Verlet,
  neighbor list in the graph) against ASE's ``VelocityVerlet`` driving mace-torch's ``MACECalculator``;
* ``memory``: peak host memory of one energy+forces call (our first call includes compiling the graph) of
  the MACE-MP-0 "medium" size on a 2916-atom Cu cell, ours and mace-torch's each in its own child process
  that imports only its own library. The peak is the child's VmHWM (/proc/self/status); the child's
  ``resource.getrusage`` ru_maxrss is printed beside it but starts at the parent's peak on Linux (it is
  carried across fork+exec). A child above ``--mem-limit-gb`` is killed by a watchdog: "> limit".

Sizes: the issue's default (64x0e+64x1o hidden, l_max 3, correlation 3, 2 interactions, 8 Bessel, r 5 Å,
radial MLP 64x3, 16 readout scalars) for ethanol/drugs/cu/train with elements H C N O S Cu; MACE-MP-0
medium (128x0e+128x1o, l_max 3, correlation 3, 2 interactions, 10 Bessel, r 6 Å, radial MLP 64x3) with
MACE-MP-0's 89 elements for md and memory, in both models. float32 throughout; random weights.

Needs a benchmark environment holding both libraries (numpy<2, MindSpore 2.10, torch 2.13 CPU,
mace-torch 0.3.16): ``bash benchmarks/peers_env.sh /work/bench-venv schnetpack mace``. Run alone on the
machine, under the MindSpore lock::

    flock /tmp/mindspore.lock /work/bench-venv/bin/python benchmarks/mace.py        # about 15-20 min on 2 cores
    flock /tmp/mindspore.lock /work/bench-venv/bin/python benchmarks/mace.py --quick --cases ethanol train
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("GLOG_v", "3")
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # e3nn 0.4.4 loads its constants with torch.load

import numpy as np  # noqa: E402

for _category in (UserWarning, DeprecationWarning, FutureWarning):  # e3nn/TorchScript chatter on import
    warnings.filterwarnings("ignore", category=_category)

# This file is named like the mace-torch package: drop its folder from the import path so that "import mace"
# finds mace-torch, and load the sibling peers.py by its path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
if sys.modules.get("mace") is not None and getattr(sys.modules["mace"], "__file__", "") == os.path.abspath(__file__):
    del sys.modules["mace"]


def _load_peers():
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmark_peers", os.path.join(_HERE, "peers.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


interleaved_medians = _load_peers().interleaved_medians

RESIDUAL = "RealAgnosticResidualInteractionBlock"
DEFAULT = dict(hidden_irreps="64x0e+64x1o", max_ell=3, correlation=3, num_interactions=2, r_max=5.0, num_bessel=8,
               num_polynomial_cutoff=5, radial_MLP=[64, 64, 64], MLP_irreps="16x0e", interaction_cls_first=RESIDUAL)
MP0_MEDIUM = dict(hidden_irreps="128x0e+128x1o", max_ell=3, correlation=3, num_interactions=2, r_max=6.0,
                  num_bessel=10, num_polynomial_cutoff=5, radial_MLP=[64, 64, 64], MLP_irreps="16x0e",
                  interaction_cls_first=RESIDUAL)
ELEMENTS = [1, 6, 7, 8, 16, 29]  # H C N O S Cu
MP0_ELEMENTS = list(range(1, 84)) + list(range(89, 95))  # MACE-MP-0's 89 elements
AVG_NEIGHBORS = {"default": 12.0, "mp0": 61.96}
# drug-sized molecules with hydrogens: aspirin 21, paracetamol 20, caffeine 24, metformin 20, sulfanilamide 18 atoms
SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "CC(=O)Nc1ccc(O)cc1", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "CN(C)C(=N)N=C(N)N",
          "Nc1ccc(cc1)S(N)(=O)=O"]
CASES = ["ethanol", "drugs", "cu", "train", "md", "memory"]
TARGET = 0.8


# ----------------------------------------------------------------------------------------------- systems
def ethanol(n):
    from ase.build import molecule

    out = []
    for k in range(n):
        m = molecule("CH3CH2OH")
        m.rattle(0.05, seed=k)
        out.append(m)
    return out


def drugs():
    from mindsponge_mm.interfaces.rdkit import smiles_to_atoms

    return [smiles_to_atoms(s, seed=0)[0] for s in SMILES]


def copper(reps, seed=1):
    from ase.build import bulk

    cu = bulk("Cu", "fcc", a=3.61, cubic=True) * (reps, reps, reps)
    cu.rattle(0.05, seed=seed)
    return cu


# ----------------------------------------------------------------------------------------------- models
def torch_model(arch: dict, elements, seed: int, avg_num_neighbors: float):
    """(mace-torch ScaleShiftMACE in float32, eval mode; hyperparameters in mace_convert's schema)."""
    import torch
    from e3nn import o3
    from mace import modules

    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(seed)
    e0 = np.random.default_rng(seed).normal(-5.0, 2.0, len(elements))
    model = modules.ScaleShiftMACE(
        r_max=arch["r_max"], num_bessel=arch["num_bessel"], num_polynomial_cutoff=arch["num_polynomial_cutoff"],
        max_ell=arch["max_ell"], interaction_cls=modules.interaction_classes[RESIDUAL],
        interaction_cls_first=modules.interaction_classes[arch["interaction_cls_first"]],
        num_interactions=arch["num_interactions"], num_elements=len(elements),
        hidden_irreps=o3.Irreps(arch["hidden_irreps"]), MLP_irreps=o3.Irreps(arch["MLP_irreps"]),
        atomic_energies=e0, avg_num_neighbors=avg_num_neighbors, atomic_numbers=list(elements),
        correlation=arch["correlation"], gate=torch.nn.functional.silu, radial_MLP=arch["radial_MLP"],
        atomic_inter_scale=1.0, atomic_inter_shift=0.0)
    hparams = dict(arch, num_elements=len(elements), atomic_numbers=list(elements), atomic_energies=e0.tolist(),
                   avg_num_neighbors=avg_num_neighbors, atomic_inter_scale=1.0, atomic_inter_shift=0.0, gate="silu",
                   interaction_cls=RESIDUAL, model="ScaleShiftMACE")
    return model.float().eval(), hparams


def state_numpy(model) -> dict:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def our_potential(state: dict, hparams: dict):
    from mindsponge_mm.models import Potential
    from mindsponge_mm.models.mace_convert import model_from_mace_state_dict

    return Potential(model_from_mace_state_dict(state, hparams, dtype="float32"))


def n_weights_ours(potential) -> int:
    return int(sum(np.prod(p.shape) for p in potential.model.trainable_params()))


def frames(atoms_list, targets=None):
    out = []
    for k, a in enumerate(atoms_list):
        f = {"atomic_numbers": a.numbers, "positions": a.positions, "cell": a.cell[:], "pbc": a.pbc}
        if targets is not None:
            f["energy"], f["forces"] = targets[0][k], targets[1][k]
        out.append(f)
    return out


def torch_batch(atoms_list, elements, r_max):
    """mace-torch's input dict for a list of ase.Atoms (its own neighbor list)."""
    from mace import data as mdata
    from mace.tools import AtomicNumberTable, torch_geometric

    z_table = AtomicNumberTable(list(elements))
    data = [mdata.AtomicData.from_config(mdata.config_from_atoms(a), z_table=z_table, cutoff=r_max) for a in atoms_list]
    loader = torch_geometric.dataloader.DataLoader(data, batch_size=len(data), shuffle=False)
    return next(iter(loader)).to_dict()


def check_same(ours_out, batch, theirs_out, hparams, label):
    """Exit unless our energies and forces equal mace-torch's to float32 rounding; returns a short note.

    Compared: per-atom interaction energies (each side's per-atom energy minus E0(Z); mace-torch's
    node energies are float64 sums of float32 terms), forces relative to their largest component, and
    structure energies without the E0 sums. A structure energy is a float32 sum of per-atom energies
    of a few eV each (random E0s included), whose rounding error can reach n·u·Σ|E_i| (n atoms,
    u = 2^-24) on either side, so that bound joins its tolerance (864 atoms of about -5 eV: 0.2 eV,
    where the per-atom check is the sharp one)."""
    u32 = 2.0 ** -24
    e0 = dict(zip(hparams["atomic_numbers"], hparams["atomic_energies"]))
    numbers = batch.atomic_numbers[batch.atom_mask]
    owner = batch.structure_index[batch.atom_mask]
    real = np.flatnonzero(batch.structure_mask)
    e0_atom = np.array([e0[int(z)] for z in numbers])
    e0_sum = np.array([e0_atom[owner == s].sum() for s in real])
    atoms_ours = ours_out["energies"][batch.atom_mask].astype(np.float64)
    a_ours = atoms_ours - e0_atom
    a_theirs = theirs_out["node_energy"].detach().numpy().astype(np.float64) - e0_atom
    da, a_max = float(np.max(np.abs(a_ours - a_theirs))), float(np.max(np.abs(a_theirs)))
    e_ours = ours_out["energy"][batch.structure_mask].astype(np.float64) - e0_sum
    f_ours = ours_out["forces"][batch.atom_mask].astype(np.float64)
    e_theirs = theirs_out["energy"].detach().numpy().astype(np.float64) - e0_sum
    f_theirs = theirs_out["forces"].detach().numpy().astype(np.float64)
    de, e_max = float(np.max(np.abs(e_ours - e_theirs))), float(np.max(np.abs(e_theirs)))
    df, f_max = float(np.max(np.abs(f_ours - f_theirs))), float(np.max(np.abs(f_theirs)))
    sum_bound = max(2 * len(atoms_ours[owner == s]) * u32 * float(np.abs(atoms_ours[owner == s]).sum()) for s in real)
    note = (f"{label}: per-atom interaction energy up to {a_max:.3g} eV, max |dE_atom| {da:.1e} eV; structure "
            f"interaction energy up to {e_max:.3g} eV, max |dE| {de:.1e} eV (float32 sum bound {sum_bound:.1e}); "
            f"|F| up to {f_max:.3g} eV/Å, max |dF| {df:.1e} eV/Å")
    if (da > 1e-3 * a_max + 8 * u32 * float(np.abs(atoms_ours).max()) or de > 1e-3 * e_max + sum_bound
            or df > 1e-3 * f_max + 1e-6):
        raise SystemExit(f"not the same function: {note}")
    return note


# ----------------------------------------------------------------------------------------------- cases
def case_energy_forces(label, atoms_list, arch, elements, avg, repeat):
    """(row, note): energy+forces of one batch, ours vs mace-torch, same weights."""
    from mindsponge_mm.data import collate

    model, hparams = torch_model(arch, elements, seed=0, avg_num_neighbors=avg)
    potential = our_potential(state_numpy(model), hparams)
    batch = collate(frames(atoms_list), arch["r_max"])
    t0 = time.perf_counter()
    ours_out = potential.evaluate(batch)
    compile_s = time.perf_counter() - t0
    inputs = torch_batch(atoms_list, elements, arch["r_max"])
    note = check_same(ours_out, batch, model(inputs, compute_force=True, training=False), hparams, label)

    def theirs():
        return model(inputs, compute_force=True, training=False)["forces"].detach().numpy()

    ms_ours, ms_theirs = interleaved_medians([lambda: potential.evaluate(batch), theirs], repeat,
                                             block=min(5, repeat))
    n_atoms = int(batch.n_atoms.sum())
    return (label, f"{n_atoms} atoms", ms_ours, ms_theirs, "ms", compile_s), note


def case_train(atoms_list, arch, elements, avg, repeat):
    """One E+F train step with Adam on the batch, ours (compiled TrainStep) vs a plain torch loop."""
    import mindspore as ms
    import torch

    from mindsponge_mm.data import collate
    from mindsponge_mm.train import PotentialLoss, TrainStep, loss_inputs

    model, hparams = torch_model(arch, elements, seed=0, avg_num_neighbors=avg)
    potential = our_potential(state_numpy(model), hparams)
    rng = np.random.default_rng(7)
    inputs = torch_batch(atoms_list, elements, arch["r_max"])
    e_model = model(dict(inputs), compute_force=False, training=False)["energy"].detach().numpy()
    e_ref = e_model + rng.normal(0.0, 0.1, len(atoms_list)) * np.array([len(a) for a in atoms_list])
    f_ref = [rng.normal(0.0, 0.5, (len(a), 3)) for a in atoms_list]
    batch = collate(frames(atoms_list, (e_ref, f_ref)), arch["r_max"], properties=("energy", "forces"))
    optimizer = ms.nn.Adam(potential.model.trainable_params(), learning_rate=1e-4)
    step = ms.jit(TrainStep(PotentialLoss(potential, (1.0, 10.0, 0.0), stress=False), optimizer,
                            clip_norm=10.0).construct)
    ms_inputs = loss_inputs(potential, batch)

    t_e_ref = torch.tensor(e_ref, dtype=torch.float32)
    t_f_ref = torch.tensor(np.concatenate(f_ref), dtype=torch.float32)
    n_atoms = torch.tensor([len(a) for a in atoms_list], dtype=torch.float32)
    torch_opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def theirs():
        out = model(dict(inputs), compute_force=True, training=True)  # forces with create_graph=True
        loss = (((out["energy"] - t_e_ref) / n_atoms) ** 2).mean() + 10.0 * ((out["forces"] - t_f_ref) ** 2).mean()
        torch_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        torch_opt.step()
        return float(loss.detach())

    t0 = time.perf_counter()
    loss_ours = float(step(*ms_inputs).asnumpy())  # compiles; the loss at the initial (shared) weights
    compile_s = time.perf_counter() - t0
    loss_theirs = theirs()
    rel = abs(loss_ours - loss_theirs) / max(abs(loss_theirs), 1e-12)
    note = f"train: first-step loss ours {loss_ours:.6g}, mace-torch {loss_theirs:.6g} (rel. diff {rel:.1e})"
    if rel > 1e-3:
        raise SystemExit(f"not the same loss: {note}")
    ms_ours, ms_theirs = interleaved_medians([lambda: step(*ms_inputs).asnumpy(), theirs], repeat,
                                             block=min(5, repeat))
    n = sum(len(a) for a in atoms_list)
    return ("train step E+F, Adam", f"5 mol, {n} atoms", ms_ours, ms_theirs, "ms", compile_s), note


def case_md(atoms, steps_per_call, calls, dt=1.0, temperature=300.0):
    """ms per MD step: our compiled loop vs ASE VelocityVerlet + MACECalculator, MACE-MP-0 medium size."""
    from ase import units
    from ase.md.verlet import VelocityVerlet
    from mace.calculators import MACECalculator

    from mindsponge_mm.data import collate
    from mindsponge_mm.md import MDState, Simulation, build_integrator

    model, hparams = torch_model(MP0_MEDIUM, MP0_ELEMENTS, seed=0, avg_num_neighbors=AVG_NEIGHBORS["mp0"])
    potential = our_potential(state_numpy(model), hparams)
    batch = collate(frames([atoms]), MP0_MEDIUM["r_max"])
    note = check_same(potential.evaluate(batch), batch,
                      model(torch_batch([atoms], MP0_ELEMENTS, MP0_MEDIUM["r_max"]), compute_force=True,
                            training=False), hparams, "md (MP-0 medium)")
    state = MDState.from_atoms(atoms).maxwell_boltzmann(temperature, seed=0)
    t0 = time.perf_counter()
    # random weights: a low overlap threshold (speed does not depend on the trajectory)
    sim = Simulation(state, potential, build_integrator("verlet", dt=dt), skin=0.3, min_distance=0.1)
    sim.run(steps_per_call, block=steps_per_call)  # compile + warm-up
    compile_s = time.perf_counter() - t0

    ase_atoms = atoms.copy()
    ase_atoms.set_momenta(state.momenta.astype(np.float64))
    ase_atoms.calc = MACECalculator(models=model, default_dtype="float32", device="cpu")
    dyn = VelocityVerlet(ase_atoms, dt * units.fs)
    dyn.run(1)
    ms_ours, ms_theirs = interleaved_medians([lambda: sim.run(steps_per_call, block=steps_per_call),
                                              lambda: dyn.run(steps_per_call)], calls, block=min(5, calls))
    ms_ours, ms_theirs = ms_ours / steps_per_call, ms_theirs / steps_per_call
    return ("MD Cu, MP-0 medium", f"{len(atoms)} atoms", ms_ours, ms_theirs, "ms/step", compile_s), note


def case_memory(reps, limit_gb):
    """(row, note): max RSS of one energy+forces call, each library in its own child process."""
    model, hparams = torch_model(MP0_MEDIUM, MP0_ELEMENTS, seed=0, avg_num_neighbors=AVG_NEIGHBORS["mp0"])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(os.path.join(tmp, "state.npz"), **state_numpy(model))
        with open(os.path.join(tmp, "hparams.json"), "w") as fh:
            json.dump(hparams, fh)
        del model
        for who in ("ours", "theirs"):
            cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", who, "--memory-dir", tmp,
                   "--memory-child-reps", str(reps)]
            results[who] = run_watched(cmd, limit_gb)
    n = 4 * reps ** 3
    cells = []
    for who in ("ours", "theirs"):
        r = results[who]
        cells.append(r["max_rss_mb"] / 1024 if r.get("ok") else float("nan"))
    notes = []
    for who in ("ours", "theirs"):
        r = results[who]
        if r.get("ok"):
            notes.append(f"{who}: peak RSS {r['max_rss_mb'] / 1024:.2f} GB (after import, model build and input "
                         f"{r['base_rss_mb'] / 1024:.2f} GB; getrusage {r['ru_maxrss_mb'] / 1024:.2f} GB), "
                         f"first call {r['seconds']:.1f} s")
        else:
            notes.append(f"{who}: {r['error']}")
    return ("peak RSS E+F, MP-0 medium", f"{n} atoms", cells[0], cells[1], "GB", float("nan")), \
        "memory: " + "; ".join(notes)


def run_watched(cmd, limit_gb):
    """Run a child; kill it when its RSS passes ``limit_gb``. Returns its JSON result or an error."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, killed = 0.0, False
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                rss = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 2**20
            peak = max(peak, rss)
            if rss > limit_gb:
                proc.kill()
                killed = True
        except (OSError, StopIteration, ValueError):
            pass
        time.sleep(0.05)
    out, err = proc.communicate()
    if killed:
        return {"ok": False, "error": f"> {limit_gb:.1f} GB (killed by the watchdog at RSS {peak:.1f} GB)"}
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (err.strip().splitlines() or ["no output"])[-1]
    return {"ok": False, "error": f"child failed (exit {proc.returncode}): {tail[:200]}"}


def memory_child(who, directory, reps):
    """In a fresh process: build one model, run one energy+forces call, print max RSS as JSON."""
    with open(os.path.join(directory, "hparams.json")) as fh:
        hparams = json.load(fh)
    atoms = copper(reps, seed=3)
    if who == "ours":
        from mindsponge_mm.data import collate

        state = dict(np.load(os.path.join(directory, "state.npz")))
        potential = our_potential(state, hparams)
        batch = collate(frames([atoms]), MP0_MEDIUM["r_max"])
        call = lambda: potential.evaluate(batch)  # noqa: E731
    else:
        import torch

        model, _ = torch_model(MP0_MEDIUM, MP0_ELEMENTS, seed=0, avg_num_neighbors=AVG_NEIGHBORS["mp0"])
        state = np.load(os.path.join(directory, "state.npz"))
        model.load_state_dict({k: torch.from_numpy(state[k]) for k in state.files})
        inputs = torch_batch([atoms], MP0_ELEMENTS, MP0_MEDIUM["r_max"])
        call = lambda: model(inputs, compute_force=True, training=False)["forces"].detach().numpy()  # noqa: E731
    base = vm_hwm_mb()
    t0 = time.perf_counter()
    call()
    seconds = time.perf_counter() - t0
    print(json.dumps({"ok": True, "max_rss_mb": vm_hwm_mb(), "base_rss_mb": base, "seconds": seconds,
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


def vm_hwm_mb() -> float:
    """This process's peak RSS in MB: VmHWM of /proc/self/status. ``getrusage``'s ru_maxrss is not used as
    the result because Linux carries the parent's peak into it across fork+exec (the benchmark process,
    several GB by then), so it only shows the child's own peak when that is larger."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------------------------- report
def header(argv):
    import mace
    import mindspore
    import torch

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args):
        try:
            return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return "\n".join([
        f"date     {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"commit   {git('rev-parse', '--short', 'HEAD')}{dirty}",
        f"machine  {platform.node()}: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.release()}",
        f"software python {platform.python_version()}, mindspore {mindspore.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), mace-torch {getattr(mace, '__version__', '?')}",
        f"command  {' '.join([sys.executable, os.path.relpath(os.path.abspath(__file__), root), *argv])}",
        f"load     {os.getloadavg()[0]:.2f} (1-min average at start)",
    ])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per energy+forces or train case (half for Cu)")
    parser.add_argument("--md-steps", type=int, default=2, help="MD steps per timed call (both sides)")
    parser.add_argument("--md-calls", type=int, default=3, help="timed MD calls per side")
    parser.add_argument("--mem-limit-gb", type=float, default=None,
                        help="kill a memory child above this RSS (default 90%% of the memory available at start)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and repeats (smoke test; numbers not for publication)")
    parser.add_argument("--memory-child", choices=["ours", "theirs"], help=argparse.SUPPRESS)
    parser.add_argument("--memory-dir", help=argparse.SUPPRESS)
    parser.add_argument("--memory-reps", type=int, nargs="+", default=None,
                        help="memory case: fcc Cu cells of 4 n^3 atoms, one row per n (default 9: 2916 atoms)")
    parser.add_argument("--memory-child-reps", type=int, default=9, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return memory_child(args.memory_child, args.memory_dir, args.memory_child_reps)
    if args.quick:
        args.repeat, args.md_steps, args.md_calls = 2, 1, 2
    n_ethanol, cu_reps = (10, 3) if args.quick else (50, 6)
    if args.memory_reps is None:
        args.memory_reps = [4] if args.quick else [9]
    if args.mem_limit_gb is None:
        with open("/proc/meminfo") as fh:
            avail = next(int(line.split()[1]) for line in fh if line.startswith("MemAvailable:")) / 2**20
        args.mem_limit_gb = 0.9 * avail

    print(header(argv))
    if args.quick:
        print("QUICK RUN (--quick: smaller systems, 2 timed calls): checks that everything runs; not for publication")
    print(f"sizes    default {DEFAULT['hidden_irreps']}, l_max 3, correlation 3, 2 interactions, 8 Bessel, r 5 Å, "
          f"radial MLP 64x3, elements {ELEMENTS}; MP-0 medium {MP0_MEDIUM['hidden_irreps']}, r 6 Å, 10 Bessel, "
          f"89 elements; float32, random weights, same weights in both", flush=True)
    rows, notes = [], []
    drug_atoms = drugs() if {"drugs", "train"} & set(args.cases) else None
    for case in args.cases:
        t0 = time.perf_counter()
        if case == "ethanol":
            row, note = case_energy_forces(f"E+F {n_ethanol} ethanol", ethanol(n_ethanol), DEFAULT, ELEMENTS,
                                           AVG_NEIGHBORS["default"], args.repeat)
        elif case == "drugs":
            row, note = case_energy_forces("E+F 5 drug molecules", drug_atoms, DEFAULT, ELEMENTS,
                                           AVG_NEIGHBORS["default"], args.repeat)
        elif case == "cu":
            row, note = case_energy_forces("E+F Cu fcc, rattled", [copper(cu_reps)], DEFAULT, ELEMENTS,
                                           AVG_NEIGHBORS["default"], max(2, args.repeat // 2))
        elif case == "train":
            row, note = case_train(drug_atoms, DEFAULT, ELEMENTS, AVG_NEIGHBORS["default"], args.repeat)
        elif case == "md":
            row, note = case_md(copper(cu_reps, seed=2), args.md_steps, args.md_calls)
        else:
            for reps in args.memory_reps[:-1]:
                row, note = case_memory(reps, args.mem_limit_gb)
                rows.append(row)
                notes.append(note)
                print(f"  {case} ({4 * reps ** 3} atoms): {note}", flush=True)
            row, note = case_memory(args.memory_reps[-1], args.mem_limit_gb)
        rows.append(row)
        notes.append(note)
        print(f"  {case}: done in {time.perf_counter() - t0:.0f} s; {note}", flush=True)

    cols = f"{'case':28s} {'system':18s} {'ours':>10s} {'mace-torch':>11s} {'unit':>8s} {'ours/theirs':>12s} " \
           f"{'<= 0.8':>7s} {'compile s':>10s}"
    print()
    print(cols)
    print("-" * len(cols))
    for name, system, ours, theirs, unit, compile_s in rows:
        ratio = ours / theirs if np.isfinite(ours) and np.isfinite(theirs) else float("nan")
        fmt = (lambda v: f"{v:.2f}") if unit == "GB" else (lambda v: f"{v:.1f}")
        ok = "-" if not np.isfinite(ratio) else ("yes" if ratio <= TARGET else "no")
        print(f"{name:28s} {system:18s} {fmt(ours) if np.isfinite(ours) else 'failed':>10s} "
              f"{fmt(theirs) if np.isfinite(theirs) else 'failed':>11s} {unit:>8s} "
              f"{ratio:12.2f} {ok:>7s} {'-' if not np.isfinite(compile_s) else f'{compile_s:.0f}':>10s}")
    print("\nmedians over alternating warm blocks (peers.interleaved_medians), same process; memory: peak RSS "
          "(VmHWM) of one energy+forces call in a child process per library; compile s: our first call (not timed).")
    if args.quick:
        print("QUICK RUN: not for publication.")


if __name__ == "__main__":
    main()
