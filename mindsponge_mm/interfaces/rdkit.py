"""RDKit bridge: SMILES to 3D ``ase.Atoms`` (ETKDG) and ``ase.Atoms`` back to an RDKit molecule.

Positions are in Å. Invalid SMILES and molecules that fail to embed raise
:class:`SmilesError` / :class:`EmbeddingError` (both :class:`~mindsponge_mm.errors.UserError`).
"""
from __future__ import annotations

import numpy as np
from ase import Atoms
from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem

from ..errors import UserError

__all__ = ["SmilesError", "EmbeddingError", "parse_smiles", "mol_or_none", "canonical_smiles", "smiles_to_atoms", "mol_to_atoms",
           "atoms_to_mol"]


class SmilesError(UserError):
    """A SMILES string RDKit cannot parse or sanitise."""


class EmbeddingError(UserError):
    """A molecule for which ETKDG finds no 3D conformer, or atoms whose bonds cannot be perceived."""


def parse_smiles(smiles: str) -> Chem.Mol:
    """The sanitised RDKit molecule of ``smiles``; a :class:`SmilesError` if it is not valid."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise SmilesError(f"empty or non-string SMILES {smiles!r}; give a SMILES string such as 'CCO'")
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(smiles.strip())
    finally:
        RDLogger.EnableLog("rdApp.*")
    if mol is None:
        raise SmilesError(f"invalid SMILES {smiles!r}: RDKit cannot parse or sanitise it; check brackets, ring "
                          f"closures and valences")
    return mol


def mol_or_none(smiles: str) -> Chem.Mol | None:
    """The sanitised RDKit molecule, or None for an invalid, empty or atom-less string (never raises,
    logs nothing)."""
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(smiles)
    finally:
        RDLogger.EnableLog("rdApp.*")
    return mol if mol is not None and mol.GetNumAtoms() > 0 else None


def canonical_smiles(smiles: str) -> str | None:
    """RDKit canonical SMILES, or None for an invalid or empty string (never raises)."""
    mol = mol_or_none(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def mol_to_atoms(mol: Chem.Mol, conf_id: int = -1) -> Atoms:
    """One conformer of an RDKit molecule with 3D coordinates as ``ase.Atoms`` (positions in Å)."""
    numbers = [a.GetAtomicNum() for a in mol.GetAtoms()]
    positions = np.asarray(mol.GetConformer(conf_id).GetPositions(), dtype=float)
    atoms = Atoms(numbers=numbers, positions=positions)
    charge = Chem.GetFormalCharge(mol)
    if charge:
        atoms.info["charge"] = int(charge)
    return atoms


def smiles_to_atoms(smiles: str, n_conformers: int = 1, seed: int = 0, optimize: str | None = "mmff",
                    max_iterations: int = 500) -> list[Atoms]:
    """3D conformers of ``smiles`` with explicit hydrogens, as a list of ``ase.Atoms`` (positions in Å).

    Hydrogens are added first, then ETKDG (v3) embeds ``n_conformers`` conformers with random
    seed ``seed``. ``optimize="mmff"`` relaxes each with MMFF94 (UFF where MMFF lacks parameters);
    ``None`` keeps the ETKDG geometry. ``atoms.info`` holds ``smiles`` (canonical) and ``conformer``.
    """
    if n_conformers < 1:
        raise UserError(f"n_conformers = {n_conformers}; it must be >= 1")
    if optimize not in ("mmff", None):
        raise UserError(f"optimize = {optimize!r}; use 'mmff' or None")
    mol = Chem.AddHs(parse_smiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    conf_ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=int(n_conformers), params=params))
    if not conf_ids:  # a second try with random starting coordinates helps for cages and large rings
        params.useRandomCoords = True
        conf_ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=int(n_conformers), params=params))
    if not conf_ids:
        raise EmbeddingError(f"ETKDG found no 3D conformer for {smiles!r}; try another seed or a less strained "
                             f"molecule")
    if optimize == "mmff":
        if AllChem.MMFFHasAllMoleculeParams(mol):
            AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=max_iterations)
        elif AllChem.UFFHasAllMoleculeParams(mol):
            AllChem.UFFOptimizeMoleculeConfs(mol, maxIters=max_iterations)
    canonical = Chem.MolToSmiles(Chem.RemoveHs(mol))
    out = []
    for k, cid in enumerate(conf_ids):
        atoms = mol_to_atoms(mol, cid)
        atoms.info.update(smiles=canonical, conformer=k)
        out.append(atoms)
    return out


def atoms_to_mol(atoms: Atoms, charge: int | None = None, perceive_bonds: bool = True) -> Chem.Mol:
    """An RDKit molecule with one conformer from ``atoms`` (positions in Å).

    With ``perceive_bonds`` the connectivity and bond orders come from ``rdDetermineBonds``
    (xyz2mol); ``charge`` defaults to ``atoms.info["charge"]`` or 0. A molecule whose bond
    orders cannot be assigned raises :class:`EmbeddingError`.
    """
    from rdkit.Chem import rdDetermineBonds

    if charge is None:
        charge = int(atoms.info.get("charge", 0))
    mol = Chem.RWMol()
    for z in atoms.numbers:
        mol.AddAtom(Chem.Atom(int(z)))
    conf = Chem.Conformer(len(atoms))
    for i, p in enumerate(np.asarray(atoms.positions, dtype=float)):
        conf.SetAtomPosition(i, [float(x) for x in p])
    mol.AddConformer(conf, assignId=True)
    mol = mol.GetMol()
    if not perceive_bonds:
        return mol
    try:
        rdDetermineBonds.DetermineBonds(mol, charge=int(charge))
    except (ValueError, RuntimeError) as err:
        formula = atoms.get_chemical_formula()
        raise EmbeddingError(f"cannot assign bonds to {formula} with charge {charge} ({err}); check the geometry "
                             f"and the total charge") from None
    return mol
