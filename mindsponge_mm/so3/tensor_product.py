"""The channel-wise ("uvu") tensor product of NequIP/MACE convolutions (see :class:`TensorProductUVU`)."""
from __future__ import annotations

import math

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from ..nn.dense import matmul
from ._common import _const, _flatten_leading, check_dtype
from .irreps import Irreps
from .tp_kernel import kernel_available, kernel_ops
from .wigner import wigner_3j

__all__ = ["TensorProductUVU"]


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
    :meth:`convolve` (gather at senders, product, sum at receivers) runs one fused kernel per node
    entry on the CPU (:mod:`~mindsponge_mm.so3.tp_kernel`; ``use_kernel`` defaults to
    :func:`~mindsponge_mm.so3.tp_kernel.kernel_available` at construction).
    """

    def __init__(
        self,
        irreps_node,
        irreps_edge_sh,
        irreps_out_allowed,
        *,
        irrep_normalization: str = "component",
        dtype: str = "float32",
        use_kernel: bool | None = None,
    ):
        super().__init__()
        dtype = check_dtype(dtype)
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
        k_all = np.concatenate(cols, axis=1)
        self._K = _const(k_all, dtype)
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
        self.use_kernel = bool(self._groups_contiguous and (kernel_available() if use_kernel is None else use_kernel))
        if self.use_kernel:
            self._kernels = kernel_ops()
            # per group: the path (within the group) of each output column, and the paths' lengths
            self._col_path = [ms.Tensor(np.repeat(np.arange(len(items)), [it[2] for it in items]).astype(np.int32))
                              for *_, items in self._groups]
            self._path_len = [ms.Tensor(np.array([it[2] for it in items], np.int32)) for *_, items in self._groups]
            self._K_groups = [_const(k_all[:, grp[4]:grp[4] + grp[3] * grp[5]], dtype) for grp in self._groups]

    def _group_products(self, x1, x2):
        """For each node entry group g (one entry of ``x1``, all its paths), the products
        ``Σ_ij C_ijk x1[e, u, i] x2[e, j]`` of all its paths side by side: a list of ``[E, u, S_g]``."""
        e = x1.shape[0]
        y = matmul(x2, self._K)  # [E, Σ d1*S_g]
        # ops.split rather than slices throughout: on MindSpore's CPU backend the gradient of a
        # slice is a full-size zero tensor per slice, which multiplies memory in the double backward
        x1_parts = ops.split(x1, self._x1_sections, 1)
        y_parts = ops.split(y, [grp[3] * grp[5] for grp in self._groups], 1)
        zs = []
        for g, (_, _, u, d1, _, sg, _) in enumerate(self._groups):
            yg = ops.reshape(y_parts[g], (e, d1, sg))
            zs.append(ops.bmm(ops.reshape(x1_parts[self._group_entries[g]], (e, u, d1)), yg))
        return zs

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
        zs = self._group_products(x1, x2)
        w_groups = ops.split(weights, self._w_group_sections, 1)
        node_parts = []
        for g, (_, _, u, _, _, sg, items) in enumerate(self._groups):
            z = zs[g]  # [E, u, S_g]
            wg = ops.transpose(ops.reshape(w_groups[g], (e, len(items), u)), (0, 2, 1))  # [E, u, n_g]
            w_exp = ops.reshape(matmul(ops.reshape(wg, (e * u, len(items))), self._w_expand[g]), (e, u, sg))
            summed = ops.unsorted_segment_sum(ops.reshape(z * w_exp, (e, u * sg)), index, n_nodes)
            node_parts.append(ops.split(ops.reshape(summed, (n_nodes, u, sg)), [item[2] for item in items], 2))
        return self._assemble(node_parts, n_nodes)

    def _assemble(self, node_parts, n_nodes: int):
        """The per-group node sums (``node_parts[g][t]`` = ``[N, u, d3]`` of path item t) in output order."""
        blocks = []
        for j in range(self._n_out):
            g, t = self._out_src[j]
            u, d3 = self._groups[g][2], self._groups[g][6][t][2]
            blocks.append(ops.reshape(node_parts[g][t], (n_nodes, u * d3)))
        return ops.concat(blocks, 1) if len(blocks) > 1 else blocks[0]

    @property
    def weight_sections(self) -> list[int]:
        """Columns of ``weights`` per node entry group, in order: :meth:`convolve` takes the weights
        in these parts (e.g. split off the radial MLP's last layer, so no per-edge array is sliced)."""
        return list(self._w_group_sections)

    def convolve(self, h, x2, weight_parts, src, dst):
        """``Σ_{e: dst[e] = n} construct(h[src[e]], x2[e], weights[e])`` -> ``[A, irreps_out.dim]``.

        ``h [A, irreps_node.dim]`` node features, ``x2 [E, ...]``, ``weight_parts``: the columns of
        ``weights [E, weight_numel]`` split by :attr:`weight_sections` (a tuple of ``[E, n]``),
        ``src``/``dst [E]`` int32 (senders, receivers). One fused kernel per node entry on the CPU;
        otherwise :meth:`scatter_nodes` of the gathered features.
        """
        n_nodes = h.shape[0]
        if not self.use_kernel:
            weights = ops.concat(weight_parts, 1) if len(weight_parts) > 1 else weight_parts[0]
            return self.scatter_nodes(ops.gather(h, src, 0), x2, weights, dst, n_nodes)
        conv = self._kernels[0]
        e = x2.shape[0]
        h_parts = ops.split(h, self._x1_sections, 1)
        node_parts = []
        for g, (_, _, u, d1, _, sg, items) in enumerate(self._groups):
            hg = ops.reshape(h_parts[self._group_entries[g]], (n_nodes, u, d1))
            yg = ops.reshape(matmul(x2, self._K_groups[g]), (e, d1, sg))
            wg = ops.reshape(weight_parts[g], (e, len(items), u))
            summed = conv(hg, yg, wg, self._col_path[g], self._path_len[g], src, dst)  # [A, u, S_g]
            node_parts.append(ops.split(summed, [item[2] for item in items], 2))
        return self._assemble(node_parts, n_nodes)

    def construct(self, x1, x2, weights):
        x1, lead = _flatten_leading(x1, self.irreps_node.dim)
        x2, _ = _flatten_leading(x2, self.irreps_edge_sh.dim)
        w, _ = _flatten_leading(weights, self.weight_numel)
        e = x1.shape[0]
        w_parts = ops.split(w, self._path_sections, 1)
        products = self._group_products(x1, x2)
        zs = []
        for g, (_, _, _, _, _, _, items) in enumerate(self._groups):
            zs.append(ops.split(products[g], [item[2] for item in items], 2))
        blocks = []
        for j in range(self._n_out):
            g, t = self._out_src[j]
            _, _, u, _, _, _, items = self._groups[g]
            k, _, d3, _, _ = items[t]
            zp = zs[g][t] * ops.expand_dims(w_parts[k], 2)
            blocks.append(ops.reshape(zp, (e, u * d3)))
        out = ops.concat(blocks, 1) if len(blocks) > 1 else blocks[0]
        return ops.reshape(out, lead + (self.irreps_out.dim,))
