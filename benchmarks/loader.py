"""Loader throughput: padded batches per second and distinct padded shapes per epoch.

Run alone on the machine: ``python benchmarks/loader.py [--epochs 3]``.
"""
import argparse
import time

from mindsponge_mm.data import AtomsDataset, AtomsLoader


def measure(name: str, batch_size: int, cutoff: float, epochs: int) -> dict:
    ds = AtomsDataset.open(f"bundled:{name}")
    loader = AtomsLoader(ds, batch_size=batch_size, cutoff=cutoff, shuffle=True, seed=0)
    shapes, n_batches, pairs = set(), 0, 0
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            shapes.add(batch.shape)
            n_batches += 1
            pairs += batch.n_real[2]
    elapsed = time.perf_counter() - start
    one_epoch = {b.shape for b in loader}
    return {
        "dataset": name, "batch": batch_size, "cutoff": cutoff, "batches/s": n_batches / elapsed,
        "structures/s": n_batches * batch_size / elapsed, "ms/batch": 1e3 * elapsed / n_batches,
        "shapes/epoch": len(one_epoch), "pairs/batch": pairs / n_batches,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    rows = [measure("ethanol", 32, 5.0, args.epochs), measure("copper", 8, 5.0, max(1, args.epochs // 3))]
    cols = list(rows[0])
    print(" | ".join(f"{c:>12}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r[c]:>12.1f}" if isinstance(r[c], float) else f"{r[c]:>12}" for c in cols))


if __name__ == "__main__":
    main()
