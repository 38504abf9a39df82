"""Equivariant MindSpore layers in e3nn's basis: linear, channel-wise tensor product, gate, MACE's
symmetric contraction.

Feature layout ("mul_ir", as e3nn): a tensor of irreps ``128x0e+64x1o`` is ``[..., 128 + 64·3]``;
an entry ``mul x (l, p)`` occupies ``mul·(2l+1)`` consecutive components, copy after copy
(``[mul, 2l+1]`` flattened). :class:`SymmetricContraction` also takes MACE's "channel" layout
``[N, C, Σ(2l+1)]`` (see :func:`to_channels`).

Every cell is built from matmul / batched matmul / gather / reshape / transpose / concat /
elementwise ops only (no einsum), works in ``ms.jit`` graph mode, and is differentiable to second
order (forces, then the force loss w.r.t. weights). ``dtype`` (``ms.float32`` or ``ms.float64``)
is chosen at construction; inputs must have that dtype. Constants are stored in ``dtype`` —
note that MindSpore rounds a Python ``float`` multiplier to float32, so every scale factor here is
folded into a constant Tensor instead.

Initialisation takes ``seed`` (an int, or a numpy ``Generator``): same seed, same weights.
"""
from __future__ import annotations

import functools
import itertools
import math
import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from ..nn.dense import matmul
from .irreps import Irrep, Irreps
from .wigner import wigner_3j

__all__ = [
    "EquivariantLinear",
    "TensorProductUVU",
    "Gate",
    "SymmetricContraction",
    "symmetric_coupling_basis",
    "to_channels",
    "from_channels",
    "ACTIVATIONS",
    "normalize2mom_constant",
]


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


# =============================================================================== EquivariantLinear


