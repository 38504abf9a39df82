"""Training throughput: structures/s of one compiled train step (E+F loss, double backward, Adam).

SchNet and PaiNN with 128 features, 3 interactions, 20 radial functions, 5 Å cutoff, batches of
10 bundled ethanol frames (float32). When schnetpack is importable, its model of the same size
runs the same step (forward, forces by autograd, E+F MSE loss, backward, Adam) side by side;
otherwise the ratio uses the SchNetPack step time measured on this machine in ../shared/PEERS.md
(marked "ref"). Ratio = peer time / our time, so > 1 means we are faster. Times are medians over
the timed steps, each synchronised (``asnumpy``) as the Trainer does, ours and the peer's taken in
alternating blocks so that both see the same machine. The package turns on
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
from peers import interleaved_medians, schnetpack_model  # noqa: E402

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


def ours(name, ds, data):
    """(call, compile seconds): one synchronised train step of our model per call, cycling the batches."""
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
    counter = iter(range(10**9))

    def one():
        step(*inputs[next(counter) % len(inputs)]).asnumpy()

    for _ in range(5):
        one()
    return one, compile_s


def schnetpack_step(name, data):
    """One train step of SchNetPack's model of the same size per call, or None without schnetpack."""
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
    counter = iter(range(10**9))

    def one():
        inputs, e_ref, f_ref = prepared[next(counter) % len(prepared)]
        out = model(dict(inputs))
        loss = ((out["energy"] - e_ref) ** 2).mean() + 10 * ((out["forces"] - f_ref) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    one()
    return one


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
        call, compile_s = ours(name, ds, data)
        peer_call, tag = schnetpack_step(name, data), ""
        if peer_call is None:
            ms_step, peer, tag = interleaved_medians([call], args.steps)[0], PEER_REFERENCE_MS[name], " ref"
        else:
            ms_step, peer = interleaved_medians([call, peer_call], args.steps)
        row = [name, f"{ms_step:.1f}", f"{1e3 * BATCH / ms_step:.0f}", f"{compile_s:.1f}", f"{peer:.1f}{tag}",
               f"{peer / ms_step:.2f}"]
        print(" | ".join(f"{c:>13}" for c in row), flush=True)


if __name__ == "__main__":
    main()
