"""Jobs driven by a validated config (see :mod:`mindsponge_mm.config`).

``run`` executes the stages a config describes, in order. Today that is the data
stage: load the dataset, split it, compute its statistics and build a padded batch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import yaml
from ase.data import chemical_symbols

from .data import AtomsDataset, AtomsLoader, split, statistics
from .io_utils import write_text_atomic


def prepare_data(config: dict, out_dir: Path, log: Callable[[str], None] = print):
    """Open the dataset, split it (reusing ``out_dir/split.npz``) and compute training statistics."""
    data, seed = config["data"], config["run"]["seed"]
    ds = AtomsDataset.open(data["path"], data["units"] or None)
    log(ds.summary())
    parts = split(ds, data["split"], seed=seed, file=out_dir / "split.npz")
    log(f"split     train {len(parts[0])}, val {len(parts[1])}, test {len(parts[2])}  ({out_dir / 'split.npz'})")
    stats = statistics(ds, parts[0]) if "energy" in ds.properties else None
    if stats is not None:
        refs = ", ".join(f"{chemical_symbols[z]} {e:.4f}" for z, e in stats.atomrefs.items())
        log(f"atomrefs  {refs} eV  (least squares over the training split)")
        log(
            f"energy    mean {stats.mean_energy_per_atom:.5f} eV/atom, std {stats.std_energy_per_atom:.5f} eV/atom "
            f"after atomrefs"
        )
        if stats.force_rms is not None:
            log(f"forces    RMS {stats.force_rms:.4f} eV/Ang")
    return ds, parts, stats


def run(config: dict, log: Callable[[str], None] = print) -> dict:
    """Run every stage of ``config``; return a dict of what was produced."""
    out_dir = Path(config["run"]["output"])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    ds, parts, stats = prepare_data(config, out_dir, log)
    data = config["data"]
    loader = AtomsLoader(
        ds, data["batch_size"], data["cutoff"], shuffle=data["shuffle"], seed=config["run"]["seed"],
        indices=parts[0], atom_multiple=data["atom_multiple"], pair_multiple=data["pair_multiple"],
        steps_per_octave=data["steps_per_octave"], dtype=data["dtype"],
    )
    batch = next(iter(loader))
    log(f"loader    {len(loader)} training batches of {loader.batch_size}, cutoff {loader.cutoff} Ang")
    log(batch.describe())
    pairs_per_atom = batch.n_real[2] / max(batch.n_real[0], 1)
    log(f"          {pairs_per_atom:.1f} neighbors per atom; padding {1 - np.mean(batch.pair_mask):.1%} of pairs")
    return {"dataset": ds, "split": parts, "statistics": stats, "batch": batch, "output": out_dir}
