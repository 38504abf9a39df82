"""Gated nonlinearity (e3nn's ``nn.Gate``) and the activation table with ``normalize2mom`` constants."""
from __future__ import annotations

import functools
import math

import numpy as np
from mindspore import nn, ops

from ..nn.dense import matmul
from ._common import _const, _flatten_leading, check_dtype
from .irreps import Irreps

__all__ = ["Gate", "ACTIVATIONS", "normalize2mom_constant"]


def _np_silu(x):
    return x / (1.0 + np.exp(-x))


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_ssp(x):
    return np.logaddexp(0.0, x) - math.log(2.0)


def _np_relu(x):
    return np.maximum(x, 0.0)


# name -> numpy twin (used for the normalize2mom constants and parity checks)
ACTIVATIONS = {
    "silu": _np_silu,
    "swish": _np_silu,
    "sigmoid": _np_sigmoid,
    "tanh": np.tanh,
    "abs": np.abs,
    "relu": _np_relu,
    "ssp": _np_ssp,
}


def _ms_act(name, x):
    """MindSpore activation by (compile-time constant) name; graph-mode safe."""
    if name == "silu" or name == "swish":
        y = x * ops.sigmoid(x)
    elif name == "sigmoid":
        y = ops.sigmoid(x)
    elif name == "tanh":
        y = ops.tanh(x)
    elif name == "abs":
        y = ops.abs(x)
    elif name == "relu":
        y = ops.relu(x)
    elif name == "ssp":
        # softplus(x) - log 2 as -log(2 σ(-x)): exact derivative σ(x) everywhere (MindSpore's float64
        # softplus is only float32-accurate); beyond x = 36 softplus(x) = x to double precision
        xc = ops.minimum(x, ops.ones_like(x) * 36.0)
        y = ops.where(x > 36.0, x - ops.log(ops.ones_like(x) * 2.0), -ops.log(ops.sigmoid(-xc) * 2.0))
    else:
        y = x
    return y


@functools.lru_cache(maxsize=None)
def normalize2mom_constant(name: str) -> float:
    """``1/sqrt(E[f(z)²])`` for ``z ~ N(0,1)`` (e3nn's ``normalize2mom``), by quadrature (not Monte Carlo)."""
    f = ACTIVATIONS[name]
    z = np.linspace(-12.0, 12.0, 240001)
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    y = f(z) ** 2 * pdf
    m2 = float(np.sum((y[1:] + y[:-1]) * 0.5 * (z[1] - z[0])))
    return 1.0 / math.sqrt(m2)


def _act_parity(name: str) -> int:
    """+1 even, -1 odd, 0 neither."""
    f = ACTIVATIONS[name]
    z = np.linspace(0.1, 3.0, 30)
    if np.allclose(f(-z), f(z)):
        return 1
    if np.allclose(f(-z), -f(z)):
        return -1
    return 0


