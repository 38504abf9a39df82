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
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        scale = np.concatenate(
            [np.full(s, 1.0 / math.sqrt(fan_in[j])) for s, (_, j) in zip(sizes, self.instructions)] or [np.zeros(0)]
        )
        w0 = rng.standard_normal(self.weight_numel)
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
