"""MACE's symmetric contraction (product basis) and its coupling bases."""
from __future__ import annotations

import functools
import itertools
import math

import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from ..nn.dense import matmul
from ..nn.pair_ops import PairOps
from ._common import _const, check_dtype, check_rng
from .irreps import Irreps
from .wigner import wigner_3j

__all__ = ["SymmetricContraction", "symmetric_coupling_basis", "mace_coupling_basis", "to_channels", "from_channels"]


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


# Triples (sorted) whose Wigner 3j symbol e3nn 0.4.4 (the version mace-torch 0.3 pins) returns with
# the opposite sign to :func:`wigner_3j` (e3nn 0.6's convention, which this package follows). All
# have an odd l1 + l2 + l3; every permutation of a triple flips as well. Checked for l <= 8 against
# e3nn 0.4.4's ``o3.wigner_3j``; beyond that the sign of odd triples is unknown here.
_E3NN_04_FLIPPED = frozenset([
    (1, 2, 2), (1, 3, 3), (1, 4, 4), (1, 5, 5), (1, 6, 6), (1, 7, 7), (1, 8, 8), (3, 4, 6), (3, 5, 7),
    (3, 6, 8), (4, 4, 5), (4, 5, 6), (4, 6, 7), (4, 7, 8), (5, 5, 5), (5, 6, 6), (5, 7, 7), (5, 8, 8),
])
_E3NN_04_CHECKED_L = 8


def wigner_3j_e3nn04(l1: int, l2: int, l3: int) -> np.ndarray:
    """:func:`wigner_3j` with e3nn 0.4.4's sign (see ``_E3NN_04_FLIPPED``); mace-torch's bases use it."""
    c = wigner_3j(l1, l2, l3)
    if (l1 + l2 + l3) % 2 == 1:
        if max(l1, l2, l3) > _E3NN_04_CHECKED_L:
            raise ValueError(f"e3nn 0.4's sign of the 3j symbol ({l1}, {l2}, {l3}) is not tabulated (l > 8)")
        if tuple(sorted((l1, l2, l3))) in _E3NN_04_FLIPPED:
            c = -c
    return c


@functools.lru_cache(maxsize=None)
def _coupling_trees(coupling: tuple, nu: int) -> tuple:
    """All left-to-right coupling trees of ``nu`` copies of the coupling irreps, as mace-torch lists them.

    Returns ``((l, p), T)`` pairs with ``T [2l+1, D, ..., D]`` (``nu`` input axes, float64), stably
    sorted by ``(l, p)`` at every level: the trees of ``nu - 1`` copies (in that order), each
    coupled with every coupling irrep ``l_r`` (in order) to every ``l ∈ |L-l_r|..L+l_r`` (increasing),
    with ``√(2l+1)·C^{l L l_r}`` ("component" normalisation, ``C`` = :func:`wigner_3j_e3nn04`).
    """
    dims = [2 * l + 1 for l, _ in coupling]
    offs = np.concatenate([[0], np.cumsum(dims)]).astype(int)
    d = int(offs[-1])
    if nu == 1:
        eye = np.eye(d)
        return tuple(((l, p), eye[offs[b]:offs[b + 1]]) for b, (l, p) in enumerate(coupling))
    out = []
    for (big_l, big_p), left in _coupling_trees(coupling, nu - 1):
        flat = left.reshape(2 * big_l + 1, -1)
        for b, (l_r, p_r) in enumerate(coupling):
            for l in range(abs(big_l - l_r), big_l + l_r + 1):
                c = wigner_3j_e3nn04(l, big_l, l_r) * math.sqrt(2 * l + 1)  # [out, left, right]
                t = np.einsum("jk,ijl->ikl", flat, c).reshape((2 * l + 1,) + (d,) * (nu - 1) + (2 * l_r + 1,))
                full = np.zeros((2 * l + 1,) + (d,) * nu)
                full[..., offs[b]:offs[b + 1]] = t
                out.append(((l, big_p * p_r), full))
    out.sort(key=lambda item: item[0])  # stable: equal irreps keep their construction order
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _mace_basis_cached(coupling: tuple, l_out: int, p_out: int, nu: int) -> np.ndarray:
    trees = [t for ir, t in _coupling_trees(coupling, nu) if ir == (l_out, p_out)]
    d = sum(2 * l + 1 for l, _ in coupling)
    if not trees:
        out = np.zeros((2 * l_out + 1,) + (d,) * nu + (0,))
    else:
        out = np.stack(trees, axis=-1)
    out.setflags(write=False)
    return out