class EquivariantLinear(nn.Cell):
    """e3nn's ``o3.Linear``: mixes channels of equal irreps ``(l, p)``, never across irreps.

    ``out[i_out] = Σ_{i_in: ir_in = ir_out} x[i_in] @ W_(i_in,i_out) / sqrt(fan_in(i_out))`` where
    ``fan_in`` is the total multiplicity of the inputs feeding that output entry (e3nn's "element"
    path normalisation). Weights ``W ~ N(0, 1)`` are stored flat in ``self.weight``
    [``weight_numel``] in e3nn's instruction order (inputs outer, outputs inner; each block
    ``[mul_in, mul_out]`` row-major), so e3nn weights load directly.

    Args:
        irreps_in, irreps_out: Irreps (or strings).
        biases: add a learnable bias (initialised to 0) to every ``0e`` output.
        dtype: ``ms.float32`` or ``ms.float64``.
        seed: int or numpy Generator for the initial weights.

    ``construct(x [..., irreps_in.dim]) -> [..., irreps_out.dim]``. Output entries that no input
    can reach are zero.
    """

    def __init__(self, irreps_in, irreps_out, biases: bool = False, dtype=ms.float32, seed=0):
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = Irreps(irreps_out)
        self.dtype = dtype
        ins, outs = list(self.irreps_in), list(self.irreps_out)
        self.instructions = [
            (i, j) for i, a in enumerate(ins) for j, b in enumerate(outs) if a.ir == b.ir and a.mul > 0 and b.mul > 0
        ]
        fan_in = {j: sum(ins[i].mul for i, jj in self.instructions if jj == j) for j in range(len(outs))}
        sizes = [ins[i].mul * outs[j].mul for i, j in self.instructions]
        self.weight_numel = int(sum(sizes))
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        scale = np.concatenate(
            [np.full(s, 1.0 / math.sqrt(fan_in[j])) for s, (_, j) in zip(sizes, self.instructions)] or [np.zeros(0)]
        )
        w0 = _rng(seed).standard_normal(self.weight_numel)
        self.weight = Parameter(_const(w0, dtype), name="weight")
        self._scale = _const(scale, dtype)

        # group by irrep: one matmul per distinct irrep type
        in_slices, out_slices = self.irreps_in.slices(), self.irreps_out.slices()
        self._groups = []  # (l_dim, [(in_slice_start, stop, mul)], [(out index, mul)], weight block layout)
        for ir in sorted({ins[i].ir for i, _ in self.instructions}):
            gin = [i for i, a in enumerate(ins) if a.ir == ir and a.mul > 0]
            gout = [j for j, b in enumerate(outs) if b.ir == ir and b.mul > 0]
            rows = []
            for i in gin:  # weight rows: for each input entry, blocks for each output entry
                cols = []
                for j in gout:
                    k = self.instructions.index((i, j))
                    cols.append((int(offsets[k]), ins[i].mul, outs[j].mul))
                rows.append(cols)
            self._groups.append(
                (
                    ir.dim,
                    [(in_slices[i].start, in_slices[i].stop, ins[i].mul) for i in gin],
                    [(j, outs[j].mul) for j in gout],
                    rows,
                )
            )
        self._out_dims = [b.dim for b in outs]
        self._n_out = len(outs)
        # where each output entry comes from: (group index, start row in the group's output, mul) or None
        src = [None] * len(outs)
        for g, (_, _, gout, _) in enumerate(self._groups):
            start = 0
            for j, mo in gout:
                src[j] = (g, start, mo)
                start += mo
        self._out_src = [(-1, 0, 0) if t is None else t for t in src]
        # biases on 0e outputs
        self._bias_slices = [
            (s.start, s.stop) for s, b in zip(out_slices, outs) if b.ir == Irrep(0, 1) and b.mul > 0 and biases
        ]
        nb = sum(b - a for a, b in self._bias_slices)
        self.use_bias = bool(biases) and nb > 0
        self.bias = Parameter(_const(np.zeros(max(nb, 1)), dtype), name="bias", requires_grad=self.use_bias)

    def construct(self, x):
        x, lead = _flatten_leading(x, self.irreps_in.dim)
        n = x.shape[0]
        w = self.weight * self._scale
        gys = []
        for d, gin, gout, rows in self._groups:
            xs = []
            for a, b, mul in gin:  # [n, mul, d] -> [n, d, mul]
                xs.append(ops.transpose(ops.reshape(x[:, a:b], (n, mul, d)), (0, 2, 1)))
            xg = ops.concat(xs, 2) if len(xs) > 1 else xs[0]
            m_in = xg.shape[2]
            wrows = []
            for cols in rows:
                wc = [ops.reshape(w[o : o + mi * mo], (mi, mo)) for o, mi, mo in cols]
                wrows.append(ops.concat(wc, 1) if len(wc) > 1 else wc[0])
            wg = ops.concat(wrows, 0) if len(wrows) > 1 else wrows[0]
            yg = matmul(ops.reshape(xg, (n * d, m_in)), wg)  # [n*d, Σ mul_out]
            gys.append(ops.transpose(ops.reshape(yg, (n, d, -1)), (0, 2, 1)))  # [n, Σ mul_out, d]
        outs = []
        for j in range(self._n_out):
            g, start, mo = self._out_src[j]
            if g < 0:
                outs.append(ops.zeros((n, self._out_dims[j]), x.dtype))
            else:
                outs.append(ops.reshape(gys[g][:, start : start + mo, :], (n, self._out_dims[j])))
        out = ops.concat(outs, 1) if len(outs) > 1 else outs[0]
        if self.use_bias:
            out = self._add_bias(out)
        return ops.reshape(out, lead + (self.irreps_out.dim,))

    def _add_bias(self, out):
        pieces = []
        pos = 0
        k = 0
        for a, b in self._bias_slices:
            if a > pos:
                pieces.append(out[:, pos:a])
            pieces.append(out[:, a:b] + self.bias[k : k + b - a])
            k += b - a
            pos = b
        if pos < out.shape[1]:
            pieces.append(out[:, pos:])
        return ops.concat(pieces, 1) if len(pieces) > 1 else pieces[0]


# =============================================================================== TensorProductUVU


