"""mindsponge_mm.so3: e3nn conventions, exact 3j, spherical harmonics, equivariant layers, 2nd derivatives."""
import itertools
import math
import os

os.environ.setdefault("GLOG_v", "3")

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from mindspore import Parameter, Tensor, nn, ops  # noqa: E402

from mindsponge_mm.so3 import (  # noqa: E402
    D_from_matrix,
    ElementLinear,
    EquivariantLinear,
    Gate,
    Irrep,
    Irreps,
    SphericalHarmonics,
    SymmetricContraction,
    TensorProductUVU,
    angles_to_matrix,
    cartesian_generators,
    change_basis_real_to_complex,
    from_channels,
    mace_coupling_basis,
    random_rotation,
    spherical_harmonics,
    spherical_harmonics_np,
    symmetric_coupling_basis,
    to_channels,
    wigner_3j,
    wigner_D,
)
from mindsponge_mm.so3.wigner import clebsch_gordan_complex  # noqa: E402

F64 = ms.float64
TOL = 1e-10


def seeded(seed):
    """The weight generator of a layer (layers take ``rng=``; each layer gets its own here)."""
    return np.random.default_rng(seed)


def t64(a):
    return Tensor(np.asarray(a, dtype=np.float64), F64)


def rotations():
    """A proper and an improper orthogonal matrix."""
    r = random_rotation(np.random.default_rng(11))
    return [r, -r]


# ----------------------------------------------------------------------------------------- irreps


def test_irreps_syntax_and_layout():
    a = Irreps("128x0e+128x1o")
    assert str(a) == "128x0e+128x1o" and Irreps(str(a)) == a and a == "128x0e + 128x1o"
    assert [tuple(e) for e in a] == [(128, 0, 1), (128, 1, -1)]
    assert a.dim == 128 + 3 * 128 and a.lmax == 1 and a.num_irreps == 256
    assert a.slices() == [slice(0, 128), slice(128, 512)]
    assert str(Irreps("0e + 1o+2x1o + 0x2e + 1o").simplify()) == "1x0e+4x1o"
    assert str(Irreps("1e + 1e + 0e + 1e").simplify()) == "2x1e+1x0e+1x1e"  # e3nn: not sorted
    assert str(Irreps("2y+1y+0y")) == "1x2e+1x1o+1x0e"
    assert str(a + "3x2e") == "128x0e+128x1o+3x2e" and str("1x0e" + Irreps("1o")) == "1x0e+1x1o"
    assert str(Irreps.spherical_harmonics(3)) == "1x0e+1x1o+1x2e+1x3o"
    srt, p, inv = Irreps("1o+0e+1e+0o").sort()
    assert str(srt) == "1x0o+1x0e+1x1o+1x1e" and inv == (3, 1, 0, 2) and p == (2, 1, 3, 0)
    assert str(Irreps("1o+0e+1o").regroup()) == "1x0e+2x1o"
    assert Irrep("1o") == Irrep(1, -1) == (1, -1) and Irrep("1o").dim == 3 and str(Irrep(2, 1)) == "2e"
    assert Irrep("1o") * Irrep("1o") == [Irrep("0e"), Irrep("1e"), Irrep("2e")]
    assert "1o" in a and "1e" not in a and a.count("0e") == 128
    assert Irreps("") == Irreps() and Irreps().dim == 0
    for bad in ("1x", "3q", "2x-1e", "x1o"):
        with pytest.raises(ValueError):
            Irreps(bad)
    d = Irreps("2x1o+1x0e").D_from_matrix(-np.eye(3))
    assert np.allclose(d, np.diag([-1.0] * 6 + [1.0]))


# ----------------------------------------------------------------------------------------- 3j


def _float_reference_3j(l1, l2, l3):
    """The same construction in plain float64 (e3nn's recipe), to check the exact arithmetic."""
    c = clebsch_gordan_complex(l1, l2, l3).astype(complex)
    q1, q2, q3 = (change_basis_real_to_complex(l) for l in (l1, l2, l3))
    c = np.einsum("ij,kl,mn,ikn->jlm", q1, q2, np.conj(q3.T), c)
    assert np.abs(c.imag).max() < 1e-13
    return c.real / np.linalg.norm(c.real)


def test_wigner_3j_known_e3nn_values():
    assert np.allclose(wigner_3j(1, 1, 0)[:, :, 0], np.eye(3) / math.sqrt(3), atol=1e-16)
    eps = np.zeros((3, 3, 3))
    for i, j, k in itertools.permutations(range(3)):
        eps[i, j, k] = np.linalg.det(np.eye(3)[[i, j, k]])
    assert np.allclose(wigner_3j(1, 1, 1), eps / math.sqrt(6), atol=1e-16)  # e3nn: +ε/√6
    for l in range(5):
        assert np.allclose(wigner_3j(0, l, l)[0], np.eye(2 * l + 1) / math.sqrt(2 * l + 1), atol=1e-16)
    # l=1 (x, y, z) ⊗ (x, y, z) -> l=2: the xz component (first) and the y-polar one (middle)
    c = wigner_3j(1, 1, 2)
    assert c[0, 2, 0] == pytest.approx(1 / math.sqrt(10), abs=1e-16)
    assert c[1, 1, 2] == pytest.approx(2 / math.sqrt(30), abs=1e-16)
    assert c[0, 0, 2] == pytest.approx(-1 / math.sqrt(30), abs=1e-16)


