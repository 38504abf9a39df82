"""collate: frames (dicts of numpy arrays) -> one padded :class:`~mindsponge_mm.batch.Batch`.

Runs the neighbor search (:func:`mindsponge_mm.neighbors.batch_neighbor_list`) for the pairs and
pads atoms, structures and pairs to bucket capacities (:func:`~mindsponge_mm.batch.round_up`)
following the padding rules of :mod:`mindsponge_mm.batch`. Units as in the frames: positions
and cell in Å; the targets keep their units (eV, eV/Å, eV/Å³).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..batch import Batch, round_up
from ..neighbors import batch_neighbor_list


def collate(
    frames: Sequence[Mapping[str, np.ndarray]],
    cutoff: float,
    *,
    n_structures: int | None = None,
    atom_multiple: int = 32,
    pair_multiple: int = 256,
    steps_per_octave: int = 4,
    properties: Sequence[str] = (),
    per_atom: Mapping[str, bool] | None = None,
    dtype: str = "float32",
    frame_index: Sequence[int] | None = None,
    neighbor_backend: str = "auto",
) -> Batch:
    """Build a padded :class:`Batch` from frame dicts (as returned by ``AtomsDataset[i]``).

    ``n_structures`` is the structure capacity without the padding structure (default
    ``len(frames)``). Atom and pair capacities are bucketed by :func:`round_up` with
    ``atom_multiple``/``pair_multiple`` and ``steps_per_octave``. ``per_atom`` says which ``properties`` are per atom; by default
    a property whose first dimension equals the frame's atom count is per atom.
    No loop over atoms runs in Python: only per-structure concatenation.
    """
    dtype = np.dtype(dtype)
    n_struct = len(frames)
    s_cap = (n_structures or n_struct) + 1
    if n_struct >= s_cap:
        raise ValueError(f"{n_struct} frames do not fit a structure capacity of {s_cap - 1}")
    counts = np.array([len(f["atomic_numbers"]) for f in frames], dtype=np.int64)
    n_real = int(counts.sum())
    a_cap = round_up(n_real + 1, atom_multiple, steps_per_octave)
    positions = [np.asarray(f["positions"]) for f in frames]
    cells = [np.asarray(f["cell"]) for f in frames]
    pbcs = [np.asarray(f["pbc"], bool) for f in frames]
    idx_i, idx_j, shifts, pair_counts = batch_neighbor_list(positions, cells, pbcs, cutoff, backend=neighbor_backend)
    p_real = len(idx_i)
    p_cap = round_up(p_real, pair_multiple, steps_per_octave)

    pad_cell_length = max(2.0 * float(cutoff), 10.0)
    out_z = np.zeros(a_cap, np.int32)
    out_r = np.zeros((a_cap, 3), dtype)
    out_struct = np.full(a_cap, s_cap - 1, np.int32)
    out_cell = np.zeros((s_cap, 3, 3), dtype)
    out_pbc = np.zeros((s_cap, 3), bool)
    out_i = np.full(p_cap, n_real, np.int32)
    out_j = np.full(p_cap, n_real, np.int32)
    out_shift = np.zeros((p_cap, 3), dtype)
    out_shift[p_real:, 0] = 1.0

    if n_struct:
        out_z[:n_real] = np.concatenate([f["atomic_numbers"] for f in frames])
        out_r[:n_real] = np.concatenate(positions)
        out_struct[:n_real] = np.repeat(np.arange(n_struct, dtype=np.int32), counts)
        out_cell[:n_struct] = np.stack(cells)
        out_pbc[:n_struct] = np.stack(pbcs)
    out_cell[-1] = pad_cell_length * np.eye(3)
    out_i[:p_real], out_j[:p_real], out_shift[:p_real] = idx_i, idx_j, shifts

    n_atoms = np.zeros(s_cap, np.int32)
    n_atoms[:n_struct] = counts
    index = np.full(s_cap, -1, np.int64)
    if frame_index is not None:
        index[:n_struct] = frame_index

    targets = {}
    for name in properties:
        values = [np.asarray(f[name]) for f in frames]
        atomwise = per_atom[name] if per_atom and name in per_atom else (
            values[0].ndim > 0 and values[0].shape[0] == counts[0]
        )
        out_dtype = dtype if values[0].dtype.kind == "f" else values[0].dtype
        if atomwise:
            target = np.zeros((a_cap,) + values[0].shape[1:], out_dtype)
            target[:n_real] = np.concatenate(values)
        else:
            target = np.zeros((s_cap,) + values[0].shape, out_dtype)
            target[:n_struct] = np.stack(values)
        targets[name] = target

    return Batch(
        atomic_numbers=out_z,
        positions=out_r,
        structure_index=out_struct,
        atom_mask=np.arange(a_cap) < n_real,
        cell=out_cell,
        pbc=out_pbc,
        structure_mask=np.arange(s_cap) < n_struct,
        n_atoms=n_atoms,
        idx_i=out_i,
        idx_j=out_j,
        shifts=out_shift,
        pair_mask=np.arange(p_cap) < p_real,
        frame_index=index,
        targets=targets,
    )
