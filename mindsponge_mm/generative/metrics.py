"""Generation metrics as MolMIM reports them, on canonical SMILES (invalid strings count as invalid).

For samples ``S`` (N strings, possibly invalid) around a seed, with training set ``T``:

* validity         = |valid S| / N
* uniqueness       = |unique valid S| / |valid S|
* novelty          = |unique valid S not in T| / |unique valid S|
* non-identicality = |valid S != seed| / |valid S|
* effective novelty = |unique valid S not in T and != seed| / N  (the fraction of draws that are useful)

Reconstruction of held-out molecules: exact canonical match, and ECFP4 (Morgan r=2, 2048 bits)
Tanimoto similarity >= 0.9 / 0.8 / 0.7 (an invalid decoding has similarity 0).
"""
from __future__ import annotations

from typing import Iterable, Sequence

from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import rdFingerprintGenerator

from ..interfaces.rdkit import canonical_smiles

_FPGEN = None


def fingerprint(smiles_or_mol):
    """ECFP4 bit vector (Morgan radius 2, 2048 bits) of a SMILES or RDKit Mol; None when invalid."""
    global _FPGEN
    if _FPGEN is None:
        _FPGEN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    mol = smiles_or_mol
    if isinstance(mol, str):
        RDLogger.DisableLog("rdApp.*")
        mol = Chem.MolFromSmiles(mol)
        RDLogger.EnableLog("rdApp.*")
    return None if mol is None else _FPGEN.GetFingerprint(mol)


def tanimoto(a: str, b: str) -> float:
    """ECFP4 Tanimoto similarity of two SMILES (0.0 when either is invalid)."""
    fa, fb = fingerprint(a), fingerprint(b)
    return 0.0 if fa is None or fb is None else float(DataStructs.TanimotoSimilarity(fa, fb))


def sampling_metrics(samples: Sequence[str], seed: str | None = None, training: Iterable[str] = ()) -> dict:
    """validity, uniqueness, novelty, non_identicality, effective_novelty (fractions, see module doc)."""
    n = len(samples)
    canon = [canonical_smiles(s) for s in samples]
    valid = [c for c in canon if c is not None]
    unique = list(dict.fromkeys(valid))
    train = set(training)
    seed_c = canonical_smiles(seed) if seed is not None else None
    novel = [c for c in unique if c not in train]
    effective = [c for c in novel if c != seed_c]
    frac = lambda a, b: a / b if b else 0.0  # noqa: E731
    return {
        "n": n,
        "validity": frac(len(valid), n),
        "uniqueness": frac(len(unique), len(valid)),
        "novelty": frac(len(novel), len(unique)),
        "non_identicality": frac(sum(c != seed_c for c in valid), len(valid)),
        "effective_novelty": frac(len(effective), n),
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
