"""Atomic file writing: outputs are never left half-written."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, on error delete it.

    The rename is atomic on POSIX, so readers see either the old file or the complete new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers (h5py, sqlite) create the file themselves
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure as PNG atomically, close it, and return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def read_safetensors(path: str | os.PathLike, missing_hint: str) -> tuple[dict, dict]:
    """(JSON metadata under the ``mindsponge_mm`` key or {}, tensors) of a safetensors file.

    A missing file is a one-line UserError ending in ``missing_hint``; an unreadable one too.
    """
    import json

    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    from .errors import UserError

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: {missing_hint}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get("mindsponge_mm")
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable checkpoint ({err})") from None
    return (json.loads(raw) if raw else {}), tensors
