"""This tree against an earlier commit, in one process: energy+forces, a training step and an MD block.

The earlier commit's ``mindsponge_mm/`` and ``kernels/`` are extracted with ``git archive`` into a
temporary folder, and its package is imported as ``mindsponge_mm_base`` (the package imports itself
only relatively, so both copies load side by side). Each case builds the same model (same seed, same
sizes) in both copies and times them in alternating warm blocks (``peers.interleaved_medians``): the
machine's speed drifts within minutes, so only same-window ratios mean anything. Ratio = this tree's
median time / the base's; below 1 is faster.

Cases (``--cases``), float32:

* ``ef``: energy+forces of SchNet and PaiNN (128 features, 3 interactions, 20 radial functions) and
  MACE (64 channels, hidden l 1, l_max 3, correlation 3, 2 layers) on 50 ethanol molecules in one
  batch and on 864-atom fcc Cu (5 Å cutoff), as ``benchmarks/models.py``;
* ``train``: one training step (energy + 10 x forces MSE, Adam 1e-4, clipping at 10) of SchNet and
  PaiNN on batches of 10 bundled ethanol frames, as ``benchmarks/training.py``;
* ``md``: one compiled block of 100 velocity-Verlet steps of PaiNN on one ethanol molecule, as
  ``benchmarks/md.py``.

Run alone on the machine, under the MindSpore lock::

    flock /tmp/mindspore.lock python benchmarks/ab_revision.py --base 52bf626
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402
from ase.build import molecule  # noqa: E402

from models import systems  # noqa: E402  (benchmarks/models.py: 50 ethanol, 864-atom Cu)
from peers import interleaved_medians  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CUTOFF = 5.0
SIZES = {
    "schnet": dict(n_features=128, n_interactions=3, n_rbf=20),
    "painn": dict(n_features=128, n_interactions=3, n_rbf=20),
    "mace": dict(n_channels=64, hidden_l=1, l_max=3, correlation=3, n_layers=2, avg_num_neighbors=10.0),
}


def load_base(rev: str, folder: Path):
    """The package of commit ``rev``, imported as ``mindsponge_mm_base`` from ``folder``."""
    blob = subprocess.run(["git", "-C", str(REPO), "archive", rev, "mindsponge_mm", "kernels"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "mindsponge_mm").rename(folder / "mindsponge_mm_base")
    sys.path.insert(0, str(folder))
    return importlib.import_module("mindsponge_mm_base")


def package_parts(pkg):
    """(build, Potential, collate) of a package, wherever its version keeps them."""
    models = importlib.import_module(pkg.__name__ + ".models")
    data = importlib.import_module(pkg.__name__ + ".data")
    collate = getattr(data, "collate", None) or importlib.import_module(pkg.__name__ + ".batch").collate
    return models.build, models.Potential, collate


def frames_of(atoms_list):
    return [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": a.cell[:], "pbc": a.pbc}
            for a in atoms_list]


def energy_forces_call(pkg, name, atoms_list):
    build, Potential, collate = package_parts(pkg)
    elements = sorted({int(z) for a in atoms_list for z in a.numbers})
    potential = Potential(build(name, elements=elements, cutoff=CUTOFF, seed=0, **SIZES[name]))
    batch = collate(frames_of(atoms_list), CUTOFF)
    potential.evaluate(batch)
    return lambda: potential.evaluate(batch)


def train_call(pkg, name):
    import mindspore as ms

    data = importlib.import_module(pkg.__name__ + ".data")
    train = importlib.import_module(pkg.__name__ + ".train")
    build, Potential, _ = package_parts(pkg)
    ds = data.AtomsDataset.open("bundled:ethanol")
    loader = data.AtomsLoader(ds, 10, CUTOFF, shuffle=True, seed=0, indices=np.arange(800))
    batches = []
    while len(batches) < 20:
        batches.extend(loader)
    model = build(name, elements=["H", "C", "O"], cutoff=CUTOFF, seed=0, **SIZES[name])
    potential = Potential(model)
    optimizer = ms.nn.Adam(model.trainable_params(), learning_rate=1e-4)
    loss = train.PotentialLoss(potential, (1.0, 10.0, 0.0), stress=False)
    step = ms.jit(train.TrainStep(loss, optimizer, clip_norm=10.0).construct)
    inputs = [train.loss_inputs(potential, b) for b in batches[:20]]
    counter = iter(range(10**9))

    def one():
        step(*inputs[next(counter) % len(inputs)]).asnumpy()

    one()
    return one


def md_call(pkg):
    md = importlib.import_module(pkg.__name__ + ".md")
    build, Potential, _ = package_parts(pkg)
    potential = Potential(build("painn", elements=["H", "C", "O"], cutoff=CUTOFF, seed=0, **SIZES["painn"]))
    state = md.MDState.from_atoms(molecule("CH3CH2OH")).maxwell_boltzmann(300.0, seed=0)
    sim = md.Simulation(state, potential, md.build_integrator("verlet", dt=0.5), skin=1.0, min_distance=0.1)
    sim.run(100, block=100)
    return lambda: sim.run(100, block=100)


def header(base_rev: str) -> str:
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()

    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, this tree at {git('rev-parse', '--short', 'HEAD')}"
            f"{' (uncommitted changes)' if git('status', '--porcelain', '--untracked-files=no') else ''} against "
            f"{git('rev-parse', '--short', base_rev)}; {platform.machine()}, {os.cpu_count()} cores; "
            f"python {platform.python_version()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--cases", nargs="+", default=["ef", "train", "md"], choices=["ef", "train", "md"])
    parser.add_argument("--models", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--repeat", type=int, default=10, help="timed calls per side and case")
    args = parser.parse_args(argv)

    import mindsponge_mm as this

    with tempfile.TemporaryDirectory() as tmp:
        base = load_base(args.base, Path(tmp))
        print(header(args.base))
        print(f"{'case':<34} {'this ms':>10} {'base ms':>10} {'ratio':>7}")
        rows = []
        if "ef" in args.cases:
            for label, atoms_list in systems().items():
                for name in args.models:
                    rows.append((f"E+F {name}, {label}", energy_forces_call(this, name, atoms_list),
                                 energy_forces_call(base, name, atoms_list)))
        if "train" in args.cases:
            for name in [m for m in args.models if m != "mace"]:
                rows.append((f"train step {name}, 10 ethanol", train_call(this, name), train_call(base, name)))
        if "md" in args.cases:
            rows.append(("MD block of 100 steps, painn ethanol", md_call(this), md_call(base)))
        for label, ours, theirs in rows:
            t0 = time.perf_counter()
            ms_this, ms_base = interleaved_medians([ours, theirs], args.repeat, block=min(5, args.repeat))
            print(f"{label:<34} {ms_this:>10.1f} {ms_base:>10.1f} {ms_this / ms_base:>7.2f}"
                  f"   ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
