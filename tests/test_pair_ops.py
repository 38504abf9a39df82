"""The fused pair kernels (nn.pair_ops) against MindSpore-op compositions: values, first and second
derivatives under ms.jit, the two-thread path, the backend switch, and whole models built both ways."""
import mindspore as ms
import numpy as np
import pytest
from ase.build import bulk, molecule
from mindspore import ops

from mindsponge_mm.data import collate
from mindsponge_mm.models import Potential, build
from mindsponge_mm.nn.pair_ops import PairOps, conv_reference, kernel_available, product_reference


def _indices(rng, n_atoms, n_pairs):
    return (ms.Tensor(rng.integers(0, n_atoms, n_pairs).astype(np.int32)),
            ms.Tensor(rng.integers(0, n_atoms, n_pairs).astype(np.int32)))


def test_kernels_are_used_on_the_cpu_and_can_be_switched_off(monkeypatch):
    assert kernel_available() and PairOps().use_kernel
    monkeypatch.setenv("MSMM_PAIR_KERNEL", "0")
    assert not kernel_available() and not PairOps().use_kernel


@pytest.mark.parametrize("dtype, n_atoms, n_pairs, n_features", [
    ("float64", 7, 40, 5),
    ("float32", 300, 16384, 128),  # P * F = 2^21: the two-thread path
])
def test_values_match_the_mindspore_ops(dtype, n_atoms, n_pairs, n_features):
    rng = np.random.default_rng(3)
    x, b = (ms.Tensor(rng.normal(size=(n_atoms, n_features)).astype(dtype)) for _ in range(2))
    w = ms.Tensor(rng.normal(size=(n_pairs, n_features)).astype(dtype))
    src, dst = _indices(rng, n_atoms, n_pairs)
    pair = PairOps(use_kernel=True)
    tol = 1e-12 if dtype == "float64" else 1e-4
    conv = ms.jit(pair.conv)(x, w, src, dst).asnumpy()
    np.testing.assert_allclose(conv, conv_reference(x, w, src, dst).asnumpy(), rtol=tol, atol=tol)
    product = ms.jit(pair.product)(x, b, src, dst).asnumpy()
    np.testing.assert_allclose(product, product_reference(x, b, src, dst).asnumpy(), rtol=tol, atol=tol)
    # the result does not depend on how the work was split
    np.testing.assert_array_equal(ms.jit(pair.conv)(x, w, src, dst).asnumpy(), conv)


def _force_loss_gradients(use_kernel: bool):
    """d/dW of (E + Σ F²) for a tiny two-step message-passing energy E(R; W1, W2), float64, in ms.jit."""
    rng = np.random.default_rng(0)
    n_atoms, n_pairs, n_features = 9, 50, 6
    idx_i, idx_j = _indices(rng, n_atoms, n_pairs)
    positions = ms.Tensor(rng.normal(size=(n_atoms, 3)))
    w1, w2 = ms.Tensor(rng.normal(size=(3, n_features))), ms.Tensor(0.5 * rng.normal(size=(n_features, n_features)))
    pair = PairOps(use_kernel=use_kernel)

    def energy(r, w1, w2):
        x = ops.tanh(ops.matmul(r, w1))
        vec = ops.gather(r, idx_j, 0) - ops.gather(r, idx_i, 0)
        filt = ops.matmul(ops.tanh(ops.matmul(vec * vec, w1)), w2)
        y = pair.conv(x, filt, idx_j, idx_i)
        y = pair.conv(ops.tanh(y), filt * pair.product(y, x, idx_i, idx_j), idx_j, idx_i)  # the same op twice
        return ops.reduce_sum(ops.tanh(y))

    def loss(r, w1, w2):
        e, grad = ms.value_and_grad(energy, grad_position=0)(r, w1, w2)
        return e + ops.reduce_sum(grad * grad)

    value, (g1, g2) = ms.jit(ms.value_and_grad(loss, grad_position=(1, 2)))(positions, w1, w2)
    return float(value), g1.asnumpy(), g2.asnumpy()


def test_double_backward_matches_the_mindspore_ops():
    value, g1, g2 = _force_loss_gradients(True)
    ref_value, ref_g1, ref_g2 = _force_loss_gradients(False)
    assert value == pytest.approx(ref_value, rel=1e-12)
    scale = max(np.abs(ref_g1).max(), np.abs(ref_g2).max())
    assert scale > 1.0  # the check is not trivially passed by zero gradients
    np.testing.assert_allclose(g1, ref_g1, rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(g2, ref_g2, rtol=1e-10, atol=1e-12 * scale)


@pytest.mark.parametrize("name", ["schnet", "painn"])
def test_models_give_the_same_results_with_and_without_the_kernels(name, monkeypatch):
    ethanol, copper = molecule("CH3CH2OH"), bulk("Cu", "fcc", a=3.6, cubic=True)
    ethanol.rattle(0.05, seed=1)
    copper.rattle(0.05, seed=2)
    frames = [{"atomic_numbers": a.numbers, "positions": a.positions, "cell": a.cell[:], "pbc": a.pbc}
              for a in (ethanol, copper)]
    batch = collate(frames, 4.0, dtype="float64")
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv("MSMM_PAIR_KERNEL", switch)
        model = build(name, elements=["H", "C", "O", "Cu"], cutoff=4.0, n_features=16, n_interactions=2,
                      dtype="float64", seed=4)
        assert model.pair.use_kernel == (switch == "1")
        results.append(Potential(model).evaluate(batch))
    for key in ("energy", "forces", "stress"):
        np.testing.assert_allclose(results[0][key], results[1][key], rtol=1e-11, atol=1e-12)
    assert np.abs(results[0]["forces"]).max() > 1e-3
