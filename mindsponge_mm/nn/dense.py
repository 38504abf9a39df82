"""Dense layers with reproducible, rank-independent initialisation (numpy RNG from a seed)."""
from __future__ import annotations

import math
from typing import Sequence

import mindspore as ms
import numpy as np
from mindspore import Parameter, nn, ops

_LOG2 = math.log(2.0)
_MATMUL = ops.MatMul()
_SOFTPLUS = ops.Softplus()


def matmul(a, b):
    """a @ b for 2-D ``a`` [m, k] and ``b`` [k, n], through MindSpore's ``MatMul`` primitive.

    Use it for every 2-D product in a model. ``ops.matmul`` (``MatMulExt``) differentiates into an
    explicit ``Transpose`` kernel of the other operand for each gradient, on every call, weights
    included; the primitive's gradient sets the kernel's transpose flags instead. Measured (2 CPU
    cores, 128 features, batch of 10 ethanol, E+F loss with double backward and Adam): PaiNN train
    step 57–63 → 54–61 ms, SchNet 29–41 → 26–31 ms; PaiNN energy+forces on one ethanol 21 fewer
    kernels and 5.9 → 5.4 ms of kernel time.
    """
    return _MATMUL(a, b)


def softplus(x):
    """log(1 + e^x), accurate in float64 and smooth to all orders.

    (MindSpore 2.10's ``ops.softplus`` is only float32-accurate, even on float64 input,
    which breaks finite-difference checks of forces.) Above x = 20 it is x + log(1 + e^-20),
    within 2e-9 of the exact value.
    """
    clipped = ops.minimum(x, 20.0)
    return ops.log1p(ops.exp(clipped)) + (x - clipped)


def shifted_softplus(x):
    """ssp(x) = softplus(x) - log 2 (SchNet's activation; zero at x = 0).

    float32 uses MindSpore's ``Softplus`` primitive (accurate to float32 and stable for large x);
    float64 the exact composite. Not ``ops.softplus``: it wraps the primitive in a threshold test
    (Greater + Select, and two Selects in the gradient, each over the whole [P, F] filter), which
    cost 1.3 of 30 ms in a SchNet train step.
    """
    if x.dtype == ms.float64:
        return softplus(x) - _LOG2
    return _SOFTPLUS(x) - _LOG2


def silu(x):
    """x · sigmoid(x), MindSpore's fused kernel (exact in float64 too)."""
    return ops.silu(x)


def identity(x):
    return x


_ACTIVATIONS = {"ssp": shifted_softplus, "silu": silu, "tanh": ops.tanh, None: identity, "none": identity}


def activation(name):
    """The activation function called ``name`` (``ssp``, ``silu``, ``tanh`` or ``None``)."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of ssp, silu, tanh, none")
    return _ACTIVATIONS[name]


DTYPES = ("float32", "float64")


def check_dtype(dtype) -> str:
    """``dtype`` of a layer constructor: the string ``"float32"`` or ``"float64"`` (the convention of
    every layer in ``nn`` and ``so3``; DEVELOPING.md, "Conventions"). Returns it; anything else is a
    ValueError."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64' (a str), got {dtype!r}")
    return dtype


def check_rng(rng) -> np.random.Generator:
    """``rng`` of a layer constructor: the ``numpy.random.Generator`` its initial weights are drawn
    from (shared by all layers of a model, in construction order). Returns it; anything else is a
    TypeError."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), got {rng!r}")
    return rng


def ms_dtype(dtype: str):
    """The MindSpore dtype of ``"float32"`` or ``"float64"``."""
    return ms.float64 if str(dtype) == "float64" else ms.float32


class Dense(nn.Cell):
    """y = act(x W + b), x [..., n_in] -> y [..., n_out].

    Weights are drawn from ``rng`` (a ``numpy.random.Generator``) with Glorot-uniform
    scaling, so every rank that uses the same seed starts from the same numbers. ``dtype``:
    ``"float32"`` or ``"float64"``.
    """

    def __init__(self, n_in: int, n_out: int, *, bias: bool = True, act=None, zero_init: bool = False,
                 dtype: str = "float32", rng: np.random.Generator):
        super().__init__()
        dtype, rng = check_dtype(dtype), check_rng(rng)
        limit = math.sqrt(6.0 / (n_in + n_out))
        w = np.zeros((n_in, n_out)) if zero_init else rng.uniform(-limit, limit, (n_in, n_out))
        self.weight = Parameter(ms.Tensor(w.astype(dtype)), name="weight")
        self.has_bias = bias
        self.bias = Parameter(ms.Tensor(np.zeros(n_out, dtype)), name="bias") if bias else None
        self.act = activation(act)

    def construct(self, x):
        shape = x.shape
        y = matmul(x.reshape(-1, shape[-1]), self.weight)
        if self.has_bias:
            y = y + self.bias
        return self.act(y.reshape(shape[:-1] + (y.shape[-1],)))


class MLP(nn.Cell):
    """Dense layers ``sizes[0] -> sizes[1] -> ...`` with ``act`` between them (none after the last);
    weights drawn from ``rng`` layer by layer."""

    def __init__(self, sizes: Sequence[int], *, act="silu", last_bias: bool = True, zero_last: bool = False,
                 dtype: str = "float32", rng: np.random.Generator):
        super().__init__()
        layers = []
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = k == len(sizes) - 2
            layers.append(Dense(a, b, bias=(last_bias if last else True), act=None if last else act,
                                zero_init=zero_last and last, dtype=dtype, rng=rng))
        self.layers = nn.CellList(layers)

    def construct(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
