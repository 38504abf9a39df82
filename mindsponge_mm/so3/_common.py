"""Shared helpers of the equivariant layers: dtypes, constants, seeds, reshapes."""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import Tensor, ops

def _np_dtype(dtype):
    if dtype == ms.float64:
        return np.float64
    if dtype == ms.float32:
        return np.float32
    raise ValueError(f"dtype must be ms.float32 or ms.float64, got {dtype}")


def _const(array, dtype) -> Tensor:
    return Tensor(np.asarray(array, dtype=_np_dtype(dtype)), dtype)


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _flatten_leading(x, dim):
    """[..., dim] -> ([B, dim], leading shape)."""
    lead = x.shape[:-1]
    return ops.reshape(x, (-1, dim)), tuple(lead)
