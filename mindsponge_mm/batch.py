"""Batch: the one contract between data and models.

A batch is a flat graph of several structures, padded to bucket capacities so that
a compiled graph sees few distinct shapes. With A atoms, S structures and P pairs
of capacity (all padding included):

=================  ===========  ==========================================================
field              shape        meaning
=================  ===========  ==========================================================
atomic_numbers     [A] int32    Z; 0 for padding atoms
positions          [A, 3]       Å
structure_index    [A] int32    structure of each atom; padding atoms -> S - 1
atom_mask          [A] bool     True for real atoms
cell               [S, 3, 3]    Å, rows are lattice vectors
pbc                [S, 3] bool
structure_mask     [S] bool     True for real structures
n_atoms            [S] int32    real atoms per structure (0 for padding)
idx_i, idx_j       [P] int32    pair atoms; r_ij = R[j] - R[i] + shifts_ij @ cell[structure_index[i]]
shifts             [P, 3]       integer cell shifts, stored in the float dtype
pair_mask          [P] bool     True for real pairs
frame_index        [S] int64    dataset index of each structure (-1 for padding)
targets            dict         per structure [S, ...] or per atom [A, ...], zero on padding
=================  ===========  ==========================================================

Padding rules (these make padding contribute exactly nothing):

* there is always at least one padding atom and exactly one padding structure (the last, S - 1);
  ``S = batch_size + 1`` for every batch of a loader;
* padding atoms sit at the origin of the padding structure, whose cell is
  ``pad_cell_length · I`` (longer than the cutoff) and whose pbc is False;
* every padding pair joins the first padding atom to itself with shift (1, 0, 0), so
  its length is ``pad_cell_length`` > cutoff: finite, non-zero, and outside every
  cutoff function; it touches no real atom.

Models sum per-atom energies with ``atom_mask`` and per-pair terms with ``pair_mask``.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from .neighbors import batch_neighbor_list

ARRAY_FIELDS = (
    "atomic_numbers", "positions", "structure_index", "atom_mask", "cell", "pbc", "structure_mask",
    "n_atoms", "idx_i", "idx_j", "shifts", "pair_mask", "frame_index",
)


def round_up(value: int, multiple: int, steps_per_octave: int = 0) -> int:
    """Bucket capacity for ``value`` items: at least ``multiple``, a multiple of ``multiple``.

    With ``steps_per_octave = k > 0`` the step grows with the value (geometric buckets):
    it is ``multiple`` times the largest power of two not above ``value / (k · multiple)``,
    so padding stays below about 1/k of the value and the number of distinct capacities
    grows only logarithmically with the spread of batch sizes. ``k = 0`` gives plain
    multiples of ``multiple``.
    """
    value, multiple = int(value), int(multiple)
    step = multiple
    if steps_per_octave > 0 and value > multiple:
        ratio = value // (steps_per_octave * multiple)
        step = multiple * (1 << max(ratio.bit_length() - 1, 0))
    return max(multiple, -(-value // step) * step)


@dataclasses.dataclass(frozen=True)
class Batch:
    """A padded flat-graph batch; see the module docstring for names, shapes and padding rules."""

    atomic_numbers: np.ndarray
    positions: np.ndarray
    structure_index: np.ndarray
    atom_mask: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    structure_mask: np.ndarray
    n_atoms: np.ndarray
    idx_i: np.ndarray
    idx_j: np.ndarray
    shifts: np.ndarray
    pair_mask: np.ndarray
    frame_index: np.ndarray
    targets: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(atom capacity, structure capacity, pair capacity): the compiled-graph shape key."""
        return (len(self.atomic_numbers), len(self.cell), len(self.idx_i))

    @property
    def n_real(self) -> tuple[int, int, int]:
        """(real atoms, real structures, real pairs)."""
        return (int(np.sum(self.atom_mask)), int(np.sum(self.structure_mask)), int(np.sum(self.pair_mask)))

    def replace(self, **changes) -> "Batch":
        return dataclasses.replace(self, **changes)

    def to_mindspore(self) -> "Batch":
        """The same batch with every array (targets included) as a ``mindspore.Tensor``."""
        import mindspore as ms

        arrays = {name: ms.Tensor(np.ascontiguousarray(getattr(self, name))) for name in ARRAY_FIELDS}
        targets = {k: ms.Tensor(np.ascontiguousarray(v)) for k, v in self.targets.items()}
        return dataclasses.replace(self, targets=targets, **arrays)

    def describe(self) -> str:
        """A few lines naming every field with its shape and dtype."""
        a, s, p = self.n_real
        lines = [f"Batch: {s} structures, {a} atoms, {p} pairs; padded to {self.shape[1]} / {self.shape[0]} / {self.shape[2]}"]
        for name in ARRAY_FIELDS:
            v = getattr(self, name)
            lines.append(f"  {name:<16} {str(list(v.shape)):<12} {v.dtype}")
        for name, v in self.targets.items():
            lines.append(f"  target {name:<9} {str(list(v.shape)):<12} {v.dtype}")
        return "\n".join(lines)


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