class TensorProductUVU(nn.Cell):
    """Channel-wise ("uvu") tensor product of NequIP/MACE convolutions, with per-edge path weights.

    Paths: for each entry ``i1 = u x (l1, p1)`` of ``irreps_node``, each entry ``i2 = 1 x (l2, p2)``
    of ``irreps_edge_sh`` and each ``l3 ∈ |l1-l2|..l1+l2`` with ``(l3, p1 p2)`` in
    ``irreps_out_allowed`` (multiplicities there are ignored), in that nested order:

        out_path[e, u, k] = sqrt(α) · w[e, path, u] · Σ_ij C^{l1 l2 l3}_{ijk} x1[e, u, i] x2[e, j]

    with ``C`` = :func:`wigner_3j` and ``α = 2l3+1`` ("component" irrep normalisation, default;
    ``"norm"``: ``(2l1+1)(2l2+1)``; ``"none"``: 1) — e3nn's ``TensorProduct(..., "uvu")`` with
    one output entry per path. Output entries (one ``u x (l3, p3)`` per path) are sorted by
    ``(l, p)`` (stable) exactly like MACE's ``tp_out_irreps_with_instructions``; ``.irreps_out``
    gives them (not simplified), ``.instructions`` lists ``(i1, i2, i_out_sorted, l3, p3)``.

    Weights: ``weights [E, weight_numel]`` supplied at call time (e.g. from a radial MLP); the
    path-``k`` block is ``[:, off_k : off_k + u_k]`` in instruction order (e3nn's layout).

    ``construct(x1 [E, irreps_node.dim], x2 [E, irreps_edge_sh.dim], weights [E, weight_numel])
    -> [E, irreps_out.dim]`` (any leading shape ``[...]`` instead of ``[E]`` works too).

    Implementation: one matmul of ``x2`` with a constant matrix holding all the (scaled) 3j
    tensors, then one batched matmul per node entry, then the per-edge weights.
    """

    def __init__(
        self,
        irreps_node,
        irreps_edge_sh,
        irreps_out_allowed,
        dtype=ms.float32,
        irrep_normalization: str = "component",
    ):
        super().__init__()
        self.irreps_node = Irreps(irreps_node)
        self.irreps_edge_sh = Irreps(irreps_edge_sh)
        allowed = {e.ir for e in Irreps(irreps_out_allowed)}
        if irrep_normalization not in ("component", "norm", "none"):
            raise ValueError("irrep_normalization must be 'component', 'norm' or 'none'")
        for e in self.irreps_edge_sh:
            if e.mul != 1:
                raise ValueError(f"irreps_edge_sh entries must have multiplicity 1, got {e}")
        n1, n2 = list(self.irreps_node), list(self.irreps_edge_sh)
        paths = []  # (i1, i2, l3, p3)
        for i1, a in enumerate(n1):
            if a.mul == 0:
                continue
            for i2, b in enumerate(n2):
                for ir3 in a.ir * b.ir:
                    if ir3 in allowed:
                        paths.append((i1, i2, ir3.l, ir3.p))
        if not paths:
            raise ValueError(f"no allowed path in {self.irreps_node} x {self.irreps_edge_sh} -> {sorted(allowed)}")
        unsorted = Irreps([(n1[i1].mul, l3, p3) for i1, _, l3, p3 in paths])
        self.irreps_out, perm, _ = unsorted.sort()
        self.instructions = [(i1, i2, perm[k], l3, p3) for k, (i1, i2, l3, p3) in enumerate(paths)]
        self.weight_numel = int(sum(n1[i1].mul for i1, _, _, _ in paths))
        self.dtype = dtype

        s1, s2 = self.irreps_node.slices(), self.irreps_edge_sh.slices()
        # constant K [dim2, Σ_paths d1*d3], grouped by i1, column = off_g + i*S_g + off_p + k
        groups = {}
        for k, (i1, i2, l3, p3) in enumerate(paths):
            groups.setdefault(i1, []).append(k)
        cols = []
        self._groups = []  # (x1 start, stop, u, d1, col start, S_g, [(path k, off in group, d3, w_off, out index)])
        col = 0
        w_off = 0
        w_offsets = {}
        for k, (i1, _, _, _) in enumerate(paths):
            w_offsets[k] = w_off
            w_off += n1[i1].mul
        self._path_sections = [n1[i1].mul for i1, _, _, _ in paths]  # weights of path k, in order
        self._x1_sections = [sl.stop - sl.start for sl in s1]
        self._group_entries = sorted(groups)
        for i1 in sorted(groups):
            ks = groups[i1]
            d1 = n1[i1].ir.dim
            d3s = [2 * paths[k][2] + 1 for k in ks]
            sg = int(sum(d3s))
            block = np.zeros((self.irreps_edge_sh.dim, d1, sg))
            items = []
            off = 0
            for k, d3 in zip(ks, d3s):
                _, i2, l3, _ = paths[k]
                l1, l2 = n1[i1].l, n2[i2].l
                c = wigner_3j(l1, l2, l3)  # [d1, d2, d3]
                alpha = {"component": 2 * l3 + 1, "norm": (2 * l1 + 1) * (2 * l2 + 1), "none": 1}[irrep_normalization]
                block[s2[i2].start : s2[i2].stop, :, off : off + d3] = math.sqrt(alpha) * np.transpose(c, (1, 0, 2))
                items.append((k, off, d3, w_offsets[k], self.instructions[k][2]))
                off += d3
            cols.append(block.reshape(self.irreps_edge_sh.dim, d1 * sg))
            self._groups.append((s1[i1].start, s1[i1].stop, n1[i1].mul, d1, col, sg, items))
            col += d1 * sg
        self._K = _const(np.concatenate(cols, axis=1), dtype)
        self._n_out = len(self.irreps_out)
        # output entry j <- (group index, item index)
        src = {}
        for g, grp in enumerate(self._groups):
            for t, item in enumerate(grp[6]):
                src[item[4]] = (g, t)
        self._out_src = [src[j] for j in range(self._n_out)]
        # for scatter_nodes: the weights of group g as [n_g paths, S_g] 0/1 expansion (paths are
        # contiguous in w and grouped by i1 in instruction order)
        self._w_group_sections = []
        self._w_expand = []
        for _, _, u, _, _, sg, items in self._groups:
            self._w_group_sections.append(u * len(items))
            m = np.zeros((len(items), sg))
            for t, (_, off, d3, _, _) in enumerate(items):
                m[t, off:off + d3] = 1.0
            self._w_expand.append(_const(m, dtype))
        order = sorted(range(len(paths)), key=lambda k: k)
        self._groups_contiguous = [k for g in self._groups for k in (it[0] for it in g[6])] == order

    def scatter_nodes(self, x1, x2, weights, index, n_nodes: int):
        """``Σ_{e: index[e] = n} construct(x1, x2, weights)[e]`` -> ``[n_nodes, irreps_out.dim]``.

        The same numbers as scattering :meth:`construct`'s output, with less memory: the per-edge
        weights are applied per node entry group and the edges are summed before the output is
        split into paths and reordered (those steps then act on nodes, not edges). ``x1 [E, ...]``,
        ``x2 [E, ...]``, ``weights [E, weight_numel]``, ``index [E]`` int32.
        """
        if not self._groups_contiguous:
            return ops.unsorted_segment_sum(self.construct(x1, x2, weights), index, n_nodes)
        e = x1.shape[0]
        y = matmul(x2, self._K)
        x1_parts = ops.split(x1, self._x1_sections, 1)
        y_parts = ops.split(y, [grp[3] * grp[5] for grp in self._groups], 1)
        w_groups = ops.split(weights, self._w_group_sections, 1)
        node_parts = []
        for g, (_, _, u, d1, _, sg, items) in enumerate(self._groups):
            yg = ops.reshape(y_parts[g], (e, d1, sg))
            z = ops.bmm(ops.reshape(x1_parts[self._group_entries[g]], (e, u, d1)), yg)  # [E, u, S_g]
            wg = ops.transpose(ops.reshape(w_groups[g], (e, len(items), u)), (0, 2, 1))  # [E, u, n_g]
            w_exp = ops.reshape(matmul(ops.reshape(wg, (e * u, len(items))), self._w_expand[g]), (e, u, sg))
            summed = ops.unsorted_segment_sum(ops.reshape(z * w_exp, (e, u * sg)), index, n_nodes)
            node_parts.append(ops.split(ops.reshape(summed, (n_nodes, u, sg)), [item[2] for item in items], 2))
        blocks = []
        for j in range(self._n_out):
            g, t = self._out_src[j]
            u, d3 = self._groups[g][2], self._groups[g][6][t][2]
            blocks.append(ops.reshape(node_parts[g][t], (n_nodes, u * d3)))
        return ops.concat(blocks, 1) if len(blocks) > 1 else blocks[0]

    def construct(self, x1, x2, weights):
        x1, lead = _flatten_leading(x1, self.irreps_node.dim)
        x2, _ = _flatten_leading(x2, self.irreps_edge_sh.dim)
        w, _ = _flatten_leading(weights, self.weight_numel)
        e = x1.shape[0]
        y = matmul(x2, self._K)  # [E, Σ d1*S_g]
        # ops.split rather than slices throughout: on MindSpore's CPU backend the gradient of a
        # slice is a full-size zero tensor per slice, which multiplies memory in the double backward
        x1_parts = ops.split(x1, self._x1_sections, 1)
        y_parts = ops.split(y, [grp[3] * grp[5] for grp in self._groups], 1)
        w_parts = ops.split(w, self._path_sections, 1)
        zs = []
        for g, (_, _, u, d1, _, sg, items) in enumerate(self._groups):
            yg = ops.reshape(y_parts[g], (e, d1, sg))
            z = ops.bmm(ops.reshape(x1_parts[self._group_entries[g]], (e, u, d1)), yg)  # [E, u, S_g]
            zs.append(ops.split(z, [item[2] for item in items], 2))
        blocks = []
        for j in range(self._n_out):
            g, t = self._out_src[j]
            _, _, u, _, _, _, items = self._groups[g]
            k, _, d3, _, _ = items[t]
            zp = zs[g][t] * ops.expand_dims(w_parts[k], 2)
            blocks.append(ops.reshape(zp, (e, u * d3)))
        out = ops.concat(blocks, 1) if len(blocks) > 1 else blocks[0]
        return ops.reshape(out, lead + (self.irreps_out.dim,))


