"""SMILES -> 3D ase.Atoms (ETKDG + MMFF) and back to RDKit molecules with perceived bonds."""
import numpy as np
import pytest
from rdkit import Chem

from mindsponge_mm.errors import UserError
from mindsponge_mm.interfaces.rdkit import (EmbeddingError, SmilesError, atoms_to_mol, canonical_smiles,
                                            parse_smiles, smiles_to_atoms)


@pytest.mark.parametrize("smiles", ["CCO", "CC(=O)Oc1ccccc1C(=O)O", "c1ccncc1", "C[NH3+]", "OC(=O)C[C@@H](N)C(=O)O"])
def test_round_trip_through_3d(smiles):
    confs = smiles_to_atoms(smiles, n_conformers=2, seed=3)
    assert len(confs) == 2
    ref = Chem.AddHs(Chem.MolFromSmiles(smiles))
    for atoms in confs:
        assert len(atoms) == ref.GetNumAtoms()  # hydrogens added
        d = atoms.get_all_distances() + 10 * np.eye(len(atoms))
        assert d.min() > 0.8  # a sensible 3D geometry, in Å
        back = Chem.RemoveHs(atoms_to_mol(atoms))
        assert Chem.MolToSmiles(back, isomericSmiles=False) == Chem.MolToSmiles(Chem.MolFromSmiles(smiles),
                                                                               isomericSmiles=False)
    assert confs[0].info["smiles"] == canonical_smiles(smiles)


def test_seed_is_reproducible_and_optimize_none_keeps_etkdg():
    a = smiles_to_atoms("CCCCO", seed=7)[0]
    b = smiles_to_atoms("CCCCO", seed=7)[0]
    c = smiles_to_atoms("CCCCO", seed=7, optimize=None)[0]
    np.testing.assert_allclose(a.positions, b.positions)
    assert not np.allclose(a.positions, c.positions)


@pytest.mark.parametrize("bad", ["C1CC", "C(C", "Cl(Cl)(Cl)(Cl)(Cl)Cl", "xyz", "", None])
def test_invalid_smiles_is_a_one_line_user_error(bad):
    with pytest.raises(SmilesError) as err:
        smiles_to_atoms(bad)
    assert isinstance(err.value, UserError) and "\n" not in str(err.value)
    assert canonical_smiles(bad) is None


def test_bad_arguments():
    with pytest.raises(UserError):
        smiles_to_atoms("CCO", n_conformers=0)
    with pytest.raises(UserError):
        smiles_to_atoms("CCO", optimize="uff-ish")


def test_unperceivable_bonds_raise_embedding_error():
    atoms = smiles_to_atoms("CCO")[0]
    atoms.positions *= 3.0  # atoms far apart: no bonds, radicals cannot be charge-balanced
    with pytest.raises(EmbeddingError):
        atoms_to_mol(atoms, charge=5)


@pytest.mark.parametrize("smiles", ["c1ccccc1", "C1=CC=CC=C1", "OCC", "C[C@H](N)C(=O)O", "[NH4+]", " CC(=O)O "])
def test_parse_smiles_returns_a_molecule(smiles):
    mol = parse_smiles(smiles)
    assert isinstance(mol, Chem.Mol)
    expected = Chem.MolFromSmiles(smiles.strip())
    assert mol.GetNumAtoms() == expected.GetNumAtoms()
    assert Chem.MolToSmiles(mol) == Chem.MolToSmiles(expected) == canonical_smiles(smiles)
