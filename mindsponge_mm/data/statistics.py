"""Dataset statistics over a training split: atomrefs, mean energy per atom, force RMS;
and :func:`average_neighbors` (pairs per atom within a cutoff).

Results are cached as JSON beside the dataset (or in the user cache directory when
that folder is read-only), keyed by the dataset's content and the split indices.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from ..io_utils import cache_dir, write_text_atomic
from .dataset import AtomsDataset


@dataclasses.dataclass(frozen=True)
class Statistics:
    """Statistics of a training split (energies in eV, forces in eV/Å)."""

    elements: tuple[int, ...]  # atomic numbers, sorted
    atomrefs: dict[int, float]  # Z -> reference energy per atom, eV (least squares over the split)
    mean_energy_per_atom: float  # eV, after removing atomrefs
    std_energy_per_atom: float  # eV, after removing atomrefs
    force_rms: float | None  # eV/Å, root mean square of all force components; None without forces
    n_frames: int

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["atomrefs"] = {str(k): v for k, v in self.atomrefs.items()}
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Statistics":
        d = json.loads(text)
        d["atomrefs"] = {int(k): float(v) for k, v in d["atomrefs"].items()}
        d["elements"] = tuple(d["elements"])
        return cls(**d)


def composition_matrix(ds: AtomsDataset, indices: np.ndarray, elements: list[int]) -> np.ndarray:
    """[len(indices), len(elements)] count of each element in each frame (vectorised, no atom loop)."""
    z_to_col = np.full(max(elements) + 1, -1)
    z_to_col[elements] = np.arange(len(elements))
    frame_of_atom = np.repeat(np.arange(len(ds)), ds.n_atoms)
    counts = np.zeros((len(ds), len(elements)))
    np.add.at(counts, (frame_of_atom, z_to_col[ds.atomic_numbers]), 1.0)
    return counts[indices]


def compute_statistics(ds: AtomsDataset, indices=None, energy_key: str = "energy", forces_key: str = "forces") -> Statistics:
    """Fit atomrefs by least squares ``E ≈ Σ_Z n_Z(frame) · e_Z`` over ``indices`` and summarise.

    When every frame has the same composition the system is rank-deficient and the
    minimum-norm solution is used; the residual energy is then zero on average.
    """
    indices = np.arange(len(ds)) if indices is None else np.asarray(indices, dtype=np.int64)
    ds.require([energy_key], "the statistics")
    elements = ds.elements
    counts = composition_matrix(ds, indices, elements)
    energy = ds.column(energy_key)[indices].astype(np.float64)
    refs, *_ = np.linalg.lstsq(counts, energy, rcond=None)
    n_atoms = counts.sum(axis=1)
    residual_per_atom = (energy - counts @ refs) / n_atoms
    force_rms = None
    if forces_key in ds.properties:
        in_split = np.zeros(len(ds), dtype=bool)
        in_split[indices] = True
        force_rms = float(np.sqrt(np.mean(ds.column(forces_key)[np.repeat(in_split, ds.n_atoms)] ** 2)))
    return Statistics(
        elements=tuple(elements),
        atomrefs={z: float(e) for z, e in zip(elements, refs)},
        mean_energy_per_atom=float(residual_per_atom.mean()),
        std_energy_per_atom=float(residual_per_atom.std()),
        force_rms=force_rms,
        n_frames=len(indices),
    )


def statistics(ds: AtomsDataset, indices=None, cache: bool = True) -> Statistics:
    """:func:`compute_statistics`, cached by dataset content and split beside the dataset file."""
    indices = np.arange(len(ds)) if indices is None else np.asarray(indices, dtype=np.int64)
    if not cache:
        return compute_statistics(ds, indices)
    key = hashlib.sha1(ds.fingerprint().encode() + np.sort(indices).astype(np.int64).tobytes()).hexdigest()[:16]
    name = f"{ds.path.name if ds.path else 'dataset'}.stats-{key}.json"
    candidates = ([ds.path.parent / name] if ds.path else []) + [cache_dir() / name]
    for candidate in candidates:
        if candidate.exists():
            try:
                return Statistics.from_json(candidate.read_text())
            except (ValueError, KeyError, TypeError):
                break  # a damaged cache file is recomputed and overwritten
    result = compute_statistics(ds, indices)
    for candidate in candidates:
        try:
            write_text_atomic(candidate, result.to_json())
            break
        except OSError:
            continue
    return result


def average_neighbors(ds: AtomsDataset, cutoff: float, n_frames: int = 100) -> float:
    """Mean number of neighbors within ``cutoff`` (Å) per atom over the first ``n_frames`` frames."""
    from ..neighbors import batch_neighbor_list

    idx = np.arange(min(n_frames, len(ds)))
    frames = ds.frames(idx)
    i, _, _, _ = batch_neighbor_list([f["positions"] for f in frames], [f["cell"] for f in frames],
                                     [f["pbc"] for f in frames], cutoff)
    return float(len(i) / max(int(ds.n_atoms[idx].sum()), 1))