# =============================================================================== Gate


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
        dtype: ``ms.float32`` or ``ms.float64``.

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
        dtype=ms.float32,
    ):
        super().__init__()
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


# =============================================================================== SymmetricContraction


def _to_channels(x, layout):
    """layout: tuple of (start, stop, mul, dim) per entry."""
    n = x.shape[0]
    parts = []
    for a, b, mul, d in layout:
        parts.append(ops.reshape(x[:, a:b], (n, mul, d)))
    return ops.concat(parts, 2) if len(parts) > 1 else parts[0]


def _from_channels(x, dims):
    """dims: tuple of 2l+1 per entry."""
    n, c = x.shape[0], x.shape[1]
    parts = []
    pos = 0
    for d in dims:
        parts.append(ops.reshape(x[:, :, pos : pos + d], (n, c * d)))
        pos += d
    return ops.concat(parts, 1) if len(parts) > 1 else parts[0]


def _channel_layout(irreps: Irreps):
    return tuple((s.start, s.stop, e.mul, e.ir.dim) for s, e in zip(irreps.slices(), irreps))


def to_channels(x, irreps):
    """MACE's reshape: mul_ir ``[N, irreps.dim]`` (all multiplicities equal to C) -> ``[N, C, Σ(2l+1)]``."""
    return _to_channels(x, _channel_layout(Irreps(irreps)))


