"""Neighbor-list speed: our C++ kernel, the kernel inside a MindSpore graph, the MindSpore-ops
fallback, and vesin / matscipy / ASE when importable, all in this process.

Run alone on the machine (nothing else busy): ``python benchmarks/neighbors.py [--max-atoms 100000]``.
Times are medians over repeated calls, in ms per call; "ns/pair" is our kernel's time per pair.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.build import bulk, molecule  # noqa: E402

from mindsponge_mm.neighbors.aot import aot_op, kernel_neighbor_pairs  # noqa: E402
from mindsponge_mm.neighbors import fallback  # noqa: E402
from mindsponge_mm.neighbors.reference import reference_pairs  # noqa: E402

CUTOFF = 5.0


def copper(repeat: int, seed: int = 0) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (repeat, repeat, repeat)
    atoms.rattle(0.05, seed=seed)
    return atoms


def water_box(n_side: int, seed: int = 0) -> Atoms:
    """Water molecules on a jittered lattice at 1 g/cm³ (0.0334 molecules per Å³), randomly oriented."""
    rng = np.random.default_rng(seed)
    spacing = (1 / 0.0334) ** (1 / 3)
    template = molecule("H2O").positions
    positions, numbers = [], []
    for idx in np.ndindex(n_side, n_side, n_side):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        positions.append((template @ q.T) + (np.array(idx) + 0.5) * spacing + rng.normal(0, 0.2, 3))
        numbers += [8, 1, 1]
    return Atoms(numbers=numbers, positions=np.concatenate(positions), cell=[n_side * spacing] * 3, pbc=True)


def timed(fn, min_time=0.3, max_repeat=50):
    fn()  # warm-up (compilation, first-touch allocation)
    times = []
    start = time.perf_counter()
    while len(times) < max_repeat and (time.perf_counter() - start < min_time or len(times) < 3):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def graph_call(atoms):
    """The kernel through ops.Custom inside ms.jit, fixed capacity; returns a callable that synchronises."""
    import mindspore as ms

    op = aot_op()
    n_pairs = len(kernel_neighbor_pairs(atoms.positions, atoms.cell[:][None], atoms.pbc[None],
                                        np.array([0, len(atoms)]), CUTOFF)[0])
    args = (ms.Tensor(atoms.positions.astype(np.float32)), ms.Tensor(atoms.cell[:][None].astype(np.float32)),
            ms.Tensor(atoms.pbc[None]), ms.Tensor(np.array([0, len(atoms)], np.int32)),
            ms.Tensor(np.array([CUTOFF], np.float32)), ms.Tensor(np.zeros(int(n_pairs * 1.1) + 16, np.int32)))

    @ms.jit
    def search(*a):
        return op(*a)

    return lambda: search(*args)[3].asnumpy()


def fallback_graph_call(atoms, n_pairs):
    """The MindSpore-ops fallback compiled with ms.jit, as the NeighborList Cell runs it."""
    import mindspore as ms

    cells, pbc = atoms.cell[:][None], atoms.pbc[None]
    minimum_image = fallback.minimum_image_ok(cells, pbc, CUTOFF)
    images = fallback.image_list(fallback.image_range(cells, pbc, CUTOFF))
    args = (ms.Tensor(atoms.positions.astype(np.float32)), ms.Tensor(cells.astype(np.float32)), ms.Tensor(pbc),
            ms.Tensor(np.zeros(len(atoms), np.int32)), ms.Tensor(fallback.completion_basis(cells, pbc).astype(np.float32)),
            ms.Tensor(images))
    capacity = int(n_pairs * 1.1) + 16

    @ms.jit
    def search(*a):
        return fallback.pairs_graph(*a, CUTOFF, capacity, False, minimum_image)

    return lambda: search(*args)[3].asnumpy()


def available(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-atoms", type=int, default=100_000)
    parser.add_argument("--fallback-max-atoms", type=int, default=5000, help="the O(N²) fallback is skipped above this")
    parser.add_argument("--ase-max-atoms", type=int, default=5000)
    args = parser.parse_args()
    systems = [("Cu fcc", copper(r)) for r in (3, 6, 10, 20, 29)] + [("water", water_box(10))]
    systems = [(name, a) for name, a in systems if len(a) <= args.max_atoms]
    peers = [p for p in ("vesin", "matscipy") if available(p)]
    cols = ["system", "atoms", "pairs", "kernel", "graph", "fallback", *peers, "ase", "ours/vesin", "ns/pair"]
    print(f"cutoff {CUTOFF} Å, threads: {os.cpu_count()} cores; times in ms per call")
    print(" | ".join(f"{c:>10}" for c in cols))
    for name, atoms in systems:
        pos, cell, pbc, off = atoms.positions, atoms.cell[:][None], atoms.pbc[None], np.array([0, len(atoms)])
        n_pairs = len(kernel_neighbor_pairs(pos, cell, pbc, off, CUTOFF)[0])
        row = {"system": name, "atoms": len(atoms), "pairs": n_pairs}
        row["kernel"] = timed(lambda: kernel_neighbor_pairs(pos, cell, pbc, off, CUTOFF))
        row["graph"] = timed(graph_call(atoms))
        row["fallback"] = (timed(fallback_graph_call(atoms, n_pairs), max_repeat=10)
                           if len(atoms) <= args.fallback_max_atoms else None)
        for peer in peers:
            row[peer] = timed(lambda: reference_pairs(peer, pos, cell, pbc, off, CUTOFF))
        row["ase"] = (timed(lambda: reference_pairs("ase", pos, cell, pbc, off, CUTOFF), max_repeat=5)
                      if len(atoms) <= args.ase_max_atoms else None)
        row["ours/vesin"] = row["kernel"] / row["vesin"] if "vesin" in row else None
        row["ns/pair"] = 1e6 * row["kernel"] / n_pairs
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append(f"{'-':>10}" if v is None else f"{v:>10.3f}" if isinstance(v, float) else f"{v:>10}")
        print(" | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