def test_wigner_3j_exact_vs_float_and_norm():
    for l1, l2 in itertools.product(range(5), repeat=2):
        for l3 in range(abs(l1 - l2), l1 + l2 + 1):
            c = wigner_3j(l1, l2, l3)
            assert c.shape == (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1) and c.dtype == np.float64
            assert abs((c * c).sum() - 1) < 1e-15
            assert np.abs(c - _float_reference_3j(l1, l2, l3)).max() < 1e-14
    assert abs((wigner_3j(6, 6, 6) ** 2).sum() - 1) < 1e-15


def test_wigner_3j_selection_rules_and_permutations():
    assert not wigner_3j(1, 1, 3).any() and not wigner_3j(0, 2, 1).any() and wigner_3j(4, 1, 1).shape == (9, 3, 3)
    # real-basis 3j with l1+l2+l3 odd do not vanish (cross product, ...)
    for ls in [(1, 1, 1), (2, 2, 1), (2, 3, 2), (3, 3, 3)]:
        assert np.abs(wigner_3j(*ls)).max() > 0.1
    # cyclic: unchanged; swap: (-1)^(l1+l2+l3)
    for l1, l2 in itertools.product(range(4), repeat=2):
        for l3 in range(abs(l1 - l2), l1 + l2 + 1):
            c, s = wigner_3j(l1, l2, l3), (-1) ** (l1 + l2 + l3)
            assert np.allclose(wigner_3j(l2, l3, l1), c.transpose(1, 2, 0), atol=1e-15)
            assert np.allclose(wigner_3j(l2, l1, l3), s * c.transpose(1, 0, 2), atol=1e-15)
    # m-selection in the complex basis: <m1 m2|m3> = 0 unless m3 = m1 + m2
    cg = clebsch_gordan_complex(2, 1, 2)
    for a, b, k in zip(*np.nonzero(cg)):
        assert (k - 2) == (a - 2) + (b - 1)


def test_wigner_3j_invariance():
    r = random_rotation(3)
    ds = {l: D_from_matrix(l, r) for l in range(9)}
    for l1, l2 in itertools.product(range(5), repeat=2):
        for l3 in range(abs(l1 - l2), l1 + l2 + 1):
            c = wigner_3j(l1, l2, l3)
            rotated = np.einsum("ijk,il,jm,kn->lmn", c, ds[l1], ds[l2], ds[l3])
            assert np.abs(rotated - c).max() < 1e-13


def test_wigner_3j_cache_returns_copies():
    a = wigner_3j(1, 2, 3)
    a[:] = 0
    assert np.abs(wigner_3j(1, 2, 3)).max() > 0


# ----------------------------------------------------------------------------------------- D


def test_wigner_D_conventions():
    abc = (0.3, 1.1, -0.7)
    r = angles_to_matrix(*abc)
    assert np.allclose(wigner_D(1, *abc), r, atol=1e-14)  # e3nn: D^1 = R, components (x, y, z)
    assert np.allclose(D_from_matrix(1, r), r, atol=1e-14)
    rng = np.random.default_rng(0)
    r1, r2 = random_rotation(rng), random_rotation(rng)
    for l in range(6):
        d = D_from_matrix(l, r1)
        assert np.allclose(d @ d.T, np.eye(2 * l + 1), atol=1e-13)
        assert np.allclose(D_from_matrix(l, r1 @ r2), d @ D_from_matrix(l, r2), atol=1e-13)
        assert np.allclose(D_from_matrix(l, r), wigner_D(l, *abc), atol=1e-13)
        assert np.allclose(D_from_matrix(l, np.eye(3)), np.eye(2 * l + 1), atol=1e-15)
        assert np.allclose(D_from_matrix(l, -np.eye(3)), (-1) ** l * np.eye(2 * l + 1))
        assert np.allclose(D_from_matrix(l, -r1, parity=1), d, atol=1e-13)
        rpi = angles_to_matrix(0.2, math.pi, 0.5)  # a rotation by π: the log is ill-conditioned
        assert np.allclose(D_from_matrix(l, rpi), wigner_D(l, 0.2, math.pi, 0.5), atol=1e-12)
    gen = cartesian_generators(1)
    assert np.allclose(gen[2], [[0, -1, 0], [1, 0, 0], [0, 0, 0]])  # rotation about z
    assert abs(np.linalg.det(random_rotation(5)) - 1) < 1e-14


# ----------------------------------------------------------------------------------------- SH

