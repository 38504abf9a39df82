"""Splits (reproducible, saved and reused) and statistics (atomrefs by least squares)."""
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from mindsponge_mm.data import AtomsDataset, compute_statistics, load_split, split, statistics
from mindsponge_mm.errors import DataError


def test_split_counts_fractions_and_rest():
    tr, va, te = split(100, (0.8, 0.1, 0.1), seed=3)
    assert (len(tr), len(va), len(te)) == (80, 10, 10)
    assert len(np.unique(np.concatenate([tr, va, te]))) == 100
    tr2, va2, te2 = split(100, (50, 20, None), seed=3)
    assert (len(tr2), len(va2), len(te2)) == (50, 20, 30)
    assert np.array_equal(split(100, (0.8, 0.1, 0.1), seed=3)[0], tr)
    assert not np.array_equal(split(100, (0.8, 0.1, 0.1), seed=4)[0], tr)


@pytest.mark.parametrize("sizes", [(80, 30, None), (0.9, 0.5, 0.0), (10, None, None), (-1, 5, 5), (True, 5, 5)])
def test_bad_split_sizes(sizes):
    with pytest.raises(DataError):
        split(100, sizes)


def test_split_file_is_saved_and_reused(tmp_path):
    f = tmp_path / "split.npz"
    first = split(50, (30, 10, None), seed=1, file=f)
    again = split(50, (10, 10, 10), seed=99, file=f)  # the file wins
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(DataError, match="split was made for 50 frames"):
        load_split(f, 60)
    f.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid split file"):
        load_split(f)


def synthetic_dataset(rng, refs, n_frames=40, noise=0.0):
    """Random compositions of H, C, O with E = Σ n_Z e_Z (+ noise)."""
    frames = []
    for _ in range(n_frames):
        counts = rng.integers(1, 6, size=3)
        numbers = np.repeat([1, 6, 8], counts)
        atoms = Atoms(numbers=numbers, positions=rng.uniform(0, 5, (len(numbers), 3)))
        energy = sum(refs[z] for z in numbers) + noise * rng.standard_normal()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=rng.standard_normal((len(numbers), 3)))
        frames.append(atoms)
    return AtomsDataset.from_atoms(frames)


def test_atomrefs_recover_known_per_element_energies():
    refs = {1: -13.6, 6: -1029.5, 8: -2041.3}
    ds = synthetic_dataset(np.random.default_rng(0), refs)
    stats = compute_statistics(ds, np.arange(30))
    assert stats.elements == (1, 6, 8)
    for z, e in refs.items():
        assert stats.atomrefs[z] == pytest.approx(e, abs=1e-9)
    assert abs(stats.mean_energy_per_atom) < 1e-9
    forces = np.concatenate([ds[i]["forces"] for i in range(30)])
    assert stats.force_rms == pytest.approx(np.sqrt(np.mean(forces**2)), rel=1e-12)


def test_statistics_are_cached_beside_the_dataset_and_keyed_by_split(tmp_path):
    refs = {1: -1.0, 6: -2.0, 8: -3.0}
    mem = synthetic_dataset(np.random.default_rng(1), refs, noise=0.1)
    ds = mem.save(tmp_path / "syn.h5")
    a = statistics(ds, np.arange(20))
    assert len(list(tmp_path.glob("syn.h5.stats-*.json"))) == 1
    assert statistics(ds, np.arange(20)) == a
    b = statistics(ds, np.arange(20, 40))
    assert b != a and len(list(tmp_path.glob("syn.h5.stats-*.json"))) == 2
    assert a == compute_statistics(ds, np.arange(20))
