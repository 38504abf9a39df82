"""Training throughput: structures/s of one compiled train step (E+F loss, double backward, Adam).

SchNet and PaiNN with 128 features, 3 interactions, 20 radial functions, 5 Å cutoff, batches of
10 bundled ethanol frames (float32). When schnetpack is importable, its model of the same size
runs the same step (forward, forces by autograd, E+F MSE loss, backward, Adam) side by side;
otherwise the ratio uses the SchNetPack step time measured on this machine in ../shared/PEERS.md
(marked "ref"). Ratio = peer time / our time, so > 1 means we are faster. Times are means over
the timed steps, each synchronised (``asnumpy``) as the Trainer does. The package turns on
MindSpore's host-blocking graph runs on the CPU (``mindsponge_mm/runtime.py``); run with
``MS_DEV_HOST_BLOCKING_RUN=0`` to see MindSpore's asynchronous default (about 4x slower here).

Run alone on the machine: ``python benchmarks/training.py [--steps 100]``.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("GLOG_v", "3")

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402

from mindsponge_mm.data import AtomsDataset, AtomsLoader, statistics  # noqa: E402
from mindsponge_mm.models import Potential, build  # noqa: E402
from mindsponge_mm.train import PotentialLoss, TrainStep, loss_inputs  # noqa: E402
from peers import schnetpack_model  # noqa: E402

CUTOFF, BATCH = 5.0, 10
SIZES = {"schnet": dict(n_features=128, n_interactions=3, n_rbf=20),
         "painn": dict(n_features=128, n_interactions=3, n_rbf=20)}
PEER_REFERENCE_MS = {"schnet": 23.0, "painn": 43.6}  # SchNetPack 2.1.1 train step, batch 10 ethanol


def batches(n):
    ds = AtomsDataset.open("bundled:ethanol")
    loader = AtomsLoader(ds, BATCH, CUTOFF, shuffle=True, seed=0, indices=np.arange(800))
    out = []
    while len(out) < n:
        out.extend(loader)
    return ds, out[:n]


def time_ours(name, ds, data, steps):
    stats = statistics(ds, np.arange(800))
    model = build(name, elements=["H", "C", "O"], cutoff=CUTOFF, seed=0, **SIZES[name])
    model.set_energy_offsets(stats.atomrefs, scale=stats.force_rms, shift=stats.mean_energy_per_atom)
    potential = Potential(model)
    optimizer = ms.nn.Adam(model.trainable_params(), learning_rate=1e-4)
    step = ms.jit(TrainStep(PotentialLoss(potential, (1.0, 10.0, 0.0), stress=False), optimizer, clip_norm=10.0).construct)
    inputs = [loss_inputs(potential, b) for b in data]  # host-side batching is timed by benchmarks/loader.py
    t0 = time.perf_counter()
    step(*inputs[0]).asnumpy()
    compile_s = time.perf_counter() - t0
    for k in range(5):
        step(*inputs[k % len(inputs)]).asnumpy()
    t0 = time.perf_counter()
    for k in range(steps):
        step(*inputs[k % len(inputs)]).asnumpy()
    return 1e3 * (time.perf_counter() - t0) / steps, compile_s


def time_schnetpack(name, data, steps):
    peer = schnetpack_model(name)
    if peer is None:
        return None
    import torch
    from ase import Atoms

    model, converter = peer
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    prepared = []
    for b in data[:10]:
        real = b.structure_mask
        atoms = [Atoms(numbers=b.atomic_numbers[b.structure_index == s], positions=b.positions[b.structure_index == s])
                 for s in np.flatnonzero(real)]
        inputs = converter(atoms)
        prepared.append((inputs, torch.tensor(b.targets["energy"][real]),
                         torch.tensor(b.targets["forces"][b.atom_mask])))

    def one(k):
        inputs, e_ref, f_ref = prepared[k % len(prepared)]
        out = model(dict(inputs))
        loss = ((out["energy"] - e_ref) ** 2).mean() + 10 * ((out["forces"] - f_ref) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss)

    one(0)
    times = []
    for k in range(steps):
        t0 = time.perf_counter()
        one(k)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="*", default=list(SIZES))
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    ds, data = batches(args.steps)
    cols = ["model", "ms/step", "structures/s", "compile s", "peer ms", "peer/ours"]
    print(f"MS_DEV_HOST_BLOCKING_RUN={os.environ.get('MS_DEV_HOST_BLOCKING_RUN', 'unset')}")
    print(" | ".join(f"{c:>13}" for c in cols))
    for name in args.models:
        ms_step, compile_s = time_ours(name, ds, data, args.steps)
        peer, tag = time_schnetpack(name, data, args.steps), ""
        if peer is None:
            peer, tag = PEER_REFERENCE_MS[name], " ref"
        row = [name, f"{ms_step:.1f}", f"{1e3 * BATCH / ms_step:.0f}", f"{compile_s:.1f}", f"{peer:.1f}{tag}",
               f"{peer / ms_step:.2f}"]
        print(" | ".join(f"{c:>13}" for c in row), flush=True)


if __name__ == "__main__":
    main()
