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

# 5. Split reproducibly. The split file is reused by every later run (and every rank).
train, val, test = split(ds, (800, 100, None), seed=0, file=work / "split.npz")
print(f"\nsplit: {len(train)} train, {len(val)} val, {len(test)} test")

# 6. Statistics of the training split: per-element reference energies and force scale.
stats = statistics(ds, train)
print("atomrefs (eV):", {int(z): round(e, 3) for z, e in stats.atomrefs.items()}, " force RMS:", round(stats.force_rms, 3))
offsets = RemoveOffsets.from_statistics(stats)

# 7. Batch: flat graphs padded to bucket capacities (multiples of 32 atoms, 256 pairs),
#    so that a compiled model sees only a handful of shapes.
loader = AtomsLoader(ds, batch_size=32, cutoff=5.0, shuffle=True, seed=0, indices=train, transforms=offsets)
shapes = set()
for batch in loader:
    shapes.add(batch.shape)
print(f"\n{len(loader)} batches per epoch, distinct padded shapes (atoms, structures, pairs): {sorted(shapes)}")
print(batch.describe())
print("\nPadding atoms have Z = 0 and mask False; padding pairs join a padding atom to its own image")
print("farther away than the cutoff, so they add exactly nothing to energies and forces.")
