"""Objectives and the GFN2-xTB physics scorer."""
import sys

import numpy as np
import pytest

from mindsponge_mm.errors import UserError
from mindsponge_mm.generative.scoring import Objective, PhysicsScore, physics_calculator, plogp, relax, strain_score


def test_unknown_objective_is_a_one_line_error():
    with pytest.raises(UserError) as err:
        Objective({"qde": 1.0})
    msg = str(err.value)
    assert "\n" not in msg and "'qde'" in msg and "qed" in msg and "plogp" in msg
    with pytest.raises(UserError):
        Objective({})
    with pytest.raises(UserError, match="outside"):
        Objective({"qed": 1.0}, seed="CCO", similarity_min=1.5)


def test_penalized_logp_objective():
    obj = Objective({"plogp": 1.0}, seed="CCOc1ccccc1", similarity_min=0.2)
    row = obj.details("CCOc1ccccc1")
    assert row["score"] == pytest.approx(plogp("CCOc1ccccc1")) and row["similarity"] == 1.0
    assert obj(["C1CC"])[0] == obj.invalid_score


def test_constrained_qed_score_against_rdkit_directly():
    """score = QED − 10·(0.1 + 0.4 − sim) below similarity 0.4, with QED and ECFP4 (Morgan radius 2,
    2048 bits) Tanimoto computed here from RDKit alone; scoring without the report columns changes no score."""
    from rdkit import Chem, DataStructs
    from rdkit.Chem import QED, rdFingerprintGenerator

    seed = "CC(=O)Nc1ccc(O)cc1"
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fp = lambda s: gen.GetFingerprint(Chem.MolFromSmiles(s))  # noqa: E731
    obj = Objective({"qed": 1.0}, seed=seed, similarity_min=0.4)
    molecules = [seed, "CC(=O)Nc1ccc(OC)cc1", "c1ccccc1CCN", "CCCCCCCCCC"]
    expected = []
    for smi in molecules:
        sim = DataStructs.TanimotoSimilarity(fp(smi), fp(seed))
        q = QED.qed(Chem.MolFromSmiles(smi))
        expected.append(q - (10.0 * (0.1 + 0.4 - sim) if sim < 0.4 else 0.0))
        row = obj.details(smi)
        assert row["similarity"] == pytest.approx(sim, abs=1e-12) and "logp" in row
    assert expected[2] < 0 < expected[1]  # both sides of the constraint are exercised
    np.testing.assert_allclose(obj(molecules), expected, atol=1e-12)
    np.testing.assert_allclose([obj.details(s)["score"] for s in molecules], expected, atol=1e-12)
    assert "logp" not in obj.details(molecules[1], report=False)


def test_missing_tblite_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tblite.ase", None)
    with pytest.raises(UserError) as err:
        physics_calculator("xtb")
    assert "pip install tblite" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError):
        PhysicsScore("emt", optimizer="bfgs2")


def test_xtb_strain_score_of_ethanol():
    pytest.importorskip("tblite.ase")
    from mindsponge_mm.interfaces.rdkit import smiles_to_atoms

    score = strain_score(n_conformers=1)
    ok = score("CCO")
    assert ok["scorable"] and ok["heavy_atoms"] == 3
    assert 0.0 <= ok["relaxation_per_heavy_atom"] < 0.1  # eV per heavy atom: MMFF is close to xTB
    assert ok["score"] == pytest.approx(-ok["relaxation_per_heavy_atom"])
    # a conformer already relaxed with xTB releases nothing more
    atoms = smiles_to_atoms("CCO", seed=0)[0]
    e0, e1 = relax(atoms, score.calc, fmax=0.01, steps=300, optimizer="lbfgs")
    assert e1 <= e0
    again = relax(atoms, score.calc, fmax=0.01, steps=300, optimizer="lbfgs")
    assert 0.0 <= (again[0] - again[1]) / 3 < 1e-4
    assert not score("C1CC")["scorable"]
    obj = Objective({"qed": 1.0, "physics": 10.0}, physics=score)
    assert np.isfinite(obj(["CCO"])[0])