# e3nn's closed forms (o3.spherical_harmonics, normalization="component") at x = (0.3, -0.5, 0.8)/|x|
E3NN_SH34 = [1.18364715777029, -1.26746735389412, 0.135272824814658, 1.15222321130612, 0.360727532839089,
             -1.45230634300368, 0.638177702550105, 1.2196832539085, -1.79349628241048, 0.645395713622388,
             0.440805832731197, -0.89076166180758, 1.17548222061653, 0.739515921858986, -0.966985245161208,
             0.166551444331066]  # fmt: skip


def test_sh_closed_forms():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((20, 3))
    x, y, z = (v / np.linalg.norm(v, axis=1, keepdims=True)).T
    s3, s5, s15 = math.sqrt(3), math.sqrt(5), math.sqrt(15)
    expected = np.stack(
        [np.ones_like(x), s3 * x, s3 * y, s3 * z,
         s15 * x * z, s15 * x * y, s5 * (y * y - 0.5 * (x * x + z * z)), s15 * y * z, s15 / 2 * (z * z - x * x)],
        axis=1,
    )  # fmt: skip
    assert np.abs(spherical_harmonics_np(2, v) - expected).max() < 1e-14
    assert np.abs(spherical_harmonics_np(4, [0.3, -0.5, 0.8])[9:] - E3NN_SH34).max() < 1e-13
    # the pole (y axis): only the middle (m = 0) component, = sqrt(2l+1)
    pole = spherical_harmonics_np(6, [0.0, 2.0, 0.0])
    for l in range(7):
        block = np.zeros(2 * l + 1)
        block[l] = math.sqrt(2 * l + 1)
        assert np.allclose(pole[l * l : (l + 1) ** 2], block, atol=1e-13)


def test_sh_orthonormality_by_quadrature():
    ct, wt = np.polynomial.legendre.leggauss(12)  # exact in cos θ up to degree 23
    phi = np.arange(24) * (2 * math.pi / 24)  # exact for trigonometric order < 24
    st = np.sqrt(1 - ct**2)
    # polar axis along y, as the basis
    pts = np.stack(
        [st[:, None] * np.sin(phi)[None], np.repeat(ct[:, None], 24, 1), st[:, None] * np.cos(phi)[None]], -1
    )
    w = (wt[:, None] * np.full(24, 2 * math.pi / 24)[None]).reshape(-1)
    y = spherical_harmonics_np(5, pts.reshape(-1, 3))
    gram = (y * w[:, None]).T @ y
    assert np.abs(gram - 4 * math.pi * np.eye(36)).max() < 1e-12
    for l in range(6):
        assert np.allclose((y[:, l * l : (l + 1) ** 2] ** 2).sum(1), 2 * l + 1)


def test_sh_equivariance_parity_and_homogeneity():
    rng = np.random.default_rng(2)
    v = rng.standard_normal((10, 3))
    for r in rotations():
        y, yr = spherical_harmonics_np(6, v), spherical_harmonics_np(6, v @ r.T)
        for l in range(7):
            sl = slice(l * l, (l + 1) ** 2)
            assert np.abs(yr[:, sl] - y[:, sl] @ D_from_matrix(l, r).T).max() < 1e-12
    raw, unit = spherical_harmonics_np(4, v, normalize=False), spherical_harmonics_np(4, v)
    rr = np.linalg.norm(v, axis=1)
    for l in range(5):
        sl = slice(l * l, (l + 1) ** 2)
        assert np.allclose(raw[:, sl], unit[:, sl] * rr[:, None] ** l, atol=1e-12)


def test_sh_recurrence_matches_e3nn_sign():
    """e3nn's test: Y_{l+1} ∥ +C^{(l+1, l, 1)} Y_l x (same direction, positive factor)."""
    x = np.array([0.4, -1.3, 0.7])
    for l in range(6):
        a = spherical_harmonics_np(l + 1, x, normalize=False)[(l + 1) ** 2 :]
        b = np.einsum("ijk,j,k->i", wigner_3j(l + 1, l, 1), spherical_harmonics_np(l, x, normalize=False)[l * l :], x)
        assert np.abs(a / np.linalg.norm(a) - b / np.linalg.norm(b)).max() < 1e-13


def test_sh_mindspore_matches_numpy_and_is_safe_at_zero():
    rng = np.random.default_rng(3)
    v = rng.standard_normal((2, 5, 3))
    v[0, 0] = 0.0
    ref = spherical_harmonics_np(4, v)
    assert ref[0, 0, 0] == 1 and not ref[0, 0, 1:].any()
    out = spherical_harmonics(4, t64(v))
    assert out.shape == (2, 5, 25) and out.dtype == F64
    assert np.abs(out.asnumpy() - ref).max() < 1e-14
    assert np.abs(SphericalHarmonics(4, dtype="float64")(t64(v)).asnumpy() - ref).max() < 1e-14
    out32 = spherical_harmonics(4, Tensor(v, ms.float32))
    assert out32.dtype == ms.float32 and np.abs(out32.asnumpy() - ref).max() < 1e-5
    raw = spherical_harmonics(3, t64(v), normalize=False).asnumpy()
    assert np.abs(raw - spherical_harmonics_np(3, v, normalize=False)).max() < 1e-13


