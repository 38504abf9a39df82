"""SchNetPack models for the side-by-side benchmarks (only where schnetpack is importable: see peers_env.sh).

The same sizes as ours: 128 features, 3 interactions, 20 Gaussian radial functions, 5 Å cosine cutoff;
energy from an atomwise readout, forces by autograd. Random weights: speed does not depend on them.
"""
from __future__ import annotations

import os
import time

import numpy as np

CUTOFF = 5.0


def schnetpack_model(name: str):
    """(model, converter) for ``name`` in {"schnet", "painn"}, or None when schnetpack is not importable.

    ``converter(atoms or list of atoms)`` builds SchNetPack's input dict with matscipy's neighbor list.
    Sets torch to use every core, as our runs do.
    """
    try:
        import schnetpack as spk
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    cls = spk.representation.SchNet if name == "schnet" else spk.representation.PaiNN
    rep = cls(n_atom_basis=128, n_interactions=3, radial_basis=spk.nn.GaussianRBF(n_rbf=20, cutoff=CUTOFF),
              cutoff_fn=spk.nn.CosineCutoff(CUTOFF))
    model = spk.model.NeuralNetworkPotential(
        representation=rep, input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[spk.atomistic.Atomwise(n_in=128, output_key="energy"),
                        spk.atomistic.Forces(energy_key="energy", force_key="forces")])
    converter = spk.interfaces.AtomsConverter(neighbor_list=spk.transform.MatScipyNeighborList(cutoff=CUTOFF),
                                              dtype=torch.float32)
    return model, converter


def interleaved_medians(calls, repeat, block=5):
    """Median ms per call of each callable over ``repeat`` timed calls, taken in alternating blocks
    (warm-up + ``block`` calls of a, then of b, ...): the machine's speed drifts by up to 2x within
    minutes, so both must see the same machine, and each block starts with one untimed call because
    a call right after the other library's ran slower by about 20 % (cold caches and thread pools;
    measured for our SchNet train step after SchNetPack's: 36 instead of 27-30 ms)."""
    times = [[] for _ in calls]
    while len(times[0]) < repeat:
        for k, call in enumerate(calls):
            call()
            for _ in range(block):
                t0 = time.perf_counter()
                call()
                times[k].append(time.perf_counter() - t0)
    return [1e3 * float(np.median(t)) for t in times]
