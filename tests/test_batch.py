"""Batch and AtomsLoader: pairs against ASE, padding that changes nothing, shuffling."""
import numpy as np
import pytest
from ase.neighborlist import neighbor_list as ase_neighbor_list

from mindsponge_mm.data import AtomsDataset, AtomsLoader, collate
from mindsponge_mm.errors import DataError

CUTOFF = 4.0


@pytest.fixture(scope="module")
def mixed(copper_frames, molecule_frames):
    return AtomsDataset.from_atoms(copper_frames), AtomsDataset.from_atoms(molecule_frames)


def pair_set(i, j, s):
    return set(zip(i.tolist(), j.tolist(), map(tuple, np.asarray(s).astype(int).tolist())))


@pytest.mark.parametrize("which", [0, 1])
def test_collate_pairs_equal_ase_per_structure_with_offsets(mixed, which):
    ds = mixed[which]
    idx = list(range(len(ds)))[::-1]  # any order
    batch = collate(ds.frames(idx), CUTOFF, properties=["energy", "forces"], frame_index=idx)
    expected, start = set(), 0
    for k in idx:
        a = ds.to_atoms(k)
        i, j, s = ase_neighbor_list("ijS", a, CUTOFF)
        expected |= pair_set(i + start, j + start, s)
        start += len(a)
    real = batch.pair_mask
    assert pair_set(batch.idx_i[real], batch.idx_j[real], batch.shifts[real]) == expected
    assert real.sum() == len(expected)
    np.testing.assert_array_equal(batch.frame_index[:-1], idx)
    # every pair stays inside one structure
    assert np.all(batch.structure_index[batch.idx_i] == batch.structure_index[batch.idx_j])


def test_padding_layout(mixed):
    ds = mixed[0]
    batch = collate(ds.frames([0, 1]), CUTOFF, n_structures=4, atom_multiple=32, pair_multiple=256,
                    properties=["energy", "forces", "stress"])
    n_atoms, n_struct, n_pairs = batch.n_real
    a_cap, s_cap, p_cap = batch.shape
    assert s_cap == 5 and n_struct == 2
    assert a_cap % 32 == 0 and a_cap > n_atoms and p_cap % 256 == 0 and p_cap >= n_pairs
    assert np.all(batch.atomic_numbers[n_atoms:] == 0)
    assert np.all(batch.structure_index[n_atoms:] == s_cap - 1)
    pad = ~batch.pair_mask
    assert np.all(batch.idx_i[pad] == n_atoms) and np.all(batch.idx_j[pad] == n_atoms)
    # padded pairs are longer than the cutoff and do not touch real atoms
    r = batch.positions[batch.idx_j] - batch.positions[batch.idx_i] + np.einsum(
        "pk,pkl->pl", batch.shifts, batch.cell[batch.structure_index[batch.idx_i]])
    d = np.linalg.norm(r, axis=1)
    assert np.all(d[pad] > CUTOFF) and np.all(d[~pad] < CUTOFF)
    assert np.all(batch.targets["forces"][n_atoms:] == 0) and np.all(batch.targets["energy"][n_struct:] == 0)
    assert batch.targets["stress"].shape == (s_cap, 3, 3)


def _pair_energy_and_forces(batch):
    """A smooth pair energy per structure and its forces, computed in MindSpore with the batch's masks."""
    import mindspore as ms
    from mindspore import ops

    t = batch.to_mindspore()
    n_struct = t.cell.shape[0]

    def energy(positions):
        cell_i = ops.gather(t.cell, ops.gather(t.structure_index, t.idx_i, 0), 0)
        r = ops.gather(positions, t.idx_j, 0) - ops.gather(positions, t.idx_i, 0) + ops.squeeze(
            ops.matmul(ops.expand_dims(t.shifts, 1), cell_i), 1)
        d = ops.sqrt(ops.reduce_sum(r * r, -1))
        fc = 0.5 * (ops.cos(np.pi * d / CUTOFF) + 1.0) * (d < CUTOFF).astype(d.dtype)
        e_pair = ops.exp(-d) * fc * t.pair_mask.astype(d.dtype)
        e_atom = ops.unsorted_segment_sum(e_pair, t.idx_i, positions.shape[0]) * t.atom_mask.astype(d.dtype)
        e_struct = ops.unsorted_segment_sum(e_atom, t.structure_index, n_struct)
        return e_struct.sum(), e_struct

    (_, e_struct), grad = ms.value_and_grad(energy, has_aux=True)(t.positions)
    return e_struct.asnumpy(), -grad.asnumpy()


