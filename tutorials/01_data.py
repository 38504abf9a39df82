"""Tutorial 1: load, convert, inspect, split and batch an atomistic dataset.

Run it with ``python tutorials/01_data.py``. It writes only into a temporary folder.
Every number printed is in eV, Å, eV/Å or eV/Å³.
"""
import tempfile
from pathlib import Path

import numpy as np

from mindsponge_mm.data import AtomsDataset, AtomsLoader, RemoveOffsets, split, statistics

work = Path(tempfile.mkdtemp(prefix="mindsponge_tutorial_"))

# 1. Open a dataset. "bundled:NAME" names a set shipped with the package; any .h5, .db,
#    extxyz or other file ASE can read works the same way.
ds = AtomsDataset.open("bundled:ethanol")
print(ds.summary())

# 2. A frame is a dict of numpy arrays; to_atoms gives an ase.Atoms with the reference results.
frame = ds[0]
print("\nframe 0 keys:", sorted(frame), " energy:", float(frame["energy"]), ds.units["energy"])
atoms = ds.to_atoms(0)
print("as ase.Atoms:", atoms.get_chemical_formula(), "forces shape", atoms.get_forces().shape)

# 3. Convert between formats: HDF5 <-> ASE database <-> extxyz. Numbers and units are kept.
db = ds.save(work / "ethanol.db")
xyz_path = work / "first10.extxyz"
import ase.io  # noqa: E402
import ase.units  # noqa: E402

ase.io.write(xyz_path, [ds.to_atoms(i) for i in range(10)])
small = AtomsDataset.open(xyz_path)
# extxyz is text with 8 decimals; HDF5 and ASE db keep float64 exactly.
assert np.allclose(small[3]["forces"], ds[3]["forces"], atol=1e-7)
assert np.array_equal(db[3]["forces"], ds[3]["forces"])
print(f"\nconverted: {db.path.name} ({len(db)} frames), {xyz_path.name} ({len(small)} frames)")

# 4. A file in other units declares them (our HDF5 and ASE db files store them; for extxyz
#    pass units=...). Loading always converts to eV and Å.
in_kcal = AtomsDataset.open(xyz_path, units={"energy": "kcal/mol", "forces": "kcal/mol/Ang"})
print(f"the same numbers read as kcal/mol: {float(in_kcal[0]['energy']):.2f} eV")
kcal_per_mol = ase.units.kcal / ase.units.mol  # eV
assert abs(float(in_kcal[0]["energy"]) - kcal_per_mol * float(ds[0]["energy"])) < 1e-8 * kcal_per_mol  # 8 decimals in extxyz
assert np.allclose(in_kcal[3]["forces"], kcal_per_mol * ds[3]["forces"], rtol=0, atol=1e-7 * kcal_per_mol)

# 5. Split reproducibly. The split file is reused by every later run (and every rank).
train, val, test = split(ds, (800, 100, None), seed=0, file=work / "split.npz")
print(f"\nsplit: {len(train)} train, {len(val)} val, {len(test)} test")
assert (len(train), len(val), len(test)) == (800, 100, 100)
assert len(set(train) | set(val) | set(test)) == len(ds)  # disjoint and complete
again = split(ds, (800, 100, None), seed=0, file=work / "split.npz")  # read back from the split file
assert all(np.array_equal(a, b) for a, b in zip(again, (train, val, test)))

# 6. Statistics of the training split: per-element reference energies and force scale.
stats = statistics(ds, train)
print("atomrefs (eV):", {int(z): round(e, 3) for z, e in stats.atomrefs.items()}, " force RMS:", round(stats.force_rms, 3))
offsets = RemoveOffsets.from_statistics(stats)
# The atomrefs are a least-squares fit over the training frames: the residual energies average to ~0.
residual = np.array([float(offsets(ds[int(k)])["energy"]) for k in train])
print(f"training energies after the offsets: mean {residual.mean():.2e} eV, std {residual.std():.3f} eV")
assert abs(residual.mean()) < 1e-6  # float64 least squares on energies of ~310 eV: ~1e-12 expected

# 7. Batch: flat graphs padded to bucket capacities (multiples of 32 atoms, 256 pairs),
#    so that a compiled model sees only a handful of shapes.
loader = AtomsLoader(ds, batch_size=32, cutoff=5.0, shuffle=True, seed=0, indices=train, transforms=offsets)
shapes = set()
for batch in loader:
    shapes.add(batch.shape)
print(f"\n{len(loader)} batches per epoch, distinct padded shapes (atoms, structures, pairs): {sorted(shapes)}")
assert len(loader) == 25 and len(shapes) == 1  # 800 / 32 full batches of the same 9-atom molecule
assert int(batch.atom_mask.sum()) == 32 * 9 and not batch.atomic_numbers[32 * 9:].any()
print(batch.describe())
print("\nPadding atoms have Z = 0 and mask False; padding pairs join a padding atom to its own image")
print("farther away than the cutoff, so they add exactly nothing to energies and forces.")
