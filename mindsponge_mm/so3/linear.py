"""e3nn's ``o3.Linear`` in MindSpore (see :class:`EquivariantLinear`)."""
from __future__ import annotations

import math

import numpy as np
from mindspore import Parameter, nn, ops

from ..nn.dense import matmul
from ._common import _const, _flatten_leading, check_dtype, check_rng
from .irreps import Irrep, Irreps

__all__ = ["EquivariantLinear"]


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
        dtype: ``"float32"`` or ``"float64"``.
        rng: numpy Generator the initial weights are drawn from.

    ``construct(x [..., irreps_in.dim]) -> [..., irreps_out.dim]``. Output entries that no input
    can reach are zero.
    """

    def __init__(self, irreps_in, irreps_out, biases: bool = False, *, dtype: str = "float32",
                 rng: np.random.Generator):
        super().__init__()
        dtype, rng = check_dtype(dtype), check_rng(rng)
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
        scale = np.concatenate(
            [np.full(s, 1.0 / math.sqrt(fan_in[j])) for s, (_, j) in zip(sizes, self.instructions)] or [np.zeros(0)]
        )
        w0 = rng.standard_normal(self.weight_numel)
        self.weight = Parameter(_const(w0, dtype), name="weight")
        self._scale = _const(scale, dtype)

        out_slices = self.irreps_out.slices()
        # group by irrep: one matmul per distinct irrep type. Inputs and weights are cut with one
        # ops.split each (a slice's gradient is a full-size zero tensor on the CPU).
        in_parts = [i for i, a in enumerate(ins) if a.dim > 0]
        self._in_sections = [ins[i].dim for i in in_parts]
        part_of = {i: k for k, i in enumerate(in_parts)}
        self._w_sections = [int(s) for s in sizes]
        self._groups = []  # (l_dim, [(input part, mul)], [mul of each output entry], [[instruction k per output]])
        for ir in sorted({ins[i].ir for i, _ in self.instructions}):
            gin = [i for i, a in enumerate(ins) if a.ir == ir and a.mul > 0]
            gout = [j for j, b in enumerate(outs) if b.ir == ir and b.mul > 0]
            rows = [[self.instructions.index((i, j)) for j in gout] for i in gin]
            self._groups.append((ir.dim, [(part_of[i], ins[i].mul) for i in gin], [(j, outs[j].mul) for j in gout],
                                 rows))
        self._out_dims = [b.dim for b in outs]
        self._n_out = len(outs)
        # where each output entry comes from: (group index, its position in the group's outputs), or (-1, 0)
        src = [(-1, 0)] * len(outs)
        for g, (_, _, gout, _) in enumerate(self._groups):
            for t, (j, _) in enumerate(gout):
                src[j] = (g, t)
        self._out_src = src
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
        w_blocks = ops.split(w, self._w_sections) if len(self._w_sections) > 1 else (w,)
        parts = ops.split(x, self._in_sections, 1) if len(self._in_sections) > 1 else (x,)
        gys = []
        for d, gin, gout, rows in self._groups:
            xs = []
            for k, mul in gin:  # [n, mul, d] -> [n, d, mul]; scalars need no transpose
                xs.append(parts[k] if d == 1 else ops.transpose(ops.reshape(parts[k], (n, mul, d)), (0, 2, 1)))
            xg = ops.concat(xs, -1) if len(xs) > 1 else xs[0]
            m_in = xg.shape[-1]
            wrows = []
            for (_, mi), ks in zip(gin, rows):
                wc = [ops.reshape(w_blocks[k], (mi, mo)) for k, (_, mo) in zip(ks, gout)]
                wrows.append(ops.concat(wc, 1) if len(wc) > 1 else wc[0])
            wg = ops.concat(wrows, 0) if len(wrows) > 1 else wrows[0]
            yg = matmul(ops.reshape(xg, (n * d, m_in)), wg)  # [n*d, Σ mul_out]
            if d > 1:
                yg = ops.reshape(ops.transpose(ops.reshape(yg, (n, d, -1)), (0, 2, 1)), (n, -1))  # [n, Σ mul_out * d]
            gys.append(ops.split(yg, [mo * d for _, mo in gout], 1) if len(gout) > 1 else (yg,))
        outs = []
        for j in range(self._n_out):
            g, t = self._out_src[j]
            outs.append(ops.zeros((n, self._out_dims[j]), x.dtype) if g < 0 else gys[g][t])
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
