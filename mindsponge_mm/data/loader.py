"""AtomsLoader: iterate a dataset as padded :class:`~mindsponge_mm.batch.Batch` objects.

:meth:`AtomsLoader.shard` splits every batch over data-parallel ranks (:class:`LoaderShard`).
"""
from __future__ import annotations

from typing import Iterator, NamedTuple, Sequence

import numpy as np

from ..batch import Batch
from ..errors import DataError, UserError
from .collate import collate
from .dataset import AtomsDataset
from .transforms import Transform


class AtomsLoader:
    """Batches of ``batch_size`` structures with neighbor pairs within ``cutoff`` (Å).

    Args:
        dataset: the frames.
        batch_size: structures per batch; the structure capacity is ``batch_size + 1``.
        cutoff: neighbor cutoff in Å.
        shuffle: reshuffle every epoch; the order of epoch ``e`` depends only on ``(seed, e)``.
        seed: random seed of the shuffling.
        indices: the frames to use (e.g. a training split); default all.
        transforms: applied to every frame before batching.
        properties: targets to include; default every property of the dataset.
        atom_multiple, pair_multiple: capacities are multiples of these.
        steps_per_octave: geometric bucketing of capacities (see :func:`~mindsponge_mm.batch.round_up`);
            0 rounds to plain multiples.
        drop_last: drop the last incomplete batch.
        dtype: float dtype of positions, cells, shifts and float targets.
    """

    def __init__(
        self,
        dataset: AtomsDataset,
        batch_size: int,
        cutoff: float,
        shuffle: bool = False,
        seed: int = 0,
        indices: Sequence[int] | None = None,
        transforms: Transform | None = None,
        properties: Sequence[str] | None = None,
        atom_multiple: int = 32,
        pair_multiple: int = 256,
        steps_per_octave: int = 4,
        drop_last: bool = False,
        dtype: str = "float32",
        neighbor_backend: str = "auto",
    ):
        if int(batch_size) < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}")
        if not float(cutoff) > 0:
            raise DataError(f"cutoff must be a positive length in Å, got {cutoff}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.cutoff = float(cutoff)
        self.shuffle = shuffle
        self.seed = seed
        self.indices = np.arange(len(dataset)) if indices is None else np.asarray(indices, dtype=np.int64)
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= len(dataset)):
            raise DataError(f"{dataset.source}: split indices reach {self.indices.max()} but the dataset has {len(dataset)} frames")
        self.transforms = transforms
        self.properties = list(dataset.properties) if properties is None else list(properties)
        dataset.require(self.properties, "the loader")
        self.per_atom = {k: v.per_atom for k, v in dataset.properties.items()}
        self.atom_multiple = int(atom_multiple)
        self.pair_multiple = int(pair_multiple)
        self.steps_per_octave = int(steps_per_octave)
        self.drop_last = drop_last
        self.dtype = dtype
        self.neighbor_backend = neighbor_backend
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffling of the next iteration (iteration also advances it by one)."""
        self.epoch = int(epoch)

    def order(self, epoch: int | None = None) -> np.ndarray:
        """Frame indices in the order of ``epoch`` (default: the next one)."""
        epoch = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return self.indices
        rng = np.random.default_rng([self.seed, epoch])
        return self.indices[rng.permutation(len(self.indices))]

    def __iter__(self) -> Iterator[Batch]:
        order = self.order()
        self.epoch += 1
        for start in range(0, len(self), 1):
            chunk = order[start * self.batch_size: (start + 1) * self.batch_size]
            yield self.collate(chunk)

    def shard(self, rank: int, size: int) -> "LoaderShard":
        """Rank ``rank``'s part of every batch when ``size`` data-parallel ranks share each one.

        Rank r takes structures r, r + size, ... of each batch (``batch_size`` must be a multiple of
        ``size``); iterating the shard gives :class:`ShardBatch` items, each with the counts of the
        whole batch that the loss is normalised by. ``shard(0, 1)`` is the whole batch.
        """
        return LoaderShard(self, rank, size)

    def collate(self, frame_indices: Sequence[int], n_structures: int | None = None) -> Batch:
        """The padded batch of the given dataset frames (structure capacity ``n_structures + 1``,
        default ``batch_size + 1``)."""
        frames = self.dataset.frames(frame_indices)
        if self.transforms is not None:
            frames = [self.transforms(f) for f in frames]
        return collate(
            frames,
            self.cutoff,
            n_structures=self.batch_size if n_structures is None else n_structures,
            atom_multiple=self.atom_multiple,
            pair_multiple=self.pair_multiple,
            steps_per_octave=self.steps_per_octave,
            properties=self.properties,
            per_atom=self.per_atom,
            dtype=self.dtype,
            frame_index=frame_indices,
            neighbor_backend=self.neighbor_backend,
        )


class ShardBatch(NamedTuple):
    """One rank's padded batch and the counts of the combined batch of all ranks."""

    batch: Batch
    totals: tuple[int, int, int]  # structures, atoms, periodic structures (with a stress label) of every rank


class LoaderShard:
    """One data-parallel rank's view of an :class:`AtomsLoader` (see :meth:`AtomsLoader.shard`).

    Each batch of ``batch_size`` structures in the loader's order is split: this rank collates
    structures ``rank, rank + size, ...`` into a batch with room for ``batch_size // size``
    structures, and ``totals`` counts the whole batch (structures, atoms, periodic structures when
    the dataset has a stress label, else 0), so that losses normalised by them add up over ranks
    to the single-process loss. Iteration follows the loader's epochs (:meth:`set_epoch`).
    """

    def __init__(self, loader: AtomsLoader, rank: int, size: int):
        self.loader, self.rank, self.size = loader, int(rank), int(size)
        if self.size < 1 or not 0 <= self.rank < self.size:
            raise ValueError(f"rank {rank} is not one of {size} ranks")
        if loader.batch_size % self.size:
            raise UserError(f"data.batch_size = {loader.batch_size} must be a multiple of the "
                            f"{self.size} data-parallel ranks")
        self._periodic = None  # per dataset frame: any periodic axis (computed once, when needed)

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def _n_stress(self, chunk: np.ndarray) -> int:
        ds = self.loader.dataset
        if "stress" not in ds.properties:
            return 0
        if self._periodic is None:
            self._periodic = np.array([bool(np.any(ds[i]["pbc"])) for i in range(len(ds))])
        return int(self._periodic[chunk].sum())

    def __iter__(self) -> Iterator[ShardBatch]:
        loader = self.loader
        order = loader.order()
        loader.epoch += 1
        n_local = loader.batch_size // self.size
        for start in range(len(loader)):
            chunk = order[start * loader.batch_size: (start + 1) * loader.batch_size]
            totals = (len(chunk), int(loader.dataset.n_atoms[chunk].sum()), self._n_stress(chunk))
            yield ShardBatch(loader.collate(chunk[self.rank::self.size], n_structures=n_local), totals)
