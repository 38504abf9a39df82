"""The fixed-capacity NeighborList Cell (overflow, Verlet skin, graph mode), differentiable distances,
and the kernel build cache."""
import mindspore as ms
import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list
from mindspore import ops

from mindsponge_mm.errors import UserError
from mindsponge_mm.neighbors import NeighborList, NeighborListOverflow, neighbor_list

BACKENDS = ["cpu", "mindspore"]


def pair_set(i, j, s):
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist(), map(tuple, np.asarray(s).astype(int).tolist())))


@pytest.fixture(scope="module")
def copper():
    atoms = bulk("Cu", "fcc", a=3.6) * (3, 3, 3)
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + 0.08 * np.random.default_rng(0).uniform(-1, 1, (3, 3))), scale_atoms=True)
    atoms.rattle(0.05, seed=3)
    return atoms


def tensors(atoms, positions=None):
    r = atoms.positions if positions is None else positions
    return ms.Tensor(r.astype(np.float32)), ms.Tensor(atoms.cell[:][None].astype(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cell_overflow_is_reported_and_recovered(backend, copper):
    small = NeighborList(4.0, 50, copper.cell[:], copper.pbc, len(copper), backend=backend)
    i, j, s, mask, count, overflow = small(*tensors(copper))
    expected = pair_set(*ase_neighbor_list("ijS", copper, 4.0))
    assert bool(overflow.asnumpy()) and int(count.asnumpy()) == len(expected)
    with pytest.raises(NeighborListOverflow, match=f"{len(expected)} pairs within 4 Å but capacity is 50"):
        small.check(count, overflow)
    bigger = small.resized(int(count.asnumpy()) + 10)
    i, j, s, mask, count, overflow = [x.asnumpy() for x in bigger(*tensors(copper))]
    assert not overflow and mask.sum() == len(expected)
    assert pair_set(i[mask], j[mask], s[mask]) == expected
    bigger.check(count, overflow)


@pytest.mark.parametrize("backend", BACKENDS)
def test_skin_rebuilds_only_when_needed_and_pairs_stay_identical(backend, copper):
    cutoff, skin = 3.0, 0.6
    nl = NeighborList(cutoff, 6000, copper.cell[:], copper.pbc, len(copper), skin=skin, backend=backend)
    step = ms.jit(nl.construct)
    rng = np.random.default_rng(4)
    positions = copper.positions.copy()
    builds = []
    for k in range(12):
        positions = positions + rng.normal(0, 0.04, positions.shape)  # ~0.07 Å per step per atom
        r, c = tensors(copper, positions)
        i, j, s, mask, count, overflow = step(r, c)
        within = nl.within_cutoff(r, c, i, j, s, mask).asnumpy()
        i, j, s = i.asnumpy(), j.asnumpy(), s.asnumpy()
        fresh = neighbor_list(positions.astype(np.float32), copper.cell[:], copper.pbc, cutoff)
        assert pair_set(i[within], j[within], s[within]) == pair_set(*fresh)
        assert not bool(overflow.asnumpy())
        builds.append(int(nl.n_builds.asnumpy()))
    assert builds[0] == 1
    assert 1 < builds[-1] < 12, builds  # rebuilt sometimes, not every step


def test_skin_rebuild_on_cell_change(copper):
    nl = NeighborList(3.0, 6000, copper.cell[:], copper.pbc, len(copper), skin=0.5, backend="cpu")
    r, c = tensors(copper)
    nl(r, c)
    nl(r, ms.Tensor((copper.cell[:] * 1.0005)[None].astype(np.float32)))
    assert int(nl.n_builds.asnumpy()) == 1  # a tiny strain stays inside the skin
    nl(r, ms.Tensor((copper.cell[:] * 1.05)[None].astype(np.float32)))
    assert int(nl.n_builds.asnumpy()) == 2


def test_fallback_flags_a_cell_that_needs_more_images():
    atoms = bulk("Cu", "sc", a=5.0)
    nl = NeighborList(4.0, 500, atoms.cell[:], atoms.pbc, 1, backend="mindspore")
    r = ms.Tensor(atoms.positions.astype(np.float32))
    assert not bool(nl(r, ms.Tensor(atoms.cell[:][None].astype(np.float32)))[5].asnumpy())
    shrunk = ms.Tensor((atoms.cell[:] * 0.5)[None].astype(np.float32))
    assert bool(nl(r, shrunk)[5].asnumpy())


def test_cell_rejects_bad_arguments(copper):
    with pytest.raises(UserError, match="capacity"):
        NeighborList(3.0, 0, copper.cell[:], copper.pbc, len(copper))
    with pytest.raises(UserError, match="describe 1, 1 and 2 structures"):
        NeighborList(3.0, 10, copper.cell[:], copper.pbc, [5, 5])


def test_distances_are_differentiable_in_positions_and_cell(copper):
    """E = Σ exp(-d_ij) over the list; forces and the strain derivative against central differences."""
    cutoff = 4.0
    positions = copper.positions.copy()
    cell = copper.cell[:].copy()
    i, j, s = neighbor_list(positions, cell, copper.pbc, cutoff + 1.0)  # fixed list, larger than the cutoff
    i_t, j_t, s_t = ms.Tensor(i), ms.Tensor(j), ms.Tensor(s.astype(np.float64))

    def energy(r, h):
        vec = ops.gather(r, j_t, 0) - ops.gather(r, i_t, 0) + ops.matmul(s_t, h)
        d = ops.sqrt((vec * vec).sum(-1))
        fc = 0.5 * (ops.cos(np.pi * d / cutoff) + 1) * (d < cutoff).astype(d.dtype)
        return (ops.exp(-d) * fc).sum()

    def energy_np(r, h):
        return float(energy(ms.Tensor(r), ms.Tensor(h)).asnumpy())

    grad_r, grad_h = ms.grad(energy, grad_position=(0, 1))(ms.Tensor(positions), ms.Tensor(cell))
    grad_r, grad_h = grad_r.asnumpy(), grad_h.asnumpy()
    h = 1e-5
    for atom, axis in [(0, 0), (7, 2), (20, 1)]:
        plus, minus = positions.copy(), positions.copy()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        fd = (energy_np(plus, cell) - energy_np(minus, cell)) / (2 * h)
        assert grad_r[atom, axis] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    for a, b in [(0, 0), (1, 2), (2, 1)]:
        plus, minus = cell.copy(), cell.copy()
        plus[a, b] += h
        minus[a, b] -= h
        fd = (energy_np(positions, plus) - energy_np(positions, minus)) / (2 * h)
        assert grad_h[a, b] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    assert np.abs(grad_h).max() > 1e-3  # the cell derivative is not trivially zero


def test_kernel_cache_rebuilds_when_the_source_changes(tmp_path, monkeypatch):
    from mindsponge_mm.neighbors import aot

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    source = tmp_path / "neighbor_list.cc"
    source.write_text(aot.source_path().read_text())
    monkeypatch.setattr(aot, "source_path", lambda: source)
    aot.build.cache_clear()
    first = aot.build()
    assert first.exists() and str(first).startswith(str(tmp_path / "cache"))
    aot.build.cache_clear()
    assert aot.build() == first  # cached: no rebuild
    source.write_text(source.read_text() + "\n// changed\n")
    aot.build.cache_clear()
    second = aot.build()
    assert second != first and second.exists()
    aot.build.cache_clear()


def test_missing_compiler_names_the_fallback(tmp_path, monkeypatch):
    from mindsponge_mm import kernel_build
    from mindsponge_mm.neighbors import aot

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(kernel_build.shutil, "which", lambda name: None)
    aot.build.cache_clear()
    with pytest.raises(aot.KernelBuildError, match="no C\\+\\+ compiler.*backend 'mindspore'"):
        aot.build()
    aot.build.cache_clear()


def test_dispatch_picks_the_kernel_on_cpu_and_never_the_ascend_op_here(copper):
    from mindsponge_mm.neighbors import ascend

    nl = NeighborList(3.0, 100, copper.cell[:], copper.pbc, len(copper))
    assert nl.backend == "cpu"
    assert not ascend.ascend_available()  # CPU target: the Ascend operator is never selected
    with pytest.raises(UserError, match="backend must be auto, cpu, ascend or mindspore"):
        NeighborList(3.0, 100, copper.cell[:], copper.pbc, len(copper), backend="gpu")
