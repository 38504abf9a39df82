"""An element-dependent equivariant linear map: e3nn's fully connected tensor product with a one-hot.

mace-torch's ``skip_tp`` is ``FullyConnectedTensorProduct(irreps_in, n_elements x 0e, irreps_out)``
applied to node features and the one-hot of each atom's element. Because the second input is a
one-hot scalar, that product is a linear map of the features whose weights depend on the element:

    out[n, j] = Σ_{i: ir_i = ir_j} x[n, i] @ W_(i,j)[:, z_n, :] / sqrt(fan_in(j))

with ``fan_in(j) = Σ_i mul_i · n_elements`` (e3nn's "element" path normalisation; the 3j factor of
``l ⊗ 0 -> l`` cancels against the "component" irrep normalisation). :class:`ElementLinear` computes
that without forming the full tensor product.
"""
from __future__ import annotations

import math

import numpy as np
from mindspore import Parameter, nn, ops

from ..nn.dense import matmul
from ._common import _const, _flatten_leading, check_dtype, check_rng
from .irreps import Irreps

__all__ = ["ElementLinear"]


class ElementLinear(nn.Cell):
    """Linear map of equivariant features with one weight matrix per element (see the module docstring).

    Args:
        irreps_in, irreps_out: Irreps (or strings).
        n_elements: number of elements (rows of the one-hot).
        dtype: ``"float32"`` or ``"float64"``.
        rng: numpy Generator the weights are drawn from (``N(0, 1)`` as e3nn).
        mode: ``"onehot"`` (the features times the one-hot, then one matmul per block: cheap for few
            elements), ``"gather"`` (each atom's weight matrix gathered, then a batched matmul: cheap
            for many elements) or ``None`` (chosen from the sizes).

    ``self.weight`` [``weight_numel``] is e3nn's flat layout: one block per instruction ``(i, j)``
    (inputs outer, outputs inner), each ``[mul_i, n_elements, mul_j]`` row-major, so mace-torch's
    ``skip_tp.weight`` loads as is.

    ``construct(x [N, irreps_in.dim], species [N] int32) -> [N, irreps_out.dim]``; output entries
    that no input reaches are zero.
    """

    def __init__(self, irreps_in, n_elements: int, irreps_out, *, mode=None, dtype: str = "float32",
                 rng: np.random.Generator):
        super().__init__()
        dtype, rng = check_dtype(dtype), check_rng(rng)
        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = Irreps(irreps_out)
        self.n_elements = int(n_elements)
        self.dtype = dtype
        ins, outs = list(self.irreps_in), list(self.irreps_out)
        self.instructions = [(i, j) for i, a in enumerate(ins) for j, b in enumerate(outs)
                             if a.ir == b.ir and a.mul > 0 and b.mul > 0]
        n_el = self.n_elements
        sizes = [ins[i].mul * n_el * outs[j].mul for i, j in self.instructions]
        self.weight_numel = int(sum(sizes))
        self.weight = Parameter(_const(rng.standard_normal(max(self.weight_numel, 1)), dtype), name="weight")
        fan = {j: sum(ins[i].mul * n_el for i, jj in self.instructions if jj == j) for j in range(len(outs))}
        if mode is None:
            widest = max([b.mul for b in outs] or [1])
            mode = "gather" if n_el * max([a.ir.dim for a in ins] or [1]) > widest else "onehot"
        if mode not in ("onehot", "gather"):
            raise ValueError("mode must be 'onehot', 'gather' or None")
        self.mode = mode
        # inputs and weights are cut with one ops.split each (a slice's gradient is a full-size zero
        # tensor on the CPU); per output entry: [(weight block k, input part, mul_in)], mul_out, dim, 1/sqrt(fan_in)
        in_parts = [i for i, a in enumerate(ins) if a.dim > 0]
        self._in_sections = [ins[i].dim for i in in_parts]
        self._w_sections = [int(v) for v in sizes] + ([] if sizes else [1])
        part_of = {i: k for k, i in enumerate(in_parts)}
        self._blocks = []
        for j, b in enumerate(outs):
            items = [(k, part_of[i], ins[i].mul) for k, (i, jj) in enumerate(self.instructions) if jj == j]
            scale = _const(1.0 / math.sqrt(fan[j]), dtype) if items else None
            self._blocks.append((items, b.mul, b.ir.dim, scale))
        self._eye = _const(np.eye(n_el), dtype)

    def construct(self, x, species):
        x, lead = _flatten_leading(x, self.irreps_in.dim)
        n = x.shape[0]
        n_el = self.n_elements
        onehot = ops.gather(self._eye, species, 0)  # [N, n_el]
        oh = ops.expand_dims(ops.expand_dims(onehot, 1), 1)  # [N, 1, 1, n_el]
        parts = ops.split(x, self._in_sections, 1) if len(self._in_sections) > 1 else (x,)
        w_blocks = ops.split(self.weight, self._w_sections) if len(self._w_sections) > 1 else (self.weight,)
        outs = []
        for items, mo, d, scale in self._blocks:
            if not items:
                outs.append(ops.zeros((n, mo * d), x.dtype))
                continue
            acc = None
            for k, part, mi in items:
                xt = ops.transpose(ops.reshape(parts[part], (n, mi, d)), (0, 2, 1))  # [N, d, mi]
                w = ops.reshape(w_blocks[k], (mi, n_el, mo))
                if self.mode == "onehot":
                    xo = ops.reshape(ops.expand_dims(xt, 3) * oh, (n * d, mi * n_el))
                    y = ops.reshape(matmul(xo, ops.reshape(w, (mi * n_el, mo))), (n, d, mo))
                else:
                    wg = ops.gather(ops.transpose(w, (1, 0, 2)), species, 0)  # [N, mi, mo]
                    y = ops.bmm(xt, wg)
                acc = y if acc is None else acc + y
            outs.append(ops.reshape(ops.transpose(acc * scale, (0, 2, 1)), (n, mo * d)))
        out = ops.concat(outs, 1) if len(outs) > 1 else outs[0]
        return ops.reshape(out, lead + (self.irreps_out.dim,))