def _fd_grad(f, x, h=1e-6):
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (f(t64(x + e)).asnumpy() - f(t64(x - e)).asnumpy()) / (2 * h)
    return out


def test_sh_second_derivatives_under_jit():
    """grad of Σ Y·c (a "force"), then grad of a function of it, in float64 under ms.jit vs finite differences.

    (PyNative nested grads in MindSpore 2.10 give wrong second derivatives for ReduceSum/reshape/
    broadcasting — independent of this package — so second derivatives are checked compiled, as used.)
    """
    rng = np.random.default_rng(4)
    v = rng.standard_normal((3, 3))
    v[0] = 0.0  # r = 0 must give finite values and derivatives
    c = t64(rng.standard_normal((3, 25)))

    def energy(x):
        return ops.sum(spherical_harmonics(4, x) * c)

    def force(x):
        return -ms.grad(energy)(x)

    def loss(x):
        f = force(x)
        return ops.sum(f * f * f)

    f_jit, g2_jit = ms.jit(force), ms.jit(ms.grad(loss))
    f_val, g2 = f_jit(t64(v)).asnumpy(), g2_jit(t64(v)).asnumpy()
    assert np.isfinite(f_val).all() and np.isfinite(g2).all()
    assert np.abs(f_val[1:] + _fd_grad(energy, v)[1:]).max() < 1e-7
    fd2 = _fd_grad(lambda x: loss(x), v)  # loss needs only first-order grads: fine in PyNative
    assert np.abs(g2[1:] - fd2[1:]).max() < 1e-6 * max(1.0, np.abs(fd2).max())
    assert np.abs(force(t64(v)).asnumpy() - f_val).max() < 1e-12  # PyNative first derivative agrees


# ----------------------------------------------------------------------------------------- layers


def test_equivariant_linear():
    lin = EquivariantLinear("4x0e+3x1o+2x1o+2x2e+1x0o", "3x0e+2x1o+2x2e+1x1e", biases=True, dtype="float64",
                            rng=seeded(1))
    assert lin.weight_numel == 4 * 3 + 3 * 2 + 2 * 2 + 2 * 2
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, lin.irreps_in.dim))
    lin.bias.set_data(t64(rng.standard_normal(3)))
    out = lin(t64(x)).asnumpy()
    for r in rotations():
        d_in, d_out = lin.irreps_in.D_from_matrix(r), lin.irreps_out.D_from_matrix(r)
        assert np.abs(lin(t64(x @ d_in.T)).asnumpy() - out @ d_out.T).max() < TOL
    # e3nn normalisation: 1x1o out = (x_3x1o W_a + x_2x1o W_b)/sqrt(3+2); 1x1e out is unreachable: 0
    w = lin.weight.asnumpy()
    wa, wb = w[12:18].reshape(3, 2), w[18:22].reshape(2, 2)
    xa, xb = x[:, 4:13].reshape(5, 3, 3), x[:, 13:19].reshape(5, 2, 3)
    ref = (np.einsum("nui,uv->nvi", xa, wa) + np.einsum("nui,uv->nvi", xb, wb)) / math.sqrt(5)
    assert np.abs(out[:, 3:9] - ref.reshape(5, 6)).max() < 1e-13
    assert not out[:, -3:].any()
    assert np.allclose(out[:, :3], x[:, :4] @ w[:12].reshape(4, 3) / 2 + lin.bias.asnumpy(), atol=1e-13)
    assert lin(t64(x.reshape(5, 1, -1))).shape == (5, 1, lin.irreps_out.dim)


