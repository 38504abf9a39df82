"""Shared helpers of the equivariant layers: dtypes, constants, reshapes."""
from __future__ import annotations

import numpy as np
from mindspore import Tensor, ops

from ..nn.dense import check_dtype, check_rng, ms_dtype

__all__ = ["check_dtype", "check_rng", "_const", "_flatten_leading"]


def _const(array, dtype: str) -> Tensor:
    """A constant Tensor of ``dtype`` (``"float32"`` or ``"float64"``)."""
    return Tensor(np.asarray(array, dtype=dtype), ms_dtype(dtype))


def _flatten_leading(x, dim):
    """[..., dim] -> ([B, dim], leading shape)."""
    lead = x.shape[:-1]
    return ops.reshape(x, (-1, dim)), tuple(lead)
