"""Train/validation/test splits, saved to and reused from an ``.npz`` split file.

A split file makes every run and every rank of a distributed job use the same
frames: the first call writes it, later calls read it back and check it fits.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..io_utils import atomic_path


def split_sizes(n_frames: int, sizes: Sequence[float | int | None]) -> tuple[int, int, int]:
    """Turn (train, val, test) counts or fractions into counts; ``None`` means "the rest"."""
    if len(sizes) != 3:
        raise DataError(f"split sizes must be (train, val, test), got {list(sizes)}")
    if sum(s is None for s in sizes) > 1:
        raise DataError("at most one split size may be None (meaning: the remaining frames)")
    counts: list[int | None] = []
    for s in sizes:
        if s is None:
            counts.append(None)
        elif isinstance(s, bool):
            raise DataError(f"split size {s!r} is neither a count nor a fraction in [0, 1]")
        elif isinstance(s, (float, np.floating)) and 0 <= s <= 1:
            counts.append(int(round(s * n_frames)))
        elif float(s) >= 0 and float(s).is_integer():
            counts.append(int(s))
        else:
            raise DataError(f"split size {s!r} is neither a count nor a fraction in [0, 1]")
    if None in counts:
        counts[counts.index(None)] = n_frames - sum(c for c in counts if c is not None)
    if min(counts) < 0 or sum(counts) > n_frames:
        raise DataError(f"split sizes {list(sizes)} ask for {sum(c for c in counts if c > 0)} frames but the dataset has {n_frames}")
    return tuple(counts)  # type: ignore[return-value]


def split(
    n_frames_or_dataset,
    sizes: Sequence[float | int | None],
    seed: int = 0,
    file: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random (train, val, test) index arrays, reproducible from ``seed``.

    With ``file``: if it exists, its split is loaded and checked against the dataset
    size; otherwise the new split is written there (atomically).
    """
    n = n_frames_or_dataset if isinstance(n_frames_or_dataset, (int, np.integer)) else len(n_frames_or_dataset)
    if file is not None and Path(file).exists():
        return load_split(file, n)
    counts = split_sizes(int(n), sizes)
    order = np.random.default_rng(seed).permutation(int(n))
    bounds = np.cumsum(counts)
    parts = (np.sort(order[: bounds[0]]), np.sort(order[bounds[0]: bounds[1]]), np.sort(order[bounds[1]: bounds[2]]))
    if file is not None:
        save_split(file, parts, int(n), seed)
    return parts


def save_split(file: str | os.PathLike, parts, n_frames: int, seed: int) -> None:
    """Write a split file: train/val/test index arrays plus the dataset size and seed."""
    with atomic_path(file) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, train=parts[0], val=parts[1], test=parts[2], n_frames=n_frames, seed=seed)


def load_split(file: str | os.PathLike, n_frames: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a split file; check it was made for a dataset of ``n_frames`` frames."""
    try:
        with np.load(file, allow_pickle=False) as z:
            parts = (z["train"], z["val"], z["test"])
            stored_n = int(z["n_frames"])
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"{file}: not a valid split file ({err}); delete it to make a new split") from None
    if n_frames is not None and stored_n != n_frames:
        raise DataError(
            f"{file}: split was made for {stored_n} frames but the dataset has {n_frames}; "
            f"delete the split file or point to the matching dataset"
        )
    return parts
