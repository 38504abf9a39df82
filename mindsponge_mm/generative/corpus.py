"""SMILES corpora: RDKit's bundled NCI list, any .smi / .csv file, or MOSES.

``moses`` (the same as ``moses:train``), ``moses:test`` and ``moses:test_scaffolds`` read the CSV
files that the ``molsets`` package ships (``moses/dataset/data/{split}.csv.gz``). Only those data
files are read; the package's own code is never imported (it needs old torch packages), so
``pip install --no-deps molsets`` is enough. MOSES molecules are already canonical and
standardised, so they are not passed through RDKit unless ``standardize=True`` is asked.
"""
from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import os
from pathlib import Path

from rdkit import Chem, RDLogger

from ..errors import DataError

DEFAULT_CORPUS = "rdkit:NCI/first_5K.smi"
MOSES_SPLITS = ("train", "test", "test_scaffolds")
MOSES_INSTALL = "pip install --no-deps molsets"


def resolve(path: str) -> str:
    """``rdkit:REL`` -> a file under ``rdkit.RDConfig.RDDataDir``; other paths unchanged."""
    if path.startswith("rdkit:"):
        from rdkit import RDConfig

        return os.path.join(RDConfig.RDDataDir, path[len("rdkit:"):])
    return path


def is_moses(path: str) -> bool:
    """True for ``moses`` and ``moses:SPLIT``."""
    return path == "moses" or path.startswith("moses:")


def moses_split(path: str) -> str:
    """The MOSES split named by ``moses`` / ``moses:SPLIT`` (a DataError for an unknown split)."""
    split = path.partition(":")[2] or "train"
    if split not in MOSES_SPLITS:
        raise DataError(f"corpus {path!r}: unknown MOSES split {split!r}; use one of "
                        + ", ".join(f"moses:{s}" for s in MOSES_SPLITS))
    return split


def moses_file(split: str = "train") -> Path:
    """The gzipped CSV of a MOSES split inside the installed ``molsets`` package (found, not imported)."""
    try:
        spec = importlib.util.find_spec("moses")  # a top-level spec lookup does not run the package
    except (ImportError, ValueError):
        spec = None
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        file = Path(root) / "dataset" / "data" / f"{split}.csv.gz"
        if file.exists():
            return file
    raise DataError(f"corpus 'moses:{split}' needs the MOSES data files of the molsets package; install them "
                    f"with: {MOSES_INSTALL}")


def read_moses(split: str = "train") -> list[str]:
    """The SMILES column of a MOSES split, in file order (a streaming read, no RDKit).

    The files hold one column ``SMILES`` (older releases add ``SPLIT``); every row is returned as
    it is written. Reading the 1,584,663 training molecules takes 0.7 s on the 2-core machine
    (1.5 s with the de-duplication of :func:`load_corpus`; 2026-12-06).
    """
    file = moses_file(split)
    with gzip.open(file, "rt", newline="") as f:
        header = f.readline().rstrip("\r\n").split(",")
        if header == ["SMILES"]:  # one column: lines are the SMILES
            return [line for line in f.read().split("\n") if line]
        try:
            col = [h.strip().lower() for h in header].index("smiles")
        except ValueError:
            raise DataError(f"{file}: no SMILES column (columns: {', '.join(header)}); reinstall with "
                            f"{MOSES_INSTALL}") from None
        return [row[col] for row in csv.reader(f) if row]


def _read_raw(path: str, column: str) -> list[str]:
    if is_moses(path):
        return read_moses(moses_split(path))
    file = Path(resolve(path))
    if not file.exists():
        raise DataError(f"{file}: corpus file not found; give a .smi or .csv path, or 'moses' "
                        f"(default {DEFAULT_CORPUS})")
    opener = gzip.open if file.suffix.lower() == ".gz" else open
    kind = Path(file.stem).suffix.lower() if file.suffix.lower() == ".gz" else file.suffix.lower()
    with opener(file, "rt", newline="") as f:
        text = f.read()
    if kind == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fields = reader.fieldnames or []
        name = next((c for c in fields if c.lower() == column.lower()), None)
        if name is None:
            raise DataError(f"{file}: no column {column!r} (columns: {', '.join(fields)}); set corpus.column")
        return [row[name] for row in reader]
    out = []
    for line in text.splitlines():
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
                limit: int | None = None, standardize_smiles: bool | None = None, skip: int = 0) -> list[str]:
    """Unique SMILES of a corpus, in file order: the ``limit`` that follow the first ``skip``.

    ``standardize_smiles`` (default: True for files, False for MOSES, which is already canonical):
    pass every entry through RDKit (canonical SMILES, largest fragment if asked) and drop the ones
    it rejects. Without it, entries are only de-duplicated.
    """
    if standardize_smiles is None:
        standardize_smiles = not is_moses(path)
    raw = _read_raw(path, column)
    if not standardize_smiles:
        out = list(dict.fromkeys(s for s in raw if s))[skip:]
        out = out[:limit] if limit is not None else out
    else:
        RDLogger.DisableLog("rdApp.*")
        try:
            seen, out = set(), []
            for s in raw:
                c = standardize(s, largest_fragment)
                if c is not None and c not in seen:
                    seen.add(c)
                    if len(seen) <= skip:
                        continue
                    out.append(c)
                    if limit is not None and len(out) >= limit:
                        break
        finally:
            RDLogger.EnableLog("rdApp.*")
    if not out:
        after = f" after the first {skip} (corpus.skip)" if skip else ""
        raise DataError(f"{path}: the corpus holds no valid SMILES{after}; check the file, corpus.column and "
                        f"corpus.skip")
    return out
