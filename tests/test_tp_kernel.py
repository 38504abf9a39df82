"""The fused tensor-product convolution (so3.tp_kernel) against MindSpore-op compositions: values,
first and second derivatives under ms.jit, the two-thread path, the switch, and a MACE model built
both ways."""
import mindspore as ms
import numpy as np
import pytest
from ase.build import bulk, molecule
from mindspore import ops

from mindsponge_mm.data import collate
from mindsponge_mm.models import Potential, build
from mindsponge_mm.so3 import TensorProductUVU
from mindsponge_mm.so3.tp_kernel import conv_reference, kernel_available, kernel_ops


def _problem(rng, dtype, n_atoms, n_edges, u, d, paths):
    """Random h [A,U,D], y [E,D,S], w [E,P,U], path [S], path_len [P], src, dst [E]."""
    s = int(sum(paths))
    h = ms.Tensor(rng.normal(size=(n_atoms, u, d)).astype(dtype))
    y = ms.Tensor(rng.normal(size=(n_edges, d, s)).astype(dtype))
    w = ms.Tensor(rng.normal(size=(n_edges, len(paths), u)).astype(dtype))
    path = ms.Tensor(np.repeat(np.arange(len(paths)), paths).astype(np.int32))
    path_len = ms.Tensor(np.array(paths, np.int32))
    src = ms.Tensor(rng.integers(0, n_atoms, n_edges).astype(np.int32))
    dst = ms.Tensor(rng.integers(0, n_atoms, n_edges).astype(np.int32))
    return h, y, w, path, path_len, src, dst


def test_kernel_is_used_on_the_cpu_and_can_be_switched_off(monkeypatch):
    assert kernel_available()
    assert TensorProductUVU("4x0e+4x1o", "1x0e+1x1o", "0e+1o", dtype="float64").use_kernel
    monkeypatch.setenv("MSMM_TP_KERNEL", "0")
    assert not kernel_available()
    assert not TensorProductUVU("4x0e+4x1o", "1x0e+1x1o", "0e+1o", dtype="float64").use_kernel


@pytest.mark.parametrize("dtype, n_atoms, n_edges, u, d, paths", [
    ("float64", 7, 40, 5, 3, (1, 3, 5)),
    ("float32", 200, 2000, 64, 3, (3, 1, 3, 5, 3)),  # E·U·S·(D+1) > 2^21: the two-thread path
])
def test_values_match_the_mindspore_ops(dtype, n_atoms, n_edges, u, d, paths):
    rng = np.random.default_rng(5)
    h, y, w, path, path_len, src, dst = _problem(rng, dtype, n_atoms, n_edges, u, d, paths)
    conv, grad_h, grad_y, grad_w = kernel_ops()
    tol = 1e-12 if dtype == "float64" else 2e-4
    out = conv(h, y, w, path, path_len, src, dst).asnumpy()
    ref = conv_reference(h, y, w, path, src, dst).asnumpy()
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * np.abs(ref).max())
    # the three derivative kernels are the gradients of <g, conv(h, y, w)>
    g = ms.Tensor(rng.normal(size=out.shape).astype(dtype))

    def pairing(h, y, w):
        return ops.reduce_sum(conv_reference(h, y, w, path, src, dst) * g)

    ref_h, ref_y, ref_w = ms.grad(pairing, grad_position=(0, 1, 2))(h, y, w)
    for kernel_value, ref_value in ((grad_h(g, y, w, path, path_len, src, dst), ref_h),
                                    (grad_y(h, g, w, path, path_len, src, dst), ref_y),
                                    (grad_w(h, g, y, path, path_len, src, dst), ref_w)):
        r = ref_value.asnumpy()
        np.testing.assert_allclose(kernel_value.asnumpy(), r, rtol=tol, atol=tol * np.abs(r).max())
    # the result does not depend on how the work was split
    np.testing.assert_array_equal(conv(h, y, w, path, path_len, src, dst).asnumpy(), out)


