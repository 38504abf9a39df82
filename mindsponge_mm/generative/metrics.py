"""Generation metrics as MolMIM and MOSES report them, on RDKit canonical SMILES.

Every function takes SMILES strings (possibly invalid: an invalid string counts as invalid and
never raises) and returns fractions in [0, 1]. "Valid" means that RDKit parses and sanitises the
string into a molecule with at least one atom; molecules are compared by their canonical SMILES.

Sampling around a seed (MolMIM's protocol). For the N strings ``S`` decoded around one seed, with
training set ``T``:

* validity          = |valid S| / N
* uniqueness        = |unique valid S| / |valid S|
* novelty           = |unique valid S not in T| / |unique valid S|
* non-identicality  = |valid S != seed| / |valid S|
* effective novelty = |unique valid S not in T and != seed| / N: the fraction of the N draws that
  yield a new molecule (valid, counted once, absent from training and different from the seed).

Sampling from the prior (MOSES's protocol), for N generated strings:

* :func:`validity` = |valid| / N
* :func:`unique_at` (unique@k) = |distinct canonical SMILES among the first k valid ones| / min(k, |valid|)
* :func:`novelty` = |distinct valid not in T| / |distinct valid|
* :func:`internal_diversity` = 1 − mean ECFP4 Tanimoto similarity over all unordered pairs of
  distinct indices i < j of the valid molecules (duplicates included, as drawn). MOSES averages the
  full n × n matrix including the n self-similarities of 1, which gives a value lower by
  (1 − mean)/n: 1e-4 for 10,000 molecules.
* :func:`filters_fraction`: the fraction of valid molecules that pass :class:`MosesFilters`.

Reconstruction of held-out molecules: exact canonical match, and ECFP4 Tanimoto similarity
>= 0.9 / 0.8 / 0.7 (an exact match has similarity 1, an invalid decoding 0).

ECFP4 everywhere is RDKit's Morgan fingerprint of radius 2 folded to 2048 bits (MOSES uses 1024
bits for its internal diversity; the difference is small for drug-like molecules).

Penalized logP (:func:`penalized_logp`), as in the JT-VAE and GCPN benchmarks:
``(logP − 2.4571)/1.4343 + (−SA + 3.0526)/0.8335 + (−cycle + 0.0486)/0.2860`` where logP is
Crippen's (``Crippen.MolLogP``), SA the synthetic accessibility score (1 easy … 10 hard; RDKit's
``Contrib/SA_Score``), and cycle = max(0, size of the largest ring − 6) counted on the smallest set
of smallest rings. Each term is standardised by the mean and standard deviation of that term on
the ZINC-250k training set (the constants those benchmarks use), so the score is comparable with
published numbers.
"""
from __future__ import annotations

import csv
import importlib.util
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import Crippen, rdFingerprintGenerator

from ..interfaces.rdkit import canonical_smiles, mol_or_none

_FPGEN = None


def fingerprint(smiles_or_mol):
    """ECFP4 bit vector (Morgan radius 2, 2048 bits) of a SMILES or RDKit Mol; None when invalid."""
    global _FPGEN
    if _FPGEN is None:
        _FPGEN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    mol = mol_or_none(smiles_or_mol) if isinstance(smiles_or_mol, str) else smiles_or_mol
    return None if mol is None else _FPGEN.GetFingerprint(mol)


def tanimoto(a, b) -> float:
    """ECFP4 Tanimoto similarity of two SMILES or RDKit Mols (0.0 when either is invalid)."""
    fa, fb = fingerprint(a), fingerprint(b)
    return 0.0 if fa is None or fb is None else float(DataStructs.TanimotoSimilarity(fa, fb))


def _frac(a: float, b: float) -> float:
    return a / b if b else 0.0


def canonical_list(smiles: Sequence[str]) -> list[str | None]:
    """Canonical SMILES of each string, None where it is invalid."""
    return [canonical_smiles(s) for s in smiles]


# ---------------------------------------------------------------- MolMIM: sampling around a seed
def sampling_metrics(samples: Sequence[str], seed: str | None = None, training: Iterable[str] = ()) -> dict:
    """validity, uniqueness, novelty, non_identicality, effective_novelty (fractions, see module doc).

    ``training``: canonical SMILES of the training set (a set is fastest).
    """
    n = len(samples)
    canon = canonical_list(samples)
    valid = [c for c in canon if c is not None]
    unique = list(dict.fromkeys(valid))
    train = training if isinstance(training, (set, frozenset)) else set(training)
    seed_c = canonical_smiles(seed) if seed is not None else None
    novel = [c for c in unique if c not in train]
    effective = [c for c in novel if c != seed_c]
    return {
        "n": n,
        "validity": _frac(len(valid), n),
        "uniqueness": _frac(len(unique), len(valid)),
        "novelty": _frac(len(novel), len(unique)),
        "non_identicality": _frac(sum(c != seed_c for c in valid), len(valid)),
        "effective_novelty": _frac(len(effective), n),
    }