def mace_coupling_basis(irreps_in, l_out: int, p_out: int, nu: int) -> np.ndarray:
    """mace-torch's product basis ``U [2l_out+1, D, ..., D (nu times), K]`` (float64).

    The same numbers, in the same column order, as mace-torch 0.3's ``U_matrix_real`` (without
    cuequivariance's reduced basis): every coupling tree of :func:`_coupling_trees` that ends in
    ``(l_out, p_out)``, neither symmetrised nor orthogonalised, so ``K`` can exceed the number of
    independent symmetric paths (mace-torch's weight tables have this ``K``). mace-torch drops the
    leading axis when ``l_out = 0``; here it is always present.
    """
    coupling = tuple((e.l, e.p) for e in Irreps(irreps_in))
    return _mace_basis_cached(coupling, int(l_out), int(p_out), int(nu)).copy()


def _symmetrized(u: np.ndarray, nu: int) -> np.ndarray:
    """Mean of ``u [M, D.., D, K]`` over the permutations of its ``nu`` input axes."""
    if nu == 1:
        return u
    perms = list(itertools.permutations(range(1, nu + 1)))
    return sum(np.transpose(u, (0,) + p + (nu + 1,)) for p in perms) / len(perms)


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
        dtype: ``"float32"`` or ``"float64"``.
        rng: numpy Generator the weight tables are drawn from.
        mode: ``"monomial"`` (default): form the symmetric monomials ``x_i1···x_iν`` (i1≤…≤iν) by
            gathers and products, contract them with ``U_ν`` (folded to the multiset index) in
            one matmul per ν, then apply the gathered weights; ``"successive"``: MACE's scheme —
            per-element tensors ``U_ν·W_ν`` are gathered per atom and contracted with ``x`` one
            index at a time, highest order first (memory ~ N·C·(2l+1)·D^ν: only for small cases;
            kept as an independent check).
        basis: ``"orthonormal"`` (default): :func:`symmetric_coupling_basis`, the independent
            symmetric paths; ``"mace"``: :func:`mace_coupling_basis`, mace-torch's coupling trees
            (more, linearly dependent paths; the weight tables have mace-torch's ``K``, so its weights
            load one to one: ``contractions.{o}.weights_max`` is ``ν = correlation``, ``weights.{i}``
            is ``ν = correlation - 1 - i``).
        use_kernel: form the monomials with the fused gather-product kernel of
            :class:`~mindsponge_mm.nn.PairOps` (default: where it is available). Its derivatives are
            kernels too, so the double backward of a force loss runs no full-size gradient masks.

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
        *,
        mode: str = "monomial",
        basis: str = "orthonormal",
        dtype: str = "float32",
        rng: np.random.Generator,
        use_kernel: bool | None = None,
    ):
        super().__init__()
        dtype, rng = check_dtype(dtype), check_rng(rng)
        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = Irreps(irreps_out)
        muls = {e.mul for e in self.irreps_in} | {e.mul for e in self.irreps_out}
        if len(muls) != 1:
            raise ValueError(
                f"SymmetricContraction needs one multiplicity everywhere, got {self.irreps_in} -> {self.irreps_out}"
            )
        if basis not in ("orthonormal", "mace"):
            raise ValueError("basis must be 'orthonormal' or 'mace'")
        self.basis = basis
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
        c = self.channels

        # U_ν for every output entry (numpy, host side)
        self.U = {}  # (o, ν) -> [M, D..D, K]
        weights = []
        self._wkeys = []  # (o, ν, K) for each weight table, in parameter order
        for o, e in enumerate(self.irreps_out):
            total = 0
            for nu in range(1, self.correlation + 1):
                if basis == "mace":
                    u = mace_coupling_basis(self.irreps_in, e.l, e.p, nu)
                else:
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

        self._pair = PairOps(use_kernel)
        if mode == "monomial":
            self._build_monomial()
        else:
            self._build_successive()

    # ------------------------------------------------------------------ monomial evaluation
    def _build_monomial(self):
        d, dtype = self.d, self.dtype
        nus = range(1, self.correlation + 1)
        sets = {nu: _multisets(d, nu) for nu in nus}
        # Ū_ν [n_ν, Σ_o M_o K_oν] (numpy), columns (o, m, k); weights in parameter order
        key_index = {(o, nu): i for i, (o, nu, _) in enumerate(self._wkeys)}
        full, cols_per_nu = {}, []
        reduce = {}  # weight table -> A [rank, K] (basis "mace"): the columns contract A W
        col_layout = []  # for each ν: list of (o, M, K, parameter index)
        for nu in nus:
            mult = np.array([math.factorial(nu) / np.prod([math.factorial(t.count(i)) for i in set(t)])
                             for t in sets[nu]])
            blocks, layout = [], []
            for o in range(self._n_out):
                u = self.U[(o, nu)]
                if self.basis == "mace":  # mace-torch's trees are not symmetric in the input axes
                    u = _symmetrized(u, nu)
                m, k = u.shape[0], u.shape[-1]
                if k == 0:
                    continue
                vals = (np.stack([u[(slice(None),) + t] for t in sets[nu]]) * mult[:, None, None])  # [n_ν, M, K]
                pi = key_index[(o, nu)]
                if self.basis == "mace":
                    # mace-torch's paths are linearly dependent once symmetrised (l_max 3, ν = 3: 23
                    # paths of rank 8 for 0e, 51 of rank 12 for 1o). Contract with an independent
                    # basis of their span and map the weights onto it in the graph (Ū W = B (A W)):
                    # the same function, the same parameters, a quarter of the columns.
                    left, sing, right = np.linalg.svd(vals.reshape(len(sets[nu]) * m, k), full_matrices=False)
                    rank = int((sing > sing[0] * 1e-12).sum()) if sing.size and sing[0] > 0 else 0
                    vals = (left[:, :rank] * sing[:rank]).reshape(len(sets[nu]), m, rank)
                    reduce[pi] = right[:rank]  # [rank, K]
                    k = rank
                blocks.append(vals.reshape(len(sets[nu]), m * k))
                layout.append((o, m, k, pi))
            col_layout.append(layout)
            full[nu] = np.concatenate(blocks, axis=1) if blocks else None
            cols_per_nu.append(sum(m * k for _, m, k, _ in layout))
        # Only the monomials that some output uses are formed, with the lower ones they are built
        # from (MACE, l_max 3, correlation 3, scalar output: 77 of the 816 cubic monomials).
        kept = {1: list(range(d))}
        needed: set = set()
        for nu in range(self.correlation, 1, -1):
            used = set() if full[nu] is None else set(np.flatnonzero(np.abs(full[nu]).sum(1) > 0).tolist())
            kept[nu] = sorted(used | needed)
            position = {t: q for q, t in enumerate(sets[nu - 1])}
            needed = {position[sets[nu][q][:-1]] for q in kept[nu]}
        # index tables: mono_ν[r] = mono_{ν-1}[parent[r]] * x[last[r]] over the kept rows r
        self._mono_idx = []
        self._mono_last_in_both = []  # `last` shifted past the lower level's rows: for [mono_{ν-1}; x]
        for nu in range(2, self.correlation + 1):
            if not kept[nu]:
                break
            row_of = {q: r for r, q in enumerate(kept[nu - 1])}
            lower = {t: q for q, t in enumerate(sets[nu - 1])}
            parent = np.array([row_of[lower[sets[nu][q][:-1]]] for q in kept[nu]], dtype=np.int32)
            last = np.array([sets[nu][q][-1] for q in kept[nu]], dtype=np.int32)
            self._mono_idx.append((Tensor(parent, ms.int32), Tensor(last, ms.int32)))
            self._mono_last_in_both.append(Tensor(last + len(kept[nu - 1]), ms.int32))
        ubar = []
        for nu in nus:
            if full[nu] is None:
                ubar.append(None)
            else:  # Ū_νᵀ [T_ν, kept n_ν]
                ubar.append(_const(full[nu][kept[nu]].T.copy(), dtype))
        self._ubar_t = ubar
        self._nu_active = [i for i, u in enumerate(ubar) if u is not None]
        # expansion E [K_tot, T] (weights copied over m) and summation S [T, Σ_o M_o]
        sizes = [reduce[pi].shape[0] if pi in reduce else k for pi, (_, _, k) in enumerate(self._wkeys)]
        k_tot = sum(sizes)
        k_off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self._reduce = None
        if reduce:  # block-diagonal [Σ rank, Σ K] over the weight tables, in parameter order
            a_all = np.zeros((k_tot, sum(k for _, _, k in self._wkeys)))
            col = 0
            for pi, (_, _, k) in enumerate(self._wkeys):
                a_all[k_off[pi]:k_off[pi + 1], col:col + k] = reduce[pi] if pi in reduce else np.eye(k)
                col += k
            self._reduce = _const(a_all, dtype)
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
        # stored transposed, for the features-first layout of _monomial
        self._expand_t = _const(expand.T.copy(), dtype)  # [T, K_tot]
        self._sum_t = _const(summ.T.copy(), dtype)  # [Σ_o M_o, T]
        self._k_tot = k_tot

    def _features_first(self, x):
        """[D, N*C]: the input with its D = Σ(2l+1) components as rows (from [N, C, D] or mul_ir [N, dim])."""
        if x.ndim == 3:
            n = x.shape[0]
            return ops.reshape(ops.transpose(x, (2, 0, 1)), (self.d, n * self.channels))
        n = x.shape[0]
        c = self.channels
        # ops.split rather than slices: a slice's gradient is a full-size zero tensor on the CPU
        parts = ops.split(x, [stop - start for start, stop, _, _ in self._in_layout], 1)
        rows = [ops.reshape(ops.transpose(ops.reshape(part, (n, c, d)), (2, 0, 1)), (d, n * c))
                for part, (_, _, _, d) in zip(parts, self._in_layout)]
        return ops.concat(rows, 0) if len(rows) > 1 else rows[0]

    def _monomial(self, x, element):
        """Monomials, U contraction and weights with the feature axis leading: ``[M, N*C]`` tensors.

        Every gather then runs along axis 0 (whole rows of N*C numbers), and its gradient is one
        segment sum. With the monomial axis last, each gather and its gradient ran as a strided
        gather plus two transposes of the largest tensor of the model (N·C·D³/6 numbers at
        correlation 3): about a third of MACE's energy+forces time on the CPU."""
        n, c = x.shape[0], self.channels
        xt = self._features_first(x)  # [D, N*C]
        monos = [xt]
        cur = xt
        for nu_minus_2, (parent, last) in enumerate(self._mono_idx):
            if not self._pair.use_kernel:
                cur = ops.gather(cur, parent, 0) * ops.gather(xt, last, 0)  # [n_ν, N*C]
            elif nu_minus_2 == 0:
                cur = self._pair.product(xt, xt, parent, last)
            else:  # the kernel's operands share a row count: both factors come from [mono_{ν-1}; x]
                both = ops.concat([cur, xt], 0)
                cur = self._pair.product(both, both, parent, self._mono_last_in_both[nu_minus_2])
            monos.append(cur)
        bs = [matmul(self._ubar_t[i], monos[i]) for i in self._nu_active]  # [T_ν, N*C]
        b = ops.concat(bs, 0) if len(bs) > 1 else bs[0]  # [T, N*C]
        w_all = ops.concat(list(self.weights), 1) if len(self.weights) > 1 else self.weights[0]  # [n_el, ΣK, C]
        if self._reduce is not None:  # A W on the small per-element table, before the gather
            n_el, k_all = w_all.shape[0], w_all.shape[1]
            w_all = ops.reshape(matmul(self._reduce, ops.reshape(ops.transpose(w_all, (1, 0, 2)), (k_all, n_el * c))),
                                (self._k_tot, n_el, c))
            w_all = ops.transpose(w_all, (1, 0, 2))
        w = ops.reshape(ops.transpose(ops.gather(w_all, element, 0), (1, 0, 2)), (self._k_tot, n * c))
        wexp = matmul(self._expand_t, w)  # [T, N*C]
        out = matmul(self._sum_t, b * wexp)  # [Σ M_o, N*C]
        parts = ops.split(out, list(self._out_dims), 0) if self._n_out > 1 else [out]
        blocks = [ops.reshape(ops.transpose(ops.reshape(part, (m, n, c)), (1, 2, 0)), (n, c * m))
                  for part, m in zip(parts, self._out_dims)]
        return ops.concat(blocks, 1) if len(blocks) > 1 else blocks[0]

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
        if self.mode == "monomial":
            return self._monomial(x, element)
        if x.ndim == 2:
            x = _to_channels(x, self._in_layout)
        return _from_channels(self._successive(x, element), self._out_dims)
