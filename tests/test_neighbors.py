"""Neighbor search against ASE, for every backend, on the hard cases."""
import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindsponge_mm.errors import UserError
from mindsponge_mm.neighbors import batch_neighbor_list, neighbor_list

BACKENDS = ["cpu", "mindspore"]


def pair_set(i, j, s):
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist(), map(tuple, np.asarray(s).astype(int).tolist())))


def random_system(rng, n, pbc, skew=0.0, outside=0.0, length=(6.0, 8.0)):
    cell = np.diag(rng.uniform(*length, 3)) + skew * rng.uniform(-1, 1, (3, 3)) * np.mean(length)
    frac = rng.uniform(0, 1, (n, 3))
    positions = frac @ cell + outside * rng.normal(size=(n, 3)) * np.mean(length)
    return Atoms(numbers=np.ones(n, int), positions=positions, cell=cell, pbc=pbc)


CASES = {
    "orthorhombic": dict(n=40, pbc=[True] * 3),
    "triclinic_skewed": dict(n=30, pbc=[True] * 3, skew=0.45),
    "pbc_xz_only": dict(n=30, pbc=[True, False, True], skew=0.2),
    "pbc_z_only": dict(n=30, pbc=[False, False, True], skew=0.2),
    "no_pbc": dict(n=30, pbc=[False] * 3),
    "outside_cell": dict(n=25, pbc=[True] * 3, skew=0.3, outside=2.0),
    "outside_partial_pbc": dict(n=25, pbc=[True, True, False], skew=0.3, outside=2.0),
    "small_cell": dict(n=5, pbc=[True] * 3, skew=0.3, length=(2.0, 3.0)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("cutoff", [2.5, 4.5, 9.0])  # 4.5 > half the cell, 9.0 > the whole cell
def test_matches_ase(backend, case, cutoff):
    rng = np.random.default_rng([list(CASES).index(case), int(10 * cutoff)])  # fixed per case and cutoff
    for _ in range(2):
        atoms = random_system(rng, **CASES[case])
        expected = pair_set(*ase_neighbor_list("ijS", atoms, cutoff))
        got = neighbor_list(atoms.positions, atoms.cell[:], atoms.pbc, cutoff, backend=backend)
        assert pair_set(*got) == expected
        assert len(got[0]) == len(expected)  # no duplicates


def pairs_away_from_cutoff(i, j, s, d, cutoff):
    """(i, j, shift) of the pairs whose distance is not within 1e-9 Å of the cutoff (rounding decides those)."""
    keep = np.abs(np.asarray(d) - cutoff) > 1e-9
    return pair_set(np.asarray(i)[keep], np.asarray(j)[keep], np.asarray(s).reshape(-1, 3)[keep])


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 8),
       lengths=st.lists(st.floats(1.5, 6.0), min_size=3, max_size=3),
       skew=st.lists(st.floats(-0.45, 0.45), min_size=3, max_size=3),
       pbc=st.lists(st.booleans(), min_size=3, max_size=3),
       frac=st.lists(st.floats(-0.5, 1.5), min_size=24, max_size=24),
       cutoff=st.floats(0.5, 7.0))
