"""SMILES corpora: RDKit's bundled NCI list, any .smi / .csv file, or MOSES (``molsets``)."""
from __future__ import annotations

import csv
import os
from pathlib import Path

from rdkit import Chem, RDLogger

from ..errors import DataError

DEFAULT_CORPUS = "rdkit:NCI/first_5K.smi"


def resolve(path: str) -> str:
    """``rdkit:REL`` -> a file under ``rdkit.RDConfig.RDDataDir``; other paths unchanged."""
    if path.startswith("rdkit:"):
        from rdkit import RDConfig

        return os.path.join(RDConfig.RDDataDir, path[len("rdkit:"):])
    return path


def _read_raw(path: str, column: str) -> list[str]:
    if path in ("moses", "moses:train", "moses:test"):
        try:
            import moses  # the molsets package
        except ImportError:
            raise DataError("corpus 'moses' needs the molsets package; pip install molsets, or use a .smi/.csv "
                            "file") from None
        return list(moses.get_dataset("test" if path.endswith("test") else "train"))
    file = Path(resolve(path))
    if not file.exists():
        raise DataError(f"{file}: corpus file not found; give a .smi or .csv path (default {DEFAULT_CORPUS})")
    if file.suffix.lower() == ".csv":
        with open(file, newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            name = next((c for c in fields if c.lower() == column.lower()), None)
            if name is None:
                raise DataError(f"{file}: no column {column!r} (columns: {', '.join(fields)}); set corpus.column")
            return [row[name] for row in reader]
    out = []
    for line in file.read_text().splitlines():
        parts = line.split()
        if parts and not parts[0].lower().startswith("smiles"):
            out.append(parts[0])
    return out


def standardize(smiles: str, largest_fragment: bool = True) -> str | None:
    """Canonical SMILES (largest fragment only if asked), or None when RDKit rejects it."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    if largest_fragment and "." in smiles:
        frags = Chem.GetMolFrags(mol, asMols=True)
        mol = max(frags, key=lambda m: m.GetNumHeavyAtoms())
    return Chem.MolToSmiles(mol)


def load_corpus(path: str = DEFAULT_CORPUS, column: str = "smiles", largest_fragment: bool = True,
                limit: int | None = None) -> list[str]:
    """Unique canonical SMILES of a corpus, in file order (invalid entries are dropped)."""
    RDLogger.DisableLog("rdApp.*")
    try:
        seen, out = set(), []
        for s in _read_raw(path, column):
            c = standardize(s, largest_fragment)
            if c is not None and c not in seen:
                seen.add(c)
                out.append(c)
                if limit is not None and len(out) >= limit:
                    break
    finally:
        RDLogger.EnableLog("rdApp.*")
    if not out:
        raise DataError(f"{path}: the corpus holds no valid SMILES; check the file and corpus.column")
    return out
