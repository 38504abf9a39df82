"""Energy + forces speed of SchNet, PaiNN and MACE (float32, one compiled graph per shape).

Systems: 50 ethanol molecules in one batch, and the periodic 864-atom Cu cell (5 Å cutoff).
Sizes: SchNet/PaiNN 128 features, 3 interactions, 20 radial functions; MACE 128x0e+128x1o hidden,
l_max 3, correlation 3, 2 layers. When schnetpack is importable its SchNet/PaiNN of the same size
run side by side; otherwise the ratio is taken against the SchNetPack numbers measured on this
machine in ../shared/PEERS.md (marked "ref").

Run alone on the machine: ``python benchmarks/models.py [--models schnet painn mace] [--repeat 20]``.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402
from ase.build import bulk, molecule  # noqa: E402

from mindsponge_mm.data import collate  # noqa: E402
from peers import interleaved_medians, schnetpack_model  # noqa: E402
from mindsponge_mm.models import Potential, build  # noqa: E402

CUTOFF = 5.0
SIZES = {
    "schnet": dict(n_features=128, n_interactions=3, n_rbf=20),
    "painn": dict(n_features=128, n_interactions=3, n_rbf=20),
    "mace": dict(n_channels=128, hidden_l=1, l_max=3, correlation=3, n_layers=2),
}
# SchNetPack 2.1.1 on this machine (torch 2.13 CPU, 2 threads), from ../shared/PEERS.md, ms per call
PEER_REFERENCE_MS = {("schnet", "ethanol x50"): 36.7, ("schnet", "Cu 864"): 287.0,
                     ("painn", "ethanol x50"): 61.9, ("painn", "Cu 864"): 1397.0}


def systems():
    rng = np.random.default_rng(0)
    molecules = []
    for k in range(50):
        m = molecule("CH3CH2OH")
        m.rattle(0.05, seed=k)
        molecules.append(m)
    cu = bulk("Cu", "fcc", a=3.61, cubic=True) * (6, 6, 6)
    cu.rattle(0.05, seed=int(rng.integers(1000)))
    return {"ethanol x50": molecules, "Cu 864": [cu]}


def frames(atoms_list):
    return [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": a.cell[:], "pbc": a.pbc} for a in atoms_list]


def ours(name, atoms_list):
    """(call, compile seconds, atoms): one synchronised energy+forces call of our model."""
    model = build(name, elements=["H", "C", "O", "Cu"], cutoff=CUTOFF, seed=0, **SIZES[name])
    potential = Potential(model)
    batch = collate(frames(atoms_list), CUTOFF)
    start = time.perf_counter()
    potential.evaluate(batch)  # compiles
    compile_s = time.perf_counter() - start
    return (lambda: potential.evaluate(batch)), compile_s, int(batch.n_real[0])  # evaluate() returns numpy


def schnetpack_call(name, atoms_list):
    """One synchronised call of SchNetPack's model of the same size, or None without schnetpack."""
    peer = schnetpack_model(name)
    if peer is None:
        return None
    model, converter = peer
    inputs = converter(atoms_list)
    model(dict(inputs))
    return lambda: model(dict(inputs))["forces"].detach().numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="*", default=list(SIZES))
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    cols = ["model", "system", "atoms", "ms/call", "us/atom", "compile s", "peer ms", "ours/peer"]
    print(" | ".join(f"{c:>12}" for c in cols))
    for name in args.models:
        for sys_name, atoms_list in systems().items():
            call, compile_s, n_atoms = ours(name, atoms_list)
            peer_call = schnetpack_call(name, atoms_list) if name in ("schnet", "painn") else None
            ms_call, peer = (interleaved_medians([call, peer_call], args.repeat) if peer_call
                             else (interleaved_medians([call], args.repeat)[0], None))
            tag = ""
            if peer is None and (name, sys_name) in PEER_REFERENCE_MS:
                peer, tag = PEER_REFERENCE_MS[(name, sys_name)], " ref"
            row = [name, sys_name, str(n_atoms), f"{ms_call:.1f}", f"{1e3 * ms_call / n_atoms:.1f}", f"{compile_s:.1f}",
                   "-" if peer is None else f"{peer:.1f}{tag}", "-" if peer is None else f"{ms_call / peer:.2f}"]
            print(" | ".join(f"{c:>12}" for c in row), flush=True)


if __name__ == "__main__":
    main()