def test_small_random_systems_match_ase(n, lengths, skew, pbc, frac, cutoff):
    """Both backends equal ASE on small random cells: skewed, partly periodic, atoms outside the cell,
    cutoffs longer than the cell."""
    cell = np.diag(lengths)
    cell[1, 0], cell[2, 0], cell[2, 1] = skew[0] * lengths[0], skew[1] * lengths[0], skew[2] * lengths[1]
    atoms = Atoms(numbers=np.ones(n, int), positions=np.reshape(frac[:3 * n], (n, 3)) @ cell, cell=cell, pbc=pbc)
    expected = pairs_away_from_cutoff(*ase_neighbor_list("ijSd", atoms, cutoff), cutoff)
    for backend in BACKENDS:
        i, j, s = neighbor_list(atoms.positions, atoms.cell[:], atoms.pbc, cutoff, backend=backend)
        d = np.linalg.norm(atoms.positions[j] - atoms.positions[i] + s @ atoms.cell[:], axis=1)
        assert len(pair_set(i, j, s)) == len(i), backend  # no duplicates
        assert pairs_away_from_cutoff(i, j, s, d, cutoff) == expected, backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_atom_sees_its_own_images(backend):
    atoms = Atoms("H", positions=[[0.3, 0.2, 0.1]], cell=[[2.0, 0, 0], [0.7, 2.2, 0], [0.3, 0.4, 1.9]], pbc=True)
    i, j, s = neighbor_list(atoms.positions, atoms.cell[:], atoms.pbc, 5.0, backend=backend)
    assert len(i) > 20 and set(i) == {0} and not np.any(np.all(s == 0, axis=1))
    assert pair_set(i, j, s) == pair_set(*ase_neighbor_list("ijS", atoms, 5.0))
    # self interaction adds exactly the zero-shift self pair (numpy backends)
    i2, j2, s2 = neighbor_list(atoms.positions, atoms.cell[:], atoms.pbc, 5.0, backend=backend, self_interaction=True)
    assert pair_set(i2, j2, s2) - pair_set(i, j, s) == {(0, 0, (0, 0, 0))}


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_and_single_atom_systems(backend):
    for positions in (np.zeros((0, 3)), np.array([[1.0, 2.0, 3.0]])):
        i, j, s = neighbor_list(positions, np.zeros((3, 3)), False, 3.0, backend=backend)
        assert len(i) == len(j) == len(s) == 0 and s.shape == (0, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_distance_exactly_at_cutoff_is_excluded_like_ase(backend):
    atoms = Atoms("H3", positions=[[0, 0, 0], [2.0, 0, 0], [0, 1.5, 0]], cell=[4.0, 10.0, 10.0], pbc=[True, False, False])
    for cutoff in (2.0, 1.5, 2.5):
        got = pair_set(*neighbor_list(atoms.positions, atoms.cell[:], atoms.pbc, cutoff, backend=backend))
        assert got == pair_set(*ase_neighbor_list("ijS", atoms, cutoff))
    assert (0, 1, (0, 0, 0)) not in pair_set(*neighbor_list(atoms.positions, atoms.cell[:], atoms.pbc, 2.0, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_input(backend):
    atoms = random_system(np.random.default_rng(5), 30, [True] * 3, skew=0.2)
    got = neighbor_list(atoms.positions.astype(np.float32), atoms.cell[:], atoms.pbc, 3.5, backend=backend)
    expected = pair_set(*ase_neighbor_list("ijS", atoms, 3.5))
    assert len(pair_set(*got) ^ expected) <= 2  # float32 rounding may move a pair across the cutoff


@pytest.mark.parametrize("backend", BACKENDS)
def test_batched_form_equals_per_structure(backend):
    rng = np.random.default_rng(11)
    systems = [random_system(rng, n, p, skew=0.2) for n, p in [(12, [True] * 3), (0, [False] * 3), (9, [False] * 3),
                                                                 (1, [True] * 3), (20, [True, False, True])]]
    i, j, s, counts = batch_neighbor_list([a.positions for a in systems], [a.cell[:] for a in systems],
                                          [a.pbc for a in systems], 4.0, backend=backend)
    expected, start = set(), 0
    for a in systems:
        ai, aj, aS = ase_neighbor_list("ijS", a, 4.0)
        expected |= pair_set(ai + start, aj + start, aS)
        start += len(a)
    assert pair_set(i, j, s) == expected
    assert counts.sum() == len(i) and len(counts) == len(systems) and counts[1] == 0


def test_kernel_output_is_sorted_by_i_and_deterministic():
    atoms = random_system(np.random.default_rng(2), 3000, [True] * 3, length=(30.0, 31.0))
    from mindsponge_mm.neighbors.aot import kernel_neighbor_pairs

    args = (atoms.positions, atoms.cell[:][None], atoms.pbc[None], np.array([0, len(atoms)]), 3.0)
    one = kernel_neighbor_pairs(*args, n_threads=1)
    two = kernel_neighbor_pairs(*args, n_threads=3)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert np.all(np.diff(one[0]) >= 0)


def test_bad_input():
    with pytest.raises(UserError, match="pbc\\[1\\] is True but cell vector 1 is zero"):
        neighbor_list(np.zeros((2, 3)), np.diag([3.0, 0.0, 3.0]), True, 2.0)
    with pytest.raises(UserError, match="atom 1 has a non-finite position"):
        neighbor_list(np.array([[0, 0, 0], [np.nan, 0, 0]]), np.eye(3), False, 2.0)
    with pytest.raises(UserError, match="unknown neighbor backend 'fast'"):
        neighbor_list(np.zeros((2, 3)), np.eye(3), False, 2.0, backend="fast")
    with pytest.raises(UserError, match="cutoff must be a positive"):
        neighbor_list(np.zeros((2, 3)), np.eye(3), False, 0.0)
    with pytest.raises(UserError, match="linearly dependent"):
        neighbor_list(np.zeros((2, 3)), [[1, 0, 0], [2, 0, 0], [0, 0, 1]], True, 2.0, backend="cpu")