def reconstruction(targets: Sequence[str], decoded: Sequence[str], thresholds=(0.9, 0.8, 0.7)) -> dict:
    """exact, validity and sim>=t fractions for decoded strings vs target SMILES (same order)."""
    n = len(targets)
    if n == 0:
        return {"n": 0, "exact": 0.0, "validity": 0.0, **{f"sim>={t}": 0.0 for t in thresholds}}
    exact = valid = 0
    sims = []
    for t, d in zip(targets, decoded):
        tc, dc = canonical_smiles(t), canonical_smiles(d)
        valid += dc is not None
        exact += dc is not None and dc == tc
        sims.append(1.0 if dc is not None and dc == tc else tanimoto(tc, dc) if tc and dc else 0.0)
    out = {"n": n, "exact": exact / n, "validity": valid / n}
    for th in thresholds:
        out[f"sim>={th}"] = sum(s >= th for s in sims) / n
    return out


# ---------------------------------------------------------------- MOSES: sampling from the prior
def validity(smiles: Sequence[str]) -> float:
    """Fraction of strings RDKit accepts."""
    return _frac(sum(c is not None for c in canonical_list(smiles)), len(smiles))


def uniqueness(smiles: Sequence[str]) -> float:
    """Distinct canonical SMILES / valid strings."""
    valid = [c for c in canonical_list(smiles) if c is not None]
    return _frac(len(set(valid)), len(valid))


def unique_at(smiles: Sequence[str], k: int) -> float:
    """MOSES's unique@k: distinct canonical SMILES among the first ``k`` valid strings, over min(k, valid)."""
    valid = [c for c in canonical_list(smiles) if c is not None][: int(k)]
    return _frac(len(set(valid)), len(valid))


def novelty(smiles: Sequence[str], training: Iterable[str]) -> float:
    """Distinct valid molecules absent from ``training`` (canonical SMILES) / distinct valid molecules."""
    train = training if isinstance(training, (set, frozenset)) else set(training)
    unique = {c for c in canonical_list(smiles) if c is not None}
    return _frac(sum(c not in train for c in unique), len(unique))


def internal_diversity(smiles: Sequence[str]) -> float:
    """1 − mean ECFP4 Tanimoto over unordered pairs i < j of the valid molecules; 0.0 below two molecules.

    Cost: n²/2 similarities (10,000 molecules: about a minute on one core).
    """
    fps = [fp for fp in (fingerprint(s) for s in smiles) if fp is not None]
    n = len(fps)
    if n < 2:
        return 0.0
    total = 0.0
    for i in range(n - 1):
        total += float(np.sum(DataStructs.BulkTanimotoSimilarity(fps[i], fps[i + 1:])))
    return 1.0 - total / (n * (n - 1) / 2)


# ---------------------------------------------------------------- MOSES filters
MOSES_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})


def molsets_file(relative: str) -> Path | None:
    """A data file of the installed ``molsets`` package (``moses/<relative>``), found without importing
    its code; None when the package or the file is absent."""
    spec = importlib.util.find_spec("moses")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.exists():
            return path
    return None