def from_channels(x, irreps):
    """Inverse of :func:`to_channels`: ``[N, C, Σ(2l+1)]`` -> ``[N, irreps.dim]`` (mul_ir)."""
    return _from_channels(x, tuple(e.ir.dim for e in Irreps(irreps)))


@functools.lru_cache(maxsize=None)
def _symmetric_basis_cached(coupling: tuple, l_out: int, p_out: int, nu: int) -> np.ndarray:
    dims = [2 * l + 1 for l, _ in coupling]
    offs = np.concatenate([[0], np.cumsum(dims)]).astype(int)
    d, m = int(offs[-1]), 2 * l_out + 1
    cands = []
    for combo in itertools.combinations_with_replacement(range(len(coupling)), nu):
        if int(np.prod([coupling[b][1] for b in combo])) != p_out:
            continue
        ls = [coupling[b][0] for b in combo]
        # coupling trees, left to right: ((l_b1 ⊗ l_b2) -> L2 ⊗ l_b3) -> ... -> l_out
        trees = [(ls[0], np.eye(dims[combo[0]]))]
        for k in range(1, nu):
            rest = sum(ls[k + 1 :])
            new = []
            for big_l, t in trees:
                for l_new in range(abs(big_l - ls[k]), big_l + ls[k] + 1):
                    if abs(l_new - l_out) > rest or (k == nu - 1 and l_new != l_out):
                        continue
                    new.append((l_new, np.tensordot(t, wigner_3j(big_l, ls[k], l_new), axes=([-1], [0]))))
            trees = new
        for big_l, t in trees:
            if big_l != l_out:
                continue
            full = np.zeros([d] * nu + [m])
            full[tuple(slice(offs[b], offs[b + 1]) for b in combo) + (slice(None),)] = t
            sym = sum(np.transpose(full, perm + (nu,)) for perm in itertools.permutations(range(nu)))
            # a path antisymmetric under some swap symmetrises to rounding noise: compare to the
            # norm of the unsymmetrised tree, not to the noise itself
            cands.append((sym.reshape(-1) / math.factorial(nu), np.linalg.norm(t)))
    basis = []
    for v, n0 in cands:  # Gram–Schmidt (twice) in candidate order: deterministic, keeps first directions
        for _ in range(2):
            for b in basis:
                v = v - (b @ v) * b
        if np.linalg.norm(v) > 1e-9 * n0:
            basis.append(v / np.linalg.norm(v))
    if not basis:
        out = np.zeros([d] * nu + [m, 0])
    else:
        out = np.stack(basis, axis=-1).reshape([d] * nu + [m, len(basis)]) * math.sqrt(m)
    out = np.moveaxis(out, nu, 0)  # [m, d, ..., d, K]
    out.setflags(write=False)
    return out


