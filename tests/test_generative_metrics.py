"""Generation metrics (MolMIM and MOSES protocols) on hand-made SMILES lists with known answers."""
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen

from mindsponge_mm.generative import metrics as M


def test_validity_uniqueness_unique_at_and_novelty():
    smiles = ["CCO", "C1CC", "OCC", "xx", "CCN", "c1ccccc1", "", "CCC"]
    # valid in order: CCO, CCO, CCN, benzene, CCC (5 of 8); distinct: 4
    assert M.validity(smiles) == pytest.approx(5 / 8)
    assert M.uniqueness(smiles) == pytest.approx(4 / 5)
    assert M.unique_at(smiles, 2) == pytest.approx(1 / 2)  # the first two valid are both ethanol
    assert M.unique_at(smiles, 3) == pytest.approx(2 / 3)
    assert M.unique_at(smiles, 1000) == pytest.approx(4 / 5)
    assert M.novelty(smiles, {"CCO", "CCC"}) == pytest.approx(2 / 4)  # CCN and benzene are new
    assert M.validity([]) == M.uniqueness([]) == M.novelty([], set()) == 0.0


def test_effective_novelty_counts_new_distinct_non_seed_molecules_per_draw():
    samples = ["OCC", "CCO", "CCN", "NCC", "CCCl", "C1CC", "c1ccncc1", "CCC"]
    m = M.sampling_metrics(samples, seed="CCO", training={"CCC", "c1ccncc1"})
    # valid 7; distinct CCO, CCN, CCCl, pyridine, CCC (5); novel CCO, CCN, CCCl (3)
    assert m["validity"] == pytest.approx(7 / 8)
    assert m["uniqueness"] == pytest.approx(5 / 7)
    assert m["novelty"] == pytest.approx(3 / 5)
    assert m["non_identicality"] == pytest.approx(5 / 7)
    assert m["effective_novelty"] == pytest.approx(2 / 8)  # CCN and CCCl
    assert M.sampling_metrics(["CCO", "OCC"], seed="CCO")["effective_novelty"] == 0.0


def test_internal_diversity():
    # methane and ammonia share no ECFP4 bit; identical molecules have similarity 1
    assert M.internal_diversity(["C", "N"]) == pytest.approx(1.0)
    assert M.internal_diversity(["CCO", "OCC", "N", "bad("]) == pytest.approx(1 - 1 / 3)
    assert M.internal_diversity(["CCO", "CCO"]) == pytest.approx(0.0)
    a, b, c = "c1ccccc1CCO", "c1ccccc1CCN", "CC(=O)Nc1ccc(O)cc1"
    expected = 1 - (M.tanimoto(a, b) + M.tanimoto(a, c) + M.tanimoto(b, c)) / 3
    assert M.internal_diversity([a, b, c]) == pytest.approx(expected)
    assert M.internal_diversity(["CCO"]) == 0.0


def test_moses_filters_on_known_failures():
    f = M.MosesFilters(mcf=False)
    assert "MCF not applied" in f.applied
    assert f.reason("O=C1C(=Cc2ccccc2)SC(=S)N1").startswith("PAINS ene_rhod")  # benzylidene rhodanine
    assert f.reason("Oc1ccccc1N=Nc1ccccc1").startswith("PAINS azo")
    assert f.reason("C[N+](C)(C)C") == "charge"
    assert f.reason("CC(=O)[O-]") == "charge"
    assert f.reason("C1CCCCCCC1") == "ring size"  # 8-membered ring
    assert f.reason("C1CCCCCC1") is None  # 7 is allowed
    assert f.reason("CCI") == "atoms" and f.reason("CP(C)C") == "atoms"
    assert f.reason("C1CC") == "invalid"
    drugs = ["CC(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1"]  # paracetamol, ibuprofen
    assert all(f(s) for s in drugs)
    assert M.filters_fraction(drugs + ["C1CCCCCCC1", "CCI", "xx"], f) == pytest.approx(2 / 4)
    if M.molsets_file("metrics/mcf.csv") is not None:  # MOSES's MCF rules, when molsets is installed
        full = M.MosesFilters()
        assert full.reason("CC=CC#N").startswith("MCF") and full("CC(=O)Nc1ccc(O)cc1")


def test_penalized_logp_by_hand():
    smiles = "C1CCCCCCC1CC(=O)O"  # an 8-membered ring: cycle penalty 2
    mol = Chem.MolFromSmiles(smiles)
    assert M.cycle_penalty(mol) == 2.0 and M.cycle_penalty("CCO") == 0.0
    logp, sa = Crippen.MolLogP(mol), M.sa_score(mol)
    assert 1.0 <= sa <= 10.0
    hand = ((logp - 2.4570953396190123) / 1.434324401111988 + (-sa + 3.0525811293166134) / 0.8335207024513095
            + (-2.0 + 0.0485696876403053) / 0.2860212110245455)
    assert M.penalized_logp(smiles) == pytest.approx(hand, abs=1e-9)
    assert M.penalized_logp("xx") != M.penalized_logp("xx")  # NaN