def test_tensor_product_uvu():
    tp = TensorProductUVU("3x0e+2x1o+2x2e", Irreps.spherical_harmonics(2), "0e+1o+2e+1e", dtype="float64")
    paths = [(i1, i2, l3, p3) for i1, i2, _, l3, p3 in tp.instructions]
    assert paths[:4] == [(0, 0, 0, 1), (0, 1, 1, -1), (0, 2, 2, 1), (1, 0, 1, -1)]
    assert (1, 1, 1, 1) in paths and (1, 1, 0, 1) in paths and (1, 1, 2, 1) in paths  # 1o⊗1o -> 0e, 1e, 2e
    assert tp.weight_numel == sum(tp.irreps_node[i1].mul for i1, *_ in tp.instructions)
    assert tp.irreps_out == tp.irreps_out.sort()[0] and len(tp.irreps_out) == len(tp.instructions)
    rng = np.random.default_rng(6)
    e = 7
    x1, x2 = rng.standard_normal((e, tp.irreps_node.dim)), rng.standard_normal((e, 9))
    w = rng.standard_normal((e, tp.weight_numel))
    out = tp(t64(x1), t64(x2), t64(w)).asnumpy()
    for r in rotations():
        d1, d2, d3 = (i.D_from_matrix(r) for i in (tp.irreps_node, tp.irreps_edge_sh, tp.irreps_out))
        assert np.abs(tp(t64(x1 @ d1.T), t64(x2 @ d2.T), t64(w)).asnumpy() - out @ d3.T).max() < TOL
    # reference: e3nn "uvu" with component normalisation, one output entry per path, sorted outputs
    s1, s2, so = tp.irreps_node.slices(), tp.irreps_edge_sh.slices(), tp.irreps_out.slices()
    off = 0
    for i1, i2, j, l3, _ in tp.instructions:
        u, l1, l2 = tp.irreps_node[i1].mul, tp.irreps_node[i1].l, tp.irreps_edge_sh[i2].l
        a = x1[:, s1[i1]].reshape(e, u, 2 * l1 + 1)
        c = wigner_3j(l1, l2, l3) * math.sqrt(2 * l3 + 1)
        ref = np.einsum("eu,ijk,eui,ej->euk", w[:, off : off + u], c, a, x2[:, s2[i2]])
        assert np.abs(out[:, so[j]] - ref.reshape(e, -1)).max() < 1e-13
        off += u
    # the memory-saving fused form (weights per group, edges summed before the path split)
    index = np.array([0, 2, 2, 1, 0, 3, 2], np.int32)
    fused = tp.scatter_nodes(t64(x1), t64(x2), t64(w), ms.Tensor(index), 4).asnumpy()
    summed = np.zeros((4, out.shape[1]))
    np.add.at(summed, index, out)
    assert np.abs(fused - summed).max() < 1e-13


def test_gate():
    g = Gate("3x0e+1x0o", ["silu", "tanh"], "2x0e+1x0o", ["sigmoid", "tanh"], "2x1o+1x2e", dtype="float64")
    assert str(g.irreps_out) == "3x0e+1x0o+2x1o+1x2o"  # odd gate flips the gated parity (e3nn)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, g.irreps_in.dim))
    out = g(t64(x)).asnumpy()
    for r in rotations():
        d_in, d_out = g.irreps_in.D_from_matrix(r), g.irreps_out.D_from_matrix(r)
        assert np.abs(g(t64(x @ d_in.T)).asnumpy() - out @ d_out.T).max() < TOL
    # values: normalised activations, sigmoid gates
    from mindsponge_mm.so3.layers import normalize2mom_constant

    silu = x[:, :3] / (1 + np.exp(-x[:, :3])) * normalize2mom_constant("silu")
    assert np.allclose(out[:, :3], silu, atol=1e-13)
    gate0 = 1 / (1 + np.exp(-x[:, 4])) * normalize2mom_constant("sigmoid")
    assert np.allclose(out[:, 4:7], x[:, 7:10] * gate0[:, None], atol=1e-13)
    z = np.random.default_rng(0).standard_normal(400000)
    assert np.mean((z / (1 + np.exp(-z)) * normalize2mom_constant("silu")) ** 2) == pytest.approx(1, abs=0.01)
    with pytest.raises(ValueError):
        Gate("1x0o", "silu")  # silu is neither even nor odd
    with pytest.raises(ValueError):
        Gate("1x0e", "silu", "2x0e", "sigmoid", "1x1o")


def _chi(l, th):
    return np.sin((2 * l + 1) * th / 2) / np.sin(th / 2)


def _count_equivariant_symmetric(irreps, lo, po, nu):
    """dim Hom_O(3)(Sym^ν V, V_(lo,po)) from characters (Weyl integration over rotation angles)."""
    n = 4000
    th = (np.arange(n) + 0.5) / n * np.pi
    w = (1 - np.cos(th)) / n
    total = 0.0
    for sgn in (1, -1):  # proper rotations g, improper -g
        def chi_v(k):  # character of V at (±g)^k
            s = sgn**k
            return sum((e.p if s < 0 else 1) * e.mul * _chi(e.l, k * th) for e in irreps)

        c1, c2, c3 = chi_v(1), chi_v(2), chi_v(3)
        sym = {1: c1, 2: (c1**2 + c2) / 2, 3: (c1**3 + 3 * c2 * c1 + 2 * c3) / 6}[nu]
        total += 0.5 * np.sum(sym * (po if sgn < 0 else 1) * _chi(lo, th) * w)
    return int(round(total))


def test_symmetric_coupling_basis():
    irr = Irreps("0e+1o+2e+3o")
    r = random_rotation(8)
    d_in = irr.D_from_matrix(r)
    for lo, po in [(0, 1), (1, -1), (2, 1), (1, 1), (0, -1)]:
        for nu in (1, 2, 3):
            u = symmetric_coupling_basis(irr, lo, po, nu)  # [M, D..D, K]
            assert u.shape[-1] == _count_equivariant_symmetric(irr, lo, po, nu)
            if u.shape[-1] == 0:
                continue
            k = u.shape[-1]
            flat = u.reshape(-1, k)
            assert np.allclose(flat.T @ flat, (2 * lo + 1) * np.eye(k), atol=1e-12)
            for perm in itertools.permutations(range(1, nu + 1)):
                assert np.allclose(np.transpose(u, (0, *perm, nu + 1)), u, atol=1e-14)
            if nu <= 2:
                rot = u
                for ax in range(1, nu + 1):
                    rot = np.moveaxis(np.tensordot(rot, d_in, axes=([ax], [0])), -1, ax)
                lhs = np.tensordot(D_from_matrix(lo, r, po), u, axes=([1], [0]))
                assert np.abs(rot - lhs).max() < 1e-13
    u1 = symmetric_coupling_basis(irr, 2, 1, 1)
    assert np.allclose(u1[:, 4:9, 0], np.eye(5)) and not u1[:, :4].any() and not u1[:, 9:].any()


