"""AtomsDataset: backends, round trips, units and bad input."""
import ase.io
import ase.units as u
import h5py
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from mindsponge_mm.data import AtomsDataset
from mindsponge_mm.errors import DataError, UserError


def assert_same_dataset(a: AtomsDataset, b: AtomsDataset):
    assert len(a) == len(b)
    assert a.properties == b.properties
    assert a.units == b.units
    for k in range(len(a)):
        fa, fb = a[k], b[k]
        assert fa.keys() == fb.keys()
        for key in fa:
            assert fa[key].dtype.kind == fb[key].dtype.kind, key
            np.testing.assert_array_equal(fa[key], fb[key], err_msg=f"frame {k} {key}")


def test_round_trip_extxyz_hdf5_db_hdf5_is_exact(tmp_path, copper_frames):
    frames = [a.copy() for a in copper_frames]
    for k, (a, src) in enumerate(zip(frames, copper_frames)):
        a.calc = src.calc
        a.info["temperature"] = 300.0 + k  # an extra per-frame property
        a.arrays["charges_guess"] = np.linspace(-1, 1, len(a))  # an extra per-atom property
    ase.io.write(tmp_path / "in.extxyz", frames)
    xyz = AtomsDataset.open(tmp_path / "in.extxyz")
    assert set(xyz.properties) == {"energy", "forces", "stress", "temperature", "charges_guess"}
    h5 = xyz.save(tmp_path / "a.h5")
    db = h5.save(tmp_path / "b.db")
    h5b = db.save(tmp_path / "c.h5")
    for ds in (h5, db, h5b):
        assert_same_dataset(xyz, ds)
    assert h5b.properties["charges_guess"].per_atom and not h5b.properties["temperature"].per_atom
    assert h5b.units["stress"] == "eV/Ang^3" and h5b.units["forces"] == "eV/Ang"


def test_from_atoms_matches_atoms(tmp_path, copper_frames):
    ds = AtomsDataset.from_atoms(copper_frames, tmp_path / "cu.h5")
    for k, atoms in enumerate(copper_frames):
        frame = ds[k]
        np.testing.assert_array_equal(frame["positions"], atoms.positions)
        np.testing.assert_array_equal(frame["cell"], atoms.cell[:])
        assert frame["energy"] == atoms.get_potential_energy()
        np.testing.assert_array_equal(frame["forces"], atoms.get_forces())
        np.testing.assert_allclose(frame["stress"], atoms.get_stress(voigt=False), rtol=0, atol=0)
        back = ds.to_atoms(k)
        assert back.get_potential_energy() == atoms.get_potential_energy()
        np.testing.assert_array_equal(back.get_stress(), atoms.get_stress())
    assert ds.elements == [29]
    assert ds[-1]["energy"] == ds[len(ds) - 1]["energy"]
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_hdf5_is_chunked_compressed_and_declares_units(tmp_path, copper_frames):
    AtomsDataset.from_atoms(copper_frames * 4, tmp_path / "cu.h5")
    with h5py.File(tmp_path / "cu.h5") as f:
        assert f["positions"].attrs["unit"] == "Ang"
        assert f["properties/forces"].attrs["unit"] == "eV/Ang"
        assert f["properties/forces"].compression == "gzip"
        assert f["properties/forces"].chunks is not None


def test_units_kcal_mol_and_nm_load_as_ev_and_angstrom(tmp_path, molecule_frames):
    """Store values in kcal/mol and nm; loading must give eV and Å exactly as ase.units says."""
    scaled = []
    for a in molecule_frames:
        b = a.copy()
        b.positions = a.positions / 10.0  # nm
        b.calc = SinglePointCalculator(
            b, energy=a.get_potential_energy() / (u.kcal / u.mol), forces=a.get_forces() / (u.kcal / u.mol / 10.0)
        )
        scaled.append(b)
    units = {"positions": "nm", "energy": "kcal/mol", "forces": "kcal/mol/nm"}
    for suffix in ("h5", "db"):
        ds = AtomsDataset.from_atoms(scaled, tmp_path / f"kcal.{suffix}", units=units)
        assert ds.units["energy"] == "eV" and ds.units["forces"] == "eV/Ang" and ds.units["positions"] == "Ang"
        for k, a in enumerate(molecule_frames):
            np.testing.assert_allclose(ds[k]["positions"], a.positions, rtol=1e-14, atol=1e-14)
            np.testing.assert_allclose(ds[k]["energy"], a.get_potential_energy(), rtol=1e-13)
            np.testing.assert_allclose(ds[k]["forces"], a.get_forces(), rtol=1e-13, atol=1e-13)
    with h5py.File(tmp_path / "kcal.h5") as f:  # stored as declared, converted on read
        assert f["properties/energy"].attrs["unit"] == "kcal/mol"
    # an extxyz in kcal/mol: the caller declares the units
    ase.io.write(tmp_path / "kcal.extxyz", scaled)
    ds = AtomsDataset.open(tmp_path / "kcal.extxyz", units=units)
    np.testing.assert_allclose(ds[0]["energy"], molecule_frames[0].get_potential_energy(), rtol=1e-9)


