"""Exponential moving average of the weights, updated inside the compiled train step.

After step t the average is ``ema = d_t · ema + (1 - d_t) · w`` with the warm-up decay
``d_t = min(decay, (1 + t) / (10 + t))`` (small early on, so the average is not dominated
by the random initial weights). Validation and the saved best model use the average;
:meth:`EMA.swapped` puts it into the model temporarily.
"""
from __future__ import annotations

import contextlib

import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, nn, ops


class EMA(nn.Cell):
    """Shadow copies of ``weights`` (a ParameterTuple); ``decay`` in (0, 1)."""

    def __init__(self, weights, decay: float = 0.99):
        super().__init__()
        self.weights = weights
        self.shadow = ParameterTuple(
            Parameter(ms.Tensor(w.asnumpy().copy()), name=f"ema.{k}.{w.name}", requires_grad=False)
            for k, w in enumerate(weights))
        self.decay = float(decay)
        self.count = Parameter(ms.Tensor(np.zeros((), np.float32)), name="ema.count", requires_grad=False)

    def construct(self):
        return self.update()

    def update(self):
        count = self.count + 1.0
        ops.assign(self.count, count)
        d = ops.minimum(count / (count + 9.0), self.decay)  # (1 + t) / (10 + t) with t = count - 1
        for w, s in zip(self.weights, self.shadow):
            dt = d.astype(s.dtype)
            ops.assign(s, dt * s + (1.0 - dt) * w)
        return count

    @contextlib.contextmanager
    def swapped(self):
        """Within the block the model holds the averaged weights; the live ones come back after."""
        live = [w.asnumpy().copy() for w in self.weights]
        for w, s in zip(self.weights, self.shadow):
            w.copy_(ms.Tensor(s.asnumpy().copy()))
        try:
            yield
        finally:
            for w, value in zip(self.weights, live):
                w.copy_(ms.Tensor(value))