def test_padding_never_changes_energies_or_forces(mixed):
    ds = mixed[1]
    frames = ds.frames(range(len(ds)))
    tight = collate(frames, CUTOFF, atom_multiple=1, pair_multiple=1, dtype="float64")
    loose = collate(frames, CUTOFF, n_structures=12, atom_multiple=64, pair_multiple=1024, dtype="float64")
    assert tight.shape != loose.shape
    e_tight, f_tight = _pair_energy_and_forces(tight)
    e_loose, f_loose = _pair_energy_and_forces(loose)
    n_struct, n_atoms = len(frames), tight.n_real[0]
    np.testing.assert_allclose(e_loose[:n_struct], e_tight[:n_struct], rtol=1e-12)
    np.testing.assert_allclose(f_loose[:n_atoms], f_tight[:n_atoms], rtol=1e-12, atol=1e-14)
    assert np.all(e_loose[n_struct:] == 0) and np.all(f_loose[n_atoms:] == 0)
    assert np.isfinite(f_loose).all() and np.isfinite(f_tight).all()
    assert np.abs(e_tight[:n_struct]).min() > 0  # the check is not vacuous


def test_loader_epochs_cover_every_frame_once_and_reshuffle(mixed):
    ds = mixed[1]
    loader = AtomsLoader(ds, batch_size=3, cutoff=CUTOFF, shuffle=True, seed=7, properties=["energy"])
    assert len(loader) == 3
    epochs = []
    for _ in range(2):
        seen = [b.frame_index[b.structure_mask] for b in loader]
        epochs.append(np.concatenate(seen))
        assert sorted(epochs[-1].tolist()) == list(range(len(ds)))
        assert {b.shape[1] for b in loader.__class__(ds, 3, CUTOFF).__iter__()} == {4}
    assert not np.array_equal(epochs[0], epochs[1])
    again = AtomsLoader(ds, batch_size=3, cutoff=CUTOFF, shuffle=True, seed=7, properties=["energy"])
    np.testing.assert_array_equal(np.concatenate([b.frame_index[b.structure_mask] for b in again]), epochs[0])
    assert len(AtomsLoader(ds, 3, CUTOFF, drop_last=True)) == 2


def test_loader_bad_arguments(mixed):
    ds = mixed[1]
    with pytest.raises(DataError, match="has no property 'stress'"):
        AtomsLoader(ds, 2, CUTOFF, properties=["energy", "stress"])
    with pytest.raises(DataError, match="batch_size"):
        AtomsLoader(ds, 0, CUTOFF)
    with pytest.raises(DataError, match="cutoff"):
        AtomsLoader(ds, 2, -1.0)
    with pytest.raises(DataError, match="split indices"):
        AtomsLoader(ds, 2, CUTOFF, indices=[0, 99])


def test_round_up_buckets():
    from mindsponge_mm.batch import round_up

    assert [round_up(v, 32, 0) for v in (1, 32, 33, 300)] == [32, 32, 64, 320]
    caps = [round_up(v, 256, 4) for v in range(1, 100_000, 97)]
    values = list(range(1, 100_000, 97))
    assert all(c >= v and c % 256 == 0 for c, v in zip(caps, values))
    assert max(c / v for c, v in zip(caps, values) if v > 2048) <= 1.25 + 1e-9  # padding bounded
    assert len(set(caps)) < 40  # few distinct shapes over two decades of sizes


def test_graph_inputs_are_named_once_and_cast():
    from mindsponge_mm.batch import GRAPH_INPUTS, pad_pairs

    frames = [{"atomic_numbers": np.array([8, 1, 1]), "positions": np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]),
               "cell": np.zeros((3, 3)), "pbc": np.zeros(3, bool)}]
    batch = collate(frames, CUTOFF, dtype="float64")
    arrays = batch.graph_inputs("float32")
    assert len(arrays) == len(GRAPH_INPUTS) == 10
    for name, a in zip(GRAPH_INPUTS, arrays):
        assert a.shape == getattr(batch, name).shape and a.flags.c_contiguous
    assert [a.dtype for a in arrays[:5]] == [np.float32, np.float32, bool, np.int32, np.float32]
    bigger = batch.pad_pairs(batch.shape[2] + 7)
    assert bigger.shape[2] == batch.shape[2] + 7 and bigger.n_real == batch.n_real
    assert pad_pairs(batch, batch.shape[2]) is batch
