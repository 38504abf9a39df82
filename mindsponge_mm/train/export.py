"""MindIR export of the energy+forces graph, for deployment (MindSpore Lite, Ascend inference).

A MindIR graph has static shapes: it is exported for one padded batch (atom, pair and
structure capacities), which the exported file's sidecar JSON records together with the
model metadata. Pad inputs to those capacities exactly as :func:`mindsponge_mm.data.collate`
does. Outputs: energy [S] (eV), per-atom energies [A] (eV), forces [A, 3] (eV/Å) and
stress [S, 3, 3] (eV/Å³).
"""
from __future__ import annotations

import json
from pathlib import Path

import mindspore as ms
import numpy as np

from ..data.collate import collate
from ..errors import UserError
from ..io_utils import atomic_path, write_text_atomic
from ..models.potential import Potential


def example_batch(potential: Potential, config: dict | None, n_structures: int = 1):
    """The batch whose shape the export fixes: the run's first training frames, or a tiny molecule."""
    from ase.build import molecule

    if config is not None:
        from ..data import AtomsDataset

        ds = AtomsDataset.open(config["data"]["path"], config["data"].get("units") or None)
        n = min(int(config["data"]["batch_size"]), len(ds))
        frames = ds.frames(range(n))
        return collate(frames, potential.cutoff, n_structures=n, atom_multiple=config["data"]["atom_multiple"],
                       pair_multiple=config["data"]["pair_multiple"], dtype=potential.model.dtype_name)
    atoms = molecule("CH4")
    return collate([{"atomic_numbers": atoms.numbers, "positions": atoms.positions, "cell": np.zeros((3, 3)),
                     "pbc": np.zeros(3, bool)}], potential.cutoff, n_structures=n_structures,
                   dtype=potential.model.dtype_name)


def export_mindir(checkpoint: str | Path, path: str | Path, config: dict | None = None) -> Path:
    """Write ``path`` (.mindir) and ``path``.json (shapes and metadata); return ``path``."""
    potential = Potential.load(checkpoint)
    batch = example_batch(potential, config)
    inputs = potential.inputs(batch)
    path = Path(path)
    if path.suffix != ".mindir":
        raise UserError(f"{path}: a MindIR export must end in .mindir")
    with atomic_path(path) as tmp:
        ms.export(potential, *inputs, file_name=str(tmp.with_suffix("")), file_format="MINDIR")
        tmp.with_suffix(".mindir").replace(tmp)
    meta = {**potential.metadata(), "input_shapes": [list(t.shape) for t in inputs],
            "input_dtypes": [str(t.dtype) for t in inputs],
            "outputs": ["energy [S] eV", "energies [A] eV", "forces [A,3] eV/Ang", "stress [S,3,3] eV/Ang^3"]}
    write_text_atomic(path.with_suffix(".json"), json.dumps(meta, indent=1))
    return path


def load_mindir(path: str | Path):
    """A callable ``graph(*inputs)`` of an exported file (``nn.GraphCell``)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such MindIR file; export one with `mindsponge-mm export RUN_DIR`")
    return ms.nn.GraphCell(ms.load(str(path)))