class Gate(nn.Cell):
    """Gated nonlinearity (e3nn's ``nn.Gate``): ``[scalars | gates | gated] -> [act(scalars) | gated·act_g(gates)]``.

    Args:
        irreps_scalars: scalar entries (l = 0) passed through ``act_scalars``.
        act_scalars: activation name (see :data:`ACTIVATIONS`) or None (identity), or one per entry.
        irreps_gates: scalar entries, one scalar per gated copy (``num_irreps`` must match).
        act_gates: activation for the gates (default ``"sigmoid"``), or one per entry.
        irreps_gated: entries multiplied copy-wise by their gate.
        normalize2mom: rescale each activation so that ``E[f(z)²] = 1`` for ``z ~ N(0,1)`` (as e3nn).
        dtype: ``"float32"`` or ``"float64"``.

    ``construct(x [..., scalars.dim + gates.dim + gated.dim]) -> [..., irreps_out.dim]`` with
    ``irreps_out = irreps_scalars' + irreps_gated'``. Parities follow e3nn: an odd scalar stays
    odd through an odd activation and becomes even through an even one; a gated entry's parity
    is multiplied by its gate's output parity. Equivariant because only invariants are acted on.
    """

    def __init__(
        self,
        irreps_scalars,
        act_scalars="silu",
        irreps_gates="",
        act_gates="sigmoid",
        irreps_gated="",
        normalize2mom: bool = True,
        *,
        dtype: str = "float32",
    ):
        super().__init__()
        dtype = check_dtype(dtype)
        self.irreps_scalars = Irreps(irreps_scalars)
        self.irreps_gates = Irreps(irreps_gates)
        self.irreps_gated = Irreps(irreps_gated)
        for name, irr in (("irreps_scalars", self.irreps_scalars), ("irreps_gates", self.irreps_gates)):
            if any(e.l != 0 for e in irr):
                raise ValueError(f"{name} must contain only l = 0 irreps, got {irr}")
        if self.irreps_gates.num_irreps != self.irreps_gated.num_irreps:
            raise ValueError(
                f"{self.irreps_gates.num_irreps} gates for {self.irreps_gated.num_irreps} gated irreps: they must match"
            )

        def per_entry(act, irr):
            acts = list(act) if isinstance(act, (list, tuple)) else [act] * len(irr)
            if len(acts) != len(irr):
                raise ValueError("one activation per entry is required")
            for a in acts:
                if a is not None and a not in ACTIVATIONS:
                    raise ValueError(f"unknown activation {a!r}; choose one of {sorted(ACTIVATIONS)} or None")
            return acts

        self._acts_s = per_entry(act_scalars, self.irreps_scalars)
        self._acts_g = per_entry(act_gates, self.irreps_gates)

        def out_parity(act, p):
            if act is None or p == 1:
                return p
            q = _act_parity(act)
            if q == 0:
                raise ValueError(f"activation {act!r} is neither even nor odd: it cannot act on odd scalars")
            return 1 if q == 1 else -1

        scal_out = Irreps([(e.mul, 0, out_parity(a, e.p)) for e, a in zip(self.irreps_scalars, self._acts_s)])
        gate_par = []
        for e, a in zip(self.irreps_gates, self._acts_g):
            gate_par += [out_parity(a, e.p)] * e.mul
        gated_out, k = [], 0
        for e in self.irreps_gated:  # each copy may get a gate of different parity: split entries if needed
            for _ in range(e.mul):
                gated_out.append((1, e.l, e.p * gate_par[k]))
                k += 1
        self.irreps_out = scal_out + Irreps(gated_out).simplify()
        self.irreps_in = self.irreps_scalars + self.irreps_gates + self.irreps_gated
        self.dtype = dtype

        def const_for(act):
            return 1.0 if (act is None or not normalize2mom) else normalize2mom_constant(act)

        def key(act):
            return "identity" if act is None else act

        self._scal = [
            (s.start, s.stop, key(a), _const(const_for(a), dtype))
            for s, a in zip(self.irreps_scalars.slices(), self._acts_s)
        ]
        ns, ng = self.irreps_scalars.dim, self.irreps_gates.dim
        self._gates = [
            (ns + s.start, ns + s.stop, key(a), _const(const_for(a), dtype))
            for s, a in zip(self.irreps_gates.slices(), self._acts_g)
        ]
        # 0/1 matrix copying gate g onto the 2l+1 components of its gated copy
        expand = np.zeros((max(ng, 1), max(self.irreps_gated.dim, 1)))
        col, g = 0, 0
        for e in self.irreps_gated:
            for _ in range(e.mul):
                expand[g, col : col + e.ir.dim] = 1.0
                g += 1
                col += e.ir.dim
        self._expand = _const(expand, dtype)
        self._gated_start = ns + ng
        self._has_gated = self.irreps_gated.dim > 0
        self._has_scalars = self.irreps_scalars.dim > 0

    def _apply(self, x, act, c):
        return _ms_act(act, x) * c

    def construct(self, x):
        x, lead = _flatten_leading(x, self.irreps_in.dim)
        outs = []
        for a, b, act, c in self._scal:
            outs.append(self._apply(x[:, a:b], act, c))
        if self._has_gated:
            gs = []
            for a, b, act, c in self._gates:
                gs.append(self._apply(x[:, a:b], act, c))
            g = ops.concat(gs, 1) if len(gs) > 1 else gs[0]
            outs.append(x[:, self._gated_start :] * matmul(g, self._expand))
        out = ops.concat(outs, 1) if len(outs) > 1 else outs[0]
        return ops.reshape(out, lead + (self.irreps_out.dim,))