@pytest.mark.parametrize("mode", ["monomial", "successive"])
def test_symmetric_contraction(mode):
    sc = SymmetricContraction("3x0e+3x1o+3x2e", "3x0e+3x1o+3x2e", 3, 4, dtype="float64", rng=seeded(3), mode=mode)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5, sc.irreps_in.dim))
    el = Tensor(np.array([0, 3, 1, 1, 2]), ms.int32)
    out = sc(t64(x), el).asnumpy()
    assert out.shape == (5, sc.irreps_out.dim)
    for r in rotations():
        d_in, d_out = sc.irreps_in.D_from_matrix(r), sc.irreps_out.D_from_matrix(r)
        assert np.abs(sc(t64(x @ d_in.T), el).asnumpy() - out @ d_out.T).max() < TOL
    # channel layout input gives the same; per-element weights: same features, same element -> same output
    xc = to_channels(t64(x), sc.irreps_in)
    assert np.abs(sc(xc, el).asnumpy() - out).max() < 1e-13
    assert np.abs(from_channels(xc, sc.irreps_in).asnumpy() - x).max() == 0
    x2 = np.repeat(x[:1], 3, 0)
    o2 = sc(t64(x2), Tensor(np.array([1, 1, 2]), ms.int32)).asnumpy()
    assert np.allclose(o2[0], o2[1]) and not np.allclose(o2[0], o2[2])
    # explicit formula for the invariant output of channel 0 (numpy, full tensors)
    xi = to_channels(t64(x), sc.irreps_in).asnumpy()[:, 0]  # [N, D]
    ref = np.zeros(5)
    for (o, nu), u in sc.U.items():
        if o != 0 or u.shape[-1] == 0:
            continue
        w = [p for p in sc.weights if p.name.endswith(f"_{o}_{nu}")][0].asnumpy()
        for n in range(5):
            t = u[0]  # [D]*nu + [K]
            for _ in range(nu):
                t = np.tensordot(xi[n], t, axes=([0], [0]))
            ref[n] += t @ w[el.asnumpy()[n], :, 0]
    assert np.abs(out[:, 0] - ref).max() < 1e-12


def test_symmetric_contraction_modes_agree_float32():
    kw = dict(irreps_in="2x0e+2x1o+2x2e+2x3o", irreps_out="2x0e+2x1o", correlation=3, n_elements=2)
    a = SymmetricContraction(**kw, mode="monomial", rng=seeded(5))
    b = SymmetricContraction(**kw, mode="successive", rng=seeded(5))
    x = Tensor(np.random.default_rng(1).standard_normal((3, a.irreps_in.dim)).astype(np.float32))
    el = Tensor(np.array([0, 1, 1]), ms.int32)
    ya, yb = a(x, el).asnumpy(), b(x, el).asnumpy()
    assert ya.dtype == np.float32 and np.abs(ya - yb).max() < 1e-4 * max(1.0, np.abs(ya).max())



def _sc_energy_and_force_loss(sc, el):
    def energy(x):
        out = sc(x, el)
        return ops.sum(out * out)

    def loss(x):
        g = ms.grad(energy)(x)
        return ops.sum(g * g)

    return energy, loss


def test_symmetric_contraction_kernel_matches_the_mindspore_ops():
    """Monomials through the gather-product kernel: values, gradients and the double backward of a
    force-like loss (Σ (∂E/∂x)²) equal the gather-and-multiply composition in float64."""
    kw = dict(irreps_in="2x0e+2x1o+2x2e+2x3o", irreps_out="2x0e+2x1o", correlation=3, n_elements=2,
              basis="mace", dtype="float64")
    x = t64(np.random.default_rng(4).standard_normal((3, Irreps(kw["irreps_in"]).dim)))
    el = Tensor(np.array([0, 1, 1]), ms.int32)
    results = []
    for use_kernel in (True, False):
        sc = SymmetricContraction(**kw, rng=seeded(6), use_kernel=use_kernel)
        assert sc._pair.use_kernel == use_kernel
        energy, loss = _sc_energy_and_force_loss(sc, el)
        grads = ms.jit(ms.grad(loss, grad_position=0, weights=sc.trainable_params()))(x)
        results.append([sc(x, el).asnumpy(), ms.grad(energy)(x).asnumpy(), grads[0].asnumpy()]
                       + [g.asnumpy() for g in grads[1]])
    for a, b in zip(*results):
        scale = np.abs(b).max()
        assert scale > 1e-3
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12 * scale)