# ---------------------------------------------------------------------- bad input
def _one_line(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found") as err:
        AtomsDataset.open(tmp_path / "nope.h5")
    assert "nope.h5" in _one_line(err.value)


@pytest.mark.parametrize("name, content", [("bad.h5", b"this is not hdf5"), ("bad.db", b"garbage" * 100),
                                           ("bad.extxyz", b"3\nnot extxyz at all\nX 1 2\n")])
def test_corrupt_file(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as err:
        AtomsDataset.open(tmp_path / name)
    assert name in _one_line(err.value)


def test_hdf5_from_another_program(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DataError, match="not a mindsponge_mm dataset"):
        AtomsDataset.open(tmp_path / "other.h5")


def test_energy_requested_from_file_without_energies(tmp_path):
    frames = [Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])]
    ds = AtomsDataset.from_atoms(frames, tmp_path / "noe.h5")
    with pytest.raises(DataError, match="has no property 'energy'") as err:
        ds.require(["energy"], "training")
    assert "noe.h5" in _one_line(err.value)


def test_nan_and_inf_positions(tmp_path, molecule_frames):
    for bad in (np.nan, np.inf):
        frames = [a.copy() for a in molecule_frames[:3]]
        frames[2].positions[1, 0] = bad
        with pytest.raises(DataError, match="frame 2 atom 1 has a non-finite position"):
            AtomsDataset.from_atoms(frames, tmp_path / "nan.h5")
        assert not (tmp_path / "nan.h5").exists()
    # the same inside a file written by someone else
    AtomsDataset.from_atoms(molecule_frames[:3], tmp_path / "ok.h5")
    with h5py.File(tmp_path / "ok.h5", "r+") as f:
        f["positions"][6, 2] = np.nan  # CH4 has 5 atoms: global atom 6 is frame 1 atom 1
    with pytest.raises(DataError, match="ok.h5: frame 1 atom 1 has a non-finite position"):
        AtomsDataset.open(tmp_path / "ok.h5")


def test_frame_with_zero_atoms(tmp_path, molecule_frames):
    frames = [molecule_frames[0], Atoms()]
    with pytest.raises(DataError, match="frame 1 has zero atoms"):
        AtomsDataset.from_atoms(frames, tmp_path / "empty.h5")


def test_forces_shape_mismatch(tmp_path, molecule_frames):
    a = molecule_frames[0].copy()
    a.calc = SinglePointCalculator(a, energy=1.0, forces=np.zeros((len(a) - 1, 3)))
    with pytest.raises(DataError, match="frame 0 property 'forces' has shape"):
        AtomsDataset.from_atoms([a], tmp_path / "f.h5")
    # and in a file whose force rows do not match its atoms
    AtomsDataset.from_atoms(molecule_frames[:2], tmp_path / "g.h5")
    with h5py.File(tmp_path / "g.h5", "r+") as f:
        forces = f["properties/forces"][()]
        del f["properties/forces"]
        f["properties/forces"] = forces[:-1]
        f["properties/forces"].attrs.update(unit="eV/Ang", per_atom=True)
    with pytest.raises(DataError, match="g.h5: property 'forces' has"):
        AtomsDataset.open(tmp_path / "g.h5")


def test_unknown_unit_string(tmp_path, molecule_frames):
    with pytest.raises(UserError, match="unknown unit 'kcal/mole'") as err:
        AtomsDataset.from_atoms(molecule_frames[:2], tmp_path / "u.h5", units={"energy": "kcal/mole"})
    assert "u.h5" in _one_line(err.value)
    AtomsDataset.from_atoms(molecule_frames[:2], tmp_path / "v.h5")
    with h5py.File(tmp_path / "v.h5", "r+") as f:
        f["properties/energy"].attrs["unit"] = "furlongs"
    with pytest.raises(UserError, match="v.h5: unknown unit 'furlongs'"):
        AtomsDataset.open(tmp_path / "v.h5")


def test_unknown_element(tmp_path):
    with h5py.File(tmp_path / "z.h5", "w"):
        pass
    AtomsDataset.from_atoms([Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]])], tmp_path / "z.h5")
    with h5py.File(tmp_path / "z.h5", "r+") as f:
        f["atomic_numbers"][1] = 200
    with pytest.raises(DataError, match="unknown element with atomic number 200"):
        AtomsDataset.open(tmp_path / "z.h5")


def test_inconsistent_properties_between_frames(tmp_path, molecule_frames):
    frames = [molecule_frames[0], Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]])]
    with pytest.raises(DataError, match="frame 1 differs from frame 0"):
        AtomsDataset.from_atoms(frames)


def test_write_failure_leaves_no_partial_file(tmp_path, molecule_frames, monkeypatch):
    from mindsponge_mm.data import formats

    def boom(group, *args, **kwargs):
        raise RuntimeError("disk full")

    AtomsDataset.from_atoms(molecule_frames[:2], tmp_path / "keep.h5")
    before = (tmp_path / "keep.h5").read_bytes()
    monkeypatch.setattr(formats.np, "asarray", boom)
    with pytest.raises(RuntimeError):
        AtomsDataset.from_atoms(molecule_frames[:3], tmp_path / "keep.h5")
    monkeypatch.undo()
    assert (tmp_path / "keep.h5").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.h5"]
