"""Tutorial 2: neighbor search — the numpy API, its backends, and the fixed-capacity Cell with a skin.

Run it with ``python tutorials/02_neighbors.py``. Lengths are in Å.
"""
import time

import mindspore as ms
import numpy as np
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list

from mindsponge_mm.neighbors import NeighborList, NeighborListOverflow, neighbor_list

# 1. One structure: pairs (i, j) and integer cell shifts S with r_ij = R[j] - R[i] + S @ cell.
#    The list is full (i->j and j->i) and holds pairs closer than the cutoff, as in ASE.
atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (4, 4, 4)
atoms.rattle(0.05, seed=0)
i, j, S = neighbor_list(atoms.positions, atoms.cell[:], atoms.pbc, 5.0)
d = np.linalg.norm(atoms.positions[j] - atoms.positions[i] + S @ atoms.cell[:], axis=1)
print(f"{len(atoms)} Cu atoms: {len(i)} pairs within 5 Å, {len(i) / len(atoms):.1f} per atom, longest {d.max():.3f} Å")
assert d.max() < 5.0 and len(i) % 2 == 0  # within the cutoff; a full list holds i->j and j->i

# 2. Backends give the same pairs. "cpu" is the C++ cell-list kernel (compiled on first use and
#    cached), "mindspore" is the portable fallback written in MindSpore ops, "ase" is the reference.
def as_set(i, j, S):
    return set(zip(i.tolist(), j.tolist(), map(tuple, S.tolist())))

reference = as_set(*ase_neighbor_list("ijS", atoms, 5.0))
for backend in ("cpu", "mindspore", "ase"):
    start = time.perf_counter()
    pairs = neighbor_list(atoms.positions, atoms.cell[:], atoms.pbc, 5.0, backend=backend)
    elapsed = 1e3 * (time.perf_counter() - start)
    print(f"  backend {backend:<10} {elapsed:8.1f} ms   same pairs as ASE: {as_set(*pairs) == reference}")
    assert as_set(*pairs) == reference and len(pairs[0]) == len(reference), backend  # same pairs, no duplicates

# 3. Periodic boundaries in full: a skewed triclinic cell, periodic along two axes only,
#    with a cutoff longer than the cell, so atoms see many images of each other.
skewed = atoms[:4].copy()
skewed.set_cell([[3.0, 0.0, 0.0], [2.5, 2.0, 0.0], [0.0, 0.0, 3.5]], scale_atoms=False)
skewed.pbc = [True, True, False]
pairs = neighbor_list(skewed.positions, skewed.cell[:], skewed.pbc, 7.0)
same = as_set(*pairs) == as_set(*ase_neighbor_list('ijS', skewed, 7.0))
print(f"skewed cell, pbc {skewed.pbc.tolist()}, cutoff 7 Å: {len(pairs[0])} pairs, same as ASE: {same}")
assert same and not pairs[2][:, 2].any()  # and no images along the non-periodic axis

# 4. Inside compiled graphs (MD) shapes must be static: NeighborList is a Cell with a fixed
#    pair capacity. It reports overflow instead of dropping pairs, and keeps a Verlet skin:
#    the list holds pairs within cutoff + skin and is rebuilt only when atoms moved enough.
cutoff, skin = 4.0, 0.5
nl = NeighborList(cutoff, capacity=500, cells=atoms.cell[:], pbc=atoms.pbc, n_atoms=len(atoms), skin=skin)
positions = ms.Tensor(atoms.positions.astype(np.float32))
cells = ms.Tensor(atoms.cell[:][None].astype(np.float32))
idx_i, idx_j, shifts, mask, count, overflow = nl(positions, cells)
try:
    nl.check(count, overflow)
    raise AssertionError(f"{int(count.asnumpy())} pairs fit a capacity of 500 without an overflow")
except NeighborListOverflow as err:
    print("capacity too small ->", err)
    nl = nl.resized(int(int(count.asnumpy()) * 1.2))

step = ms.jit(nl.construct)
rng = np.random.default_rng(1)
r = atoms.positions.copy()
for k in range(20):
    r += rng.normal(0, 0.03, r.shape)  # a small random move per "MD step"
    idx_i, idx_j, shifts, mask, count, overflow = step(ms.Tensor(r.astype(np.float32)), cells)
nl.check(count, overflow)
builds = int(nl.n_builds.asnumpy())
print(f"20 steps with skin {skin} Å: the list was built {builds} times, "
      f"{int(count.asnumpy())} pairs within {cutoff + skin} Å")
# Each step moves an atom by ~0.05 Å, so its half-skin budget (0.25 Å) lasts a few steps, not 20.
assert 1 < builds < 20
within = nl.within_cutoff(ms.Tensor(r.astype(np.float32)), cells, idx_i, idx_j, shifts, mask).asnumpy()
fresh = neighbor_list(r.astype(np.float32), atoms.cell[:], atoms.pbc, cutoff)
same = as_set(idx_i.asnumpy()[within], idx_j.asnumpy()[within], shifts.asnumpy()[within]) == as_set(*fresh)
print("pairs within the cutoff equal a fresh search:", same)
assert same