def _force_loss_gradients(use_kernel: bool):
    """d/dW of (E + Σ F²) for a small energy built from two tensor-product convolutions, float64, ms.jit."""
    rng = np.random.default_rng(0)
    n_atoms, n_edges = 6, 24
    tp = TensorProductUVU("3x0e+3x1o", "1x0e+1x1o+1x2e", "0e+1o+2e", dtype="float64", use_kernel=use_kernel)
    assert tp.use_kernel == use_kernel
    src = ms.Tensor(rng.integers(0, n_atoms, n_edges).astype(np.int32))
    dst = ms.Tensor(rng.integers(0, n_atoms, n_edges).astype(np.int32))
    positions = ms.Tensor(rng.normal(size=(n_atoms, 3)))
    w_node = ms.Tensor(rng.normal(size=(3, 12)))
    w_edge = ms.Tensor(0.5 * rng.normal(size=(9, tp.weight_numel)))
    readout = ms.Tensor(rng.normal(size=(tp.irreps_out.dim, 12)))

    def energy(r, w_node, w_edge):
        h = ops.tanh(ops.matmul(r, w_node))  # [A, 12] = 3x0e + 3x1o (not equivariant; fine for a derivative test)
        vec = ops.gather(r, src, 0) - ops.gather(r, dst, 0)
        sh = ops.concat([ops.ones_like(vec[:, :1]), vec, vec * vec, vec[:, :2] * vec[:, 1:]], 1)  # [E, 9]
        weights = ops.split(ops.tanh(ops.matmul(sh, w_edge)), tp.weight_sections, 1)
        m = tp.convolve(h, sh, weights, src, dst)
        h2 = ops.tanh(ops.matmul(m, readout))
        m2 = tp.convolve(h2, sh, weights, src, dst)  # the same op twice in one graph
        return ops.reduce_sum(ops.tanh(m2))

    def loss(r, w_node, w_edge):
        e, grad = ms.value_and_grad(energy, grad_position=0)(r, w_node, w_edge)
        return e + ops.reduce_sum(grad * grad)

    value, (g1, g2) = ms.jit(ms.value_and_grad(loss, grad_position=(1, 2)))(positions, w_node, w_edge)
    return float(value), g1.asnumpy(), g2.asnumpy()


def test_double_backward_matches_the_mindspore_ops():
    value, g1, g2 = _force_loss_gradients(True)
    ref_value, ref_g1, ref_g2 = _force_loss_gradients(False)
    assert value == pytest.approx(ref_value, rel=1e-12)
    scale = max(np.abs(ref_g1).max(), np.abs(ref_g2).max())
    assert scale > 1e-2  # the check is not trivially passed by zero gradients
    np.testing.assert_allclose(g1, ref_g1, rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(g2, ref_g2, rtol=1e-10, atol=1e-12 * scale)


def test_mace_gives_the_same_results_with_and_without_the_kernel(monkeypatch):
    ethanol, copper = molecule("CH3CH2OH"), bulk("Cu", "fcc", a=3.6, cubic=True)
    ethanol.rattle(0.05, seed=1)
    copper.rattle(0.05, seed=2)
    frames = [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": a.cell[:], "pbc": a.pbc}
              for a in (ethanol, copper)]
    batch = collate(frames, 4.0, dtype="float64")
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv("MSMM_TP_KERNEL", switch)
        monkeypatch.setenv("MSMM_PAIR_KERNEL", switch)  # the symmetric contraction's monomials
        model = build("mace", elements=["H", "C", "O", "Cu"], cutoff=4.0, n_channels=8, l_max=2, correlation=2,
                      n_layers=2, avg_num_neighbors=8.0, dtype="float64", seed=4)
        assert all(layer.conv_tp.use_kernel == (switch == "1") for layer in model.layers)
        assert all(layer.symmetric_contraction._pair.use_kernel == (switch == "1") for layer in model.layers)
        results.append(Potential(model).evaluate(batch))
    for key in ("energy", "forces", "stress"):
        np.testing.assert_allclose(results[0][key], results[1][key], rtol=1e-11, atol=1e-12)
    assert np.abs(results[0]["forces"]).max() > 1e-3
