"""AtomsLoader: iterate a dataset as padded :class:`~mindsponge_mm.batch.Batch` objects."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from ..batch import Batch
from .collate import collate
from ..errors import DataError
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
