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

:meth:`Batch.graph_inputs` gives the ten arrays a potential's graph takes (names and order:
:data:`GRAPH_INPUTS`); :func:`pad_pairs` pads the pairs to a larger capacity. Batches are built
from frames by :func:`mindsponge_mm.data.collate`, which runs the neighbor search; this module
imports nothing of the package.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

# The inputs of every potential's graph (``construct`` and ``energy_forces``), in this order;
# :meth:`Batch.graph_inputs` produces them and ``potentials.base.PotentialBase`` takes them.
GRAPH_INPUTS = (
    "positions", "cell", "pbc", "atomic_numbers", "shifts", "idx_i", "idx_j", "pair_mask", "atom_mask",
    "structure_index",
)
# the float fields among them, cast to the potential's dtype
_FLOAT_INPUTS = frozenset({"positions", "cell", "shifts"})

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

    def graph_inputs(self, dtype="float32") -> tuple[np.ndarray, ...]:
        """The arrays named by :data:`GRAPH_INPUTS`, in that order, as C-contiguous numpy arrays.

        positions [A, 3], cell [S, 3, 3] and shifts [P, 3] are cast to ``dtype`` (Å; shifts are
        integers stored as floats), atomic_numbers [A] to int32; pbc [S, 3], idx_i/idx_j [P],
        pair_mask [P], atom_mask [A] and structure_index [A] are passed as they are.
        """
        dtype = np.dtype(dtype)
        arrays = []
        for name in GRAPH_INPUTS:
            a = getattr(self, name)
            if name in _FLOAT_INPUTS:
                a = a.astype(dtype)
            elif name == "atomic_numbers":
                a = a.astype(np.int32)
            arrays.append(np.ascontiguousarray(a))
        return tuple(arrays)

    def pad_pairs(self, capacity: int) -> "Batch":
        """The same batch with its pair arrays padded to ``capacity``; see :func:`pad_pairs`."""
        return pad_pairs(self, capacity)

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


def pad_pairs(batch: Batch, capacity: int) -> Batch:
    """The same batch with its pair arrays padded to ``capacity`` (≥ the current one).

    New padding pairs follow the batch rules (first padding atom to itself, shift (1, 0, 0)),
    so they contribute nothing. Callers use it to keep one pair capacity across calls.
    """
    p = len(batch.idx_i)
    extra = int(capacity) - p
    if extra < 0:
        raise ValueError(f"pair capacity {capacity} is below the batch's {p}")
    if extra == 0:
        return batch
    pad_atom = int(np.sum(batch.atom_mask))
    pad_shift = np.zeros((extra, 3), batch.shifts.dtype)
    pad_shift[:, 0] = 1
    fill = np.full(extra, pad_atom, batch.idx_i.dtype)
    return batch.replace(
        idx_i=np.concatenate([batch.idx_i, fill]), idx_j=np.concatenate([batch.idx_j, fill]),
        shifts=np.concatenate([batch.shifts, pad_shift]),
        pair_mask=np.concatenate([batch.pair_mask, np.zeros(extra, bool)]))