@pytest.mark.parametrize("mode", ["onehot", "gather"])
def test_element_linear(mode):
    """mace-torch's skip_tp: a linear map per element, e3nn's 1/sqrt(mul_in · n_elements), equivariant."""
    lin = ElementLinear("3x0e+2x1o+2x2e", 4, "2x0e+3x1o+1x1e", dtype="float64", rng=seeded(2), mode=mode)
    assert lin.weight_numel == (3 * 2 + 2 * 3) * 4
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, lin.irreps_in.dim))
    z = np.array([0, 3, 1, 1, 2, 0])
    el = Tensor(z, ms.int32)
    out = lin(t64(x), el).asnumpy()
    for r in rotations():
        d_in, d_out = lin.irreps_in.D_from_matrix(r), lin.irreps_out.D_from_matrix(r)
        assert np.abs(lin(t64(x @ d_in.T), el).asnumpy() - out @ d_out.T).max() < TOL
    w = lin.weight.asnumpy()
    w0, w1 = w[:24].reshape(3, 4, 2), w[24:].reshape(2, 4, 3)
    ref0 = np.einsum("nu,unw->nw", x[:, :3], w0[:, z, :]) / math.sqrt(3 * 4)
    ref1 = np.einsum("nui,unw->nwi", x[:, 3:9].reshape(6, 2, 3), w1[:, z, :]) / math.sqrt(2 * 4)
    assert np.abs(out[:, :2] - ref0).max() < 1e-13
    assert np.abs(out[:, 2:11] - ref1.reshape(6, 9)).max() < 1e-13
    assert not out[:, 11:].any()  # 1x1e: no input reaches it
    other = ElementLinear("3x0e+2x1o+2x2e", 4, "2x0e+3x1o+1x1e", dtype="float64", rng=seeded(2),
                          mode="gather" if mode == "onehot" else "onehot")
    assert np.abs(other(t64(x), el).asnumpy() - out).max() < 1e-13


def test_mace_coupling_basis():
    """mace-torch's product basis: every coupling tree (K as mace-torch's weight tables), equivariant;
    the same function space as the orthonormal basis."""
    irr = Irreps("0e+1o+2e+3o")
    assert [mace_coupling_basis(irr, 0, 1, nu).shape[-1] for nu in (1, 2, 3)] == [1, 4, 23]
    assert [mace_coupling_basis(irr, 1, -1, nu).shape[-1] for nu in (1, 2, 3)] == [1, 6, 51]
    assert mace_coupling_basis("0e+1o", 2, 1, 1).shape[-1] == 0
    r = random_rotation(3)
    d_in = irr.D_from_matrix(r)
    for lo, po in [(0, 1), (1, -1), (2, 1)]:
        for nu in (2, 3):
            u = mace_coupling_basis(irr, lo, po, nu)
            rot = u
            for ax in range(1, nu + 1):
                rot = np.moveaxis(np.tensordot(rot, d_in, axes=([ax], [0])), -1, ax)
            lhs = np.tensordot(D_from_matrix(lo, r, po), u, axes=([1], [0]))
            assert np.abs(rot - lhs).max() < 1e-12
            # its symmetric part spans the orthonormal basis' space
            sym = sum(np.transpose(u, (0, *p, nu + 1)) for p in itertools.permutations(range(1, nu + 1)))
            ortho = symmetric_coupling_basis(irr, lo, po, nu)
            a, b = sym.reshape(-1, sym.shape[-1]), ortho.reshape(-1, ortho.shape[-1])
            assert np.linalg.matrix_rank(np.concatenate([a, b], 1), tol=1e-8) == np.linalg.matrix_rank(b, tol=1e-8)


def test_symmetric_contraction_mace_basis_modes_agree():
    kw = dict(irreps_in="2x0e+2x1o+2x2e", irreps_out="2x0e+2x1o", correlation=3, n_elements=3, dtype="float64",
              basis="mace")
    a = SymmetricContraction(**kw, mode="monomial", rng=seeded(7))
    b = SymmetricContraction(**kw, mode="successive", rng=seeded(7))
    x = np.random.default_rng(2).standard_normal((4, a.irreps_in.dim))
    el = Tensor(np.array([0, 2, 1, 2]), ms.int32)
    ya = a(t64(x), el).asnumpy()
    assert np.abs(ya - b(t64(x), el).asnumpy()).max() < 1e-12
    for r in rotations():
        d_in, d_out = a.irreps_in.D_from_matrix(r), a.irreps_out.D_from_matrix(r)
        assert np.abs(a(t64(x @ d_in.T), el).asnumpy() - ya @ d_out.T).max() < TOL

