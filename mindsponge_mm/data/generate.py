"""``mindsponge-mm data generate``: rebuild a bundled dataset from its generator and seed.

The generators (and the exact recipe of each set) live in :mod:`.reference`.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import UserError
from .dataset import BUNDLED_DIR, AtomsDataset


def generate_dataset(name: str, out: str | Path | None = None, seed: int = 0, n_frames: int | None = None,
                     log=print) -> AtomsDataset:
    """Generate dataset ``name`` (``ethanol`` or ``copper``) and write it to ``out`` (.h5)."""
    from .reference import GENERATORS

    if name not in GENERATORS:
        raise UserError(f"no generator named {name!r}; choose one of {', '.join(sorted(GENERATORS))}")
    if name == "ethanol":
        try:
            import tblite.ase  # noqa: F401
        except ImportError:
            raise UserError("generating 'ethanol' needs tblite (GFN2-xTB); install it with: pip install -e '.[reference]'") from None
    spec = GENERATORS[name]
    n_frames = spec["default_frames"] if n_frames is None else int(n_frames)
    if n_frames < 1:
        raise UserError(f"--frames must be at least 1, got {n_frames}")
    out = Path(out) if out else BUNDLED_DIR / f"{name}.h5"
    from tqdm import tqdm

    start = time.perf_counter()
    with tqdm(total=n_frames, desc=f"generating {name}", unit="frame", disable=None) as bar:
        frames = spec["function"](n_frames=n_frames, seed=seed, progress=lambda done, total: bar.update(done - bar.n))
    for atoms in frames:
        atoms.arrays.pop("momenta", None)  # MD state, not a reference property
    metadata = {
        "name": name,
        "description": spec["description"],
        "seed": seed,
        "n_frames": n_frames,
        "command": f"mindsponge-mm data generate {name} --seed {seed} --frames {n_frames}",
    }
    ds = AtomsDataset.from_atoms(frames, out, metadata=metadata)
    log(f"wrote {out}: {len(ds)} frames in {time.perf_counter() - start:.1f} s")
    return ds