class MosesFilters:
    """The rules MOSES used to build its dataset, applied to one molecule.

    A molecule passes when it is valid and

    1. has only the atoms C, N, S, O, F, Cl, Br, H;
    2. has no atom with a formal charge;
    3. has no ring (in RDKit's smallest set of smallest rings) of 8 or more atoms;
    4. matches none of the PAINS patterns (RDKit's ``FilterCatalog`` PAINS A, B and C: 480 patterns
       of the Baell and Holloway filter families);
    5. matches none of MOSES's medicinal-chemistry filters (MCF), matched on the molecule with
       explicit hydrogens. Their SMARTS are read from the data file ``moses/metrics/mcf.csv`` of
       the installed ``molsets`` package; without it (or with ``mcf=False``) this rule is skipped
       and :attr:`applied` says so.

    ``mcf``: True (use molsets' file when installed), False, or the path of a CSV with a ``smarts`` column.
    """

    def __init__(self, mcf: bool | str | os.PathLike = True):
        from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

        params = FilterCatalogParams()
        params.AddCatalog(FilterCatalogParams.FilterCatalogs.PAINS)
        self.pains = FilterCatalog(params)
        path = molsets_file("metrics/mcf.csv") if mcf is True else (Path(mcf) if mcf else None)
        self.mcf = []
        if path is not None:
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    pattern = Chem.MolFromSmarts(row["smarts"])
                    if pattern is not None:
                        self.mcf.append((row.get("names", ""), pattern))
        rules = ["atoms C N S O F Cl Br H", "no charged atom", "no ring of 8+ atoms", "PAINS (RDKit A/B/C)"]
        rules.append(f"MCF ({len(self.mcf)} SMARTS)" if self.mcf else "MCF not applied (molsets not installed)")
        self.applied = "; ".join(rules)

    def reason(self, smiles_or_mol) -> str | None:
        """Why the molecule fails (``"invalid"``, ``"atoms"``, ``"charge"``, ``"ring size"``,
        ``"PAINS <name>"``, ``"MCF <name>"``), or None when it passes."""
        mol = mol_or_none(smiles_or_mol) if isinstance(smiles_or_mol, str) else smiles_or_mol
        if mol is None:
            return "invalid"
        if any(a.GetSymbol() not in MOSES_ATOMS for a in mol.GetAtoms()):
            return "atoms"
        if any(a.GetFormalCharge() != 0 for a in mol.GetAtoms()):
            return "charge"
        if any(len(ring) >= 8 for ring in mol.GetRingInfo().AtomRings()):
            return "ring size"
        match = self.pains.GetFirstMatch(mol)
        if match is not None:
            return f"PAINS {match.GetDescription()}"
        if self.mcf:
            with_h = Chem.AddHs(mol)
            for name, pattern in self.mcf:
                if with_h.HasSubstructMatch(pattern):
                    return f"MCF {name}"
        return None

    def __call__(self, smiles_or_mol) -> bool:
        return self.reason(smiles_or_mol) is None


def filters_fraction(smiles: Sequence[str], filters: MosesFilters | None = None) -> float:
    """Fraction of the valid molecules that pass :class:`MosesFilters` (MOSES's "Filters")."""
    filters = filters or MosesFilters()
    mols = [m for m in (mol_or_none(s) for s in smiles) if m is not None]
    return _frac(sum(filters(m) for m in mols), len(mols))


# ---------------------------------------------------------------- penalized logP
LOGP_MEAN, LOGP_STD = 2.4570953396190123, 1.434324401111988
SA_MEAN, SA_STD = -3.0525811293166134, 0.8335207024513095  # of −SA
CYCLE_MEAN, CYCLE_STD = -0.0485696876403053, 0.2860212110245455  # of −cycle

_SASCORER = None


def sa_score(smiles_or_mol) -> float:
    """Synthetic accessibility (1 easy … 10 hard) with RDKit's Contrib SA_Score; NaN when invalid."""
    global _SASCORER
    mol = mol_or_none(smiles_or_mol) if isinstance(smiles_or_mol, str) else smiles_or_mol
    if mol is None:
        return float("nan")
    if _SASCORER is None:
        from rdkit import RDConfig

        path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
        spec = importlib.util.spec_from_file_location("rdkit_contrib_sascorer", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SASCORER = module
    return float(_SASCORER.calculateScore(mol))


def cycle_penalty(smiles_or_mol) -> float:
    """max(0, largest ring size − 6) over RDKit's smallest set of smallest rings; NaN when invalid."""
    mol = mol_or_none(smiles_or_mol) if isinstance(smiles_or_mol, str) else smiles_or_mol
    if mol is None:
        return float("nan")
    largest = max((len(r) for r in mol.GetRingInfo().AtomRings()), default=0)
    return float(max(0, largest - 6))


def penalized_logp(smiles_or_mol) -> float:
    """Standardised logP − SA − cycle penalty (see the module doc); NaN for an invalid SMILES."""
    mol = mol_or_none(smiles_or_mol) if isinstance(smiles_or_mol, str) else smiles_or_mol
    if mol is None:
        return float("nan")
    logp = (Crippen.MolLogP(mol) - LOGP_MEAN) / LOGP_STD
    sa = (-sa_score(mol) - SA_MEAN) / SA_STD
    cycle = (-cycle_penalty(mol) - CYCLE_MEAN) / CYCLE_STD
    return float(logp + sa + cycle)