def symmetric_coupling_basis(irreps_in, l_out: int, p_out: int, nu: int) -> np.ndarray:
    """Generalised CG tensors ``U [2l_out+1, D, ..., D (nu times), K]`` of MACE's product basis (float64).

    ``irreps_in`` gives the coupling irreps (their multiplicities are ignored; ``D = Σ(2l+1)``).
    Each ``U[..., k]`` is an equivariant map ``Sym^nu(V) -> V_{l_out, p_out}``: symmetric in its
    ``nu`` input indices, built from left-to-right coupling trees of :func:`wigner_3j`,
    symmetrised over the input copies, then orthogonalised (Gram–Schmidt, in tree order) so
    the ``K`` paths are linearly independent, each with ``Σ U[..., k]² = 2l_out+1`` (like an
    identity: for ``nu = 1`` the path of an input entry ``(l_out, p_out)`` is exactly the
    identity on it).
    """
    coupling = tuple((e.l, e.p) for e in Irreps(irreps_in))
    return _symmetric_basis_cached(coupling, int(l_out), int(p_out), int(nu)).copy()


def _multisets(d: int, nu: int):
    """Sorted index tuples of length nu over range(d), in lexicographic order."""
    return list(itertools.combinations_with_replacement(range(d), nu))


class SymmetricContraction(nn.Cell):
    """MACE's symmetric contraction (product basis, Batatia et al. 2022, eqs. 10–11), per-element weights.

    For every output entry ``C x (l_out, p_out)`` and channel ``c``:

        B[n, c, m] = Σ_{ν=1..correlation} Σ_k W_ν[z_n, k, c]
                     · Σ_{i1..iν} U_ν[m, i1, ..., iν, k] x[n,c,i1]···x[n,c,iν]

    with ``U_ν`` = :func:`symmetric_coupling_basis` (exact 3j, symmetrised, independent paths) and
    ``W_ν`` a weight table ``[n_elements, K_ν, C]`` (``N(0,1)/K_ν`` at init, as MACE) gathered by the
    element index ``z_n`` of each atom.

    Args:
        irreps_in: e.g. ``"32x0e+32x1o+32x2e+32x3o"`` — all multiplicities equal (= C channels).
        irreps_out: e.g. ``"32x0e+32x1o"`` — multiplicities C.
        correlation: body order ν_max (1..3 typical; any int works, cost grows as D^ν/ν!).
        n_elements: rows of the weight tables.
        dtype: ``ms.float32`` or ``ms.float64``.
        seed: int or numpy Generator.
        mode: ``"monomial"`` (default): form the symmetric monomials ``x_i1···x_iν`` (i1≤…≤iν) by
            gathers and products, contract them with ``U_ν`` (folded to the multiset index) in
            one matmul per ν, then apply the gathered weights; ``"successive"``: MACE's scheme —
            per-element tensors ``U_ν·W_ν`` are gathered per atom and contracted with ``x`` one
            index at a time, highest order first (memory ~ N·C·(2l+1)·D^ν: only for small cases;
            kept as an independent check).

    ``construct(x, element)``: ``x`` is ``[N, C, D]`` (MACE's channel layout, see
    :func:`to_channels`) or mul_ir ``[N, irreps_in.dim]``; ``element`` int32 ``[N]`` in
    ``0..n_elements-1``. Returns ``[N, irreps_out.dim]`` (mul_ir).
    """

    def __init__(
        self,
        irreps_in,
        irreps_out,
        correlation: int,
        n_elements: int,
        dtype=ms.float32,
        seed=0,
        mode: str = "monomial",
    ):
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = Irreps(irreps_out)
        muls = {e.mul for e in self.irreps_in} | {e.mul for e in self.irreps_out}
        if len(muls) != 1:
            raise ValueError(
                f"SymmetricContraction needs one multiplicity everywhere, got {self.irreps_in} -> {self.irreps_out}"
            )
        if mode not in ("monomial", "successive"):
            raise ValueError("mode must be 'monomial' or 'successive'")
        if correlation < 1:
            raise ValueError("correlation must be >= 1")
        self.channels = muls.pop()
        self.correlation = int(correlation)
        self.n_elements = int(n_elements)
        self.mode = mode
        self.dtype = dtype
        self.d = sum(e.ir.dim for e in self.irreps_in)
        rng = _rng(seed)
        c, d = self.channels, self.d

        # U_ν for every output entry (numpy, host side)
        self.U = {}  # (o, ν) -> [M, D..D, K]
        weights = []
        self._wkeys = []  # (o, ν, K) for each weight table, in parameter order
        for o, e in enumerate(self.irreps_out):
            total = 0
            for nu in range(1, self.correlation + 1):
                u = symmetric_coupling_basis(self.irreps_in, e.l, e.p, nu)
                self.U[(o, nu)] = u
                k = u.shape[-1]
                total += k
                if k:
                    w = rng.standard_normal((self.n_elements, k, c)) / k
                    weights.append(Parameter(_const(w, dtype), name=f"weights_{o}_{nu}"))
                    self._wkeys.append((o, nu, k))
            if total == 0:
                raise ValueError(f"no symmetric path couples {self.irreps_in} (correlation {correlation}) to {e.ir}")
        self.weights = ParameterTuple(weights)
        self._m_out = [e.ir.dim for e in self.irreps_out]
        self._n_out = len(self.irreps_out)
        self._in_layout = _channel_layout(self.irreps_in)
        self._out_dims = tuple(self._m_out)

        if mode == "monomial":
            self._build_monomial()
        else:
            self._build_successive()

    # ------------------------------------------------------------------ monomial evaluation
    def _build_monomial(self):
        d, dtype = self.d, self.dtype
        # monomial index tables: mono_ν[q] = mono_{ν-1}[parent[q]] * x[last[q]]
        self._mono_idx = []
        prev = {(i,): i for i in range(d)}
        for nu in range(2, self.correlation + 1):
            sets = _multisets(d, nu)
            parent = np.array([prev[t[:-1]] for t in sets], dtype=np.int32)
            last = np.array([t[-1] for t in sets], dtype=np.int32)
            self._mono_idx.append((Tensor(parent, ms.int32), Tensor(last, ms.int32)))
            prev = {t: q for q, t in enumerate(sets)}
        # Ū_ν [n_ν, Σ_o M_o K_oν], columns (o, m, k); weights in parameter order
        key_index = {(o, nu): i for i, (o, nu, _) in enumerate(self._wkeys)}
        ubar, cols_per_nu = [], []
        col_layout = []  # for each ν: list of (o, M, K, parameter index)
        for nu in range(1, self.correlation + 1):
            sets = _multisets(d, nu)
            mult = np.array([math.factorial(nu) / np.prod([math.factorial(t.count(i)) for i in set(t)]) for t in sets])
            blocks, layout = [], []
            for o in range(self._n_out):
                u = self.U[(o, nu)]
                m, k = u.shape[0], u.shape[-1]
                if k == 0:
                    continue
                vals = np.stack([u[(slice(None),) + t] for t in sets])  # [n_ν, M, K]
                blocks.append((vals * mult[:, None, None]).reshape(len(sets), m * k))
                layout.append((o, m, k, key_index[(o, nu)]))
            col_layout.append(layout)
            if blocks:
                ubar.append(_const(np.concatenate(blocks, axis=1), dtype))
            else:
                ubar.append(None)
            cols_per_nu.append(sum(m * k for _, m, k, _ in layout))
        self._ubar = ubar
        self._nu_active = [i for i, u in enumerate(ubar) if u is not None]
        # expansion E [K_tot, T] (weights copied over m) and summation S [T, Σ_o M_o]
        k_tot = sum(k for _, _, k in self._wkeys)
        k_off = np.concatenate([[0], np.cumsum([k for _, _, k in self._wkeys])]).astype(int)
        m_off = np.concatenate([[0], np.cumsum(self._m_out)]).astype(int)
        t_tot = sum(cols_per_nu)
        expand = np.zeros((k_tot, t_tot))
        summ = np.zeros((t_tot, int(m_off[-1])))
        col = 0
        for layout in col_layout:
            for o, m, k, pi in layout:
                for mm in range(m):
                    for kk in range(k):
                        expand[k_off[pi] + kk, col] = 1.0
                        summ[col, m_off[o] + mm] = 1.0
                        col += 1
        self._expand = _const(expand, dtype)
        self._sum = _const(summ, dtype)
        self._k_tot = k_tot

    def _gathered_weights(self, element):
        """[N, K_tot, C] -> [N*C, K_tot]."""
        w_all = ops.concat(list(self.weights), 1) if len(self.weights) > 1 else self.weights[0]
        w = ops.gather(w_all, element, 0)  # [N, K_tot, C]
        n = w.shape[0]
        return ops.reshape(ops.transpose(w, (0, 2, 1)), (n * self.channels, self._k_tot))

    def _monomial(self, x, element):
        n = x.shape[0]
        c = self.channels
        monos = [x]
        cur = x
        for parent, last in self._mono_idx:
            cur = ops.gather(cur, parent, 2) * ops.gather(x, last, 2)
            monos.append(cur)
        bs = []
        for i in self._nu_active:
            mono = monos[i]
            bs.append(matmul(ops.reshape(mono, (n * c, mono.shape[2])), self._ubar[i]))
        b = ops.concat(bs, 1) if len(bs) > 1 else bs[0]  # [N*C, T]
        wexp = matmul(self._gathered_weights(element), self._expand)  # [N*C, T]
        out = matmul(b * wexp, self._sum)  # [N*C, Σ M_o]
        return ops.reshape(out, (n, c, -1))

    # ------------------------------------------------------------------ successive (MACE) evaluation
    def _build_successive(self):
        self._succ = []  # per output: list over ν (high -> low) of (U [M*D^ν, K] const or None, param index)
        key_index = {(o, nu): i for i, (o, nu, _) in enumerate(self._wkeys)}
        for o in range(self._n_out):
            levels = []
            for nu in range(self.correlation, 0, -1):
                u = self.U[(o, nu)]
                k = u.shape[-1]
                if k == 0:
                    levels.append((None, -1, nu))
                else:
                    levels.append((_const(u.reshape(-1, k), self.dtype), key_index[(o, nu)], nu))
            self._succ.append(levels)

    def _successive(self, x, element):
        n, c, d = x.shape[0], self.channels, self.d
        xc = ops.reshape(x, (n * c, d, 1))
        outs = []
        for o in range(self._n_out):
            m = self._m_out[o]
            out = None
            for u, pi, nu in self._succ[o]:
                if u is None:
                    t = ops.zeros((n * c, m * d**nu), x.dtype)
                else:
                    tw = ops.matmul(u, self.weights[pi])  # [n_el, M*D^ν, C] (per element: cheap)
                    tw = ops.gather(tw, element, 0)  # [N, M*D^ν, C]
                    t = ops.reshape(ops.transpose(tw, (0, 2, 1)), (n * c, m * d**nu))
                if out is not None:
                    t = t + out
                t = ops.reshape(t, (n * c, m * d ** (nu - 1), d))
                out = ops.reshape(ops.bmm(t, xc), (n * c, m * d ** (nu - 1)))
            outs.append(ops.reshape(out, (n, c, m)))
        return ops.concat(outs, 2) if len(outs) > 1 else outs[0]

    def construct(self, x, element):
        if x.ndim == 2:
            x = _to_channels(x, self._in_layout)
        else:
            x = x
        if self.mode == "monomial":
            out = self._monomial(x, element)
        else:
            out = self._successive(x, element)
        return _from_channels(out, self._out_dims)