class _MiniPotential(nn.Cell):
    """SH -> uvu TP with radial weights -> segment sum -> symmetric contraction -> linear -> gate -> energy."""

    def __init__(self, n_atoms):
        super().__init__()
        rng = np.random.default_rng(1)
        self.sh = SphericalHarmonics(2, dtype="float64")
        self.emb = Parameter(t64(rng.standard_normal((2, 2))), name="emb")
        self.tp = TensorProductUVU("2x0e", "0e+1o+2e", "0e+1o+2e", dtype="float64")
        self.wr = Parameter(t64(rng.standard_normal((3, self.tp.weight_numel))), name="wr")
        self.mu = t64(np.linspace(0.5, 2.5, 3))
        self.sc = SymmetricContraction(self.tp.irreps_out.regroup(), "2x0e+2x1o", 3, 2, dtype="float64", rng=seeded(2))
        self.lin1 = EquivariantLinear("2x0e+2x1o", "2x0e+2x0e+2x1o", dtype="float64", rng=seeded(3))
        self.gate = Gate("2x0e", "silu", "2x0e", "sigmoid", "2x1o", dtype="float64")
        self.lin2 = EquivariantLinear(self.gate.irreps_out, "1x0e", dtype="float64", rng=seeded(4))
        pairs = [(i, j) for i in range(n_atoms) for j in range(n_atoms) if i != j]
        self.snd = Tensor(np.array([i for i, _ in pairs]), ms.int32)
        self.rcv = Tensor(np.array([j for _, j in pairs]), ms.int32)
        self.n_atoms = n_atoms

    def construct(self, pos, z):
        vec = ops.gather(pos, self.rcv, 0) - ops.gather(pos, self.snd, 0)
        r = ops.sqrt(ops.sum(vec * vec, -1, keepdim=True))
        w = ops.matmul(ops.exp(-((r - self.mu) ** 2)), self.wr)
        x1 = ops.gather(ops.gather(self.emb, z, 0), self.snd, 0)
        a = ops.unsorted_segment_sum(self.tp(x1, self.sh(vec), w), self.rcv, self.n_atoms)
        return ops.sum(self.lin2(self.gate(self.lin1(self.sc(a, z)))))


def test_force_loss_gradients_under_jit():
    """Forces = -dE/dR through every layer, then d(Σ F²)/d(weights) compiled, vs finite differences."""
    net = _MiniPotential(4)
    z = Tensor(np.array([0, 1, 1, 0]), ms.int32)
    pos = np.random.default_rng(0).standard_normal((4, 3)) * 1.2

    def energy(p):
        return net(p, z)

    def force(p):
        return -ms.grad(energy)(p)

    def loss(p):
        f = force(p)
        return ops.sum(f * f)

    force_jit = ms.jit(force)
    f = force_jit(t64(pos)).asnumpy()
    r = random_rotation(7)
    assert np.abs(force_jit(t64(pos @ r.T)).asnumpy() - f @ r.T).max() < TOL
    assert np.abs(f.sum(0)).max() < 1e-12
    params = [p for p in net.trainable_params() if p.name in ("wr", "sc.weights_0_3", "lin1.weight")]
    grads = ms.jit(ms.grad(loss, grad_position=None, weights=params))(t64(pos))
    rng = np.random.default_rng(5)
    for p, g in zip(params, grads):
        d, base, h = rng.standard_normal(p.shape), p.asnumpy().copy(), 1e-5
        # in-place updates: a compiled graph does not see Parameter.set_data (it swaps the storage)
        p.copy_(t64(base + h * d))
        lp = float((force_jit(t64(pos)).asnumpy() ** 2).sum())
        p.copy_(t64(base - h * d))
        lm = float((force_jit(t64(pos)).asnumpy() ** 2).sum())
        p.copy_(t64(base))
        fd, an = (lp - lm) / (2 * h), float((g.asnumpy() * d).sum())
        assert abs(fd - an) < 1e-6 * max(1.0, abs(an)), p.name


def test_layer_constructors_take_a_dtype_string_and_an_rng_generator():
    """The convention of every layer in nn/ and so3/ (DEVELOPING.md): keyword ``dtype`` "float32" or
    "float64" and keyword ``rng``, a numpy Generator; the same generator state gives the same weights."""
    from mindsponge_mm.nn import MLP, Dense

    with pytest.raises(ValueError, match="dtype"):
        EquivariantLinear("2x0e", "2x0e", dtype=F64, rng=seeded(0))
    with pytest.raises(ValueError, match="dtype"):
        Dense(2, 3, dtype="double", rng=seeded(0))
    with pytest.raises(TypeError, match="Generator"):
        ElementLinear("2x0e", 2, "2x0e", rng=0)
    with pytest.raises(TypeError):
        Dense(2, 3, seeded(0))  # rng is keyword-only
    a = MLP([2, 4, 1], dtype="float64", rng=seeded(3))
    b = MLP([2, 4, 1], dtype="float64", rng=seeded(3))
    assert all(np.array_equal(p.asnumpy(), q.asnumpy()) for p, q in zip(a.get_parameters(), b.get_parameters()))
    assert a.layers[0].weight.dtype == F64
