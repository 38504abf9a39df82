"""Composable transforms of frame dicts (see :class:`~mindsponge_mm.data.AtomsDataset`).

A transform maps a frame dict to a new frame dict and never modifies its input.
Transforms with an exact inverse set ``invertible = True`` and implement
:meth:`Transform.inverse`, which maps transformed values (for example a model's
predicted energy) back to the original convention.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from ase.data import atomic_masses
from ase.geometry import wrap_positions

Frame = dict


class Transform:
    """Base class: ``frame -> frame``; subclasses with an inverse set ``invertible = True``."""

    invertible = False

    def __call__(self, frame: Frame) -> Frame:
        raise NotImplementedError

    def inverse(self, frame: Frame) -> Frame:
        raise NotImplementedError(f"{type(self).__name__} has no inverse")


class Compose(Transform):
    """Apply transforms in order; the inverse applies their inverses in reverse order."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)
        self.invertible = all(t.invertible for t in self.transforms)

    def __call__(self, frame: Frame) -> Frame:
        for t in self.transforms:
            frame = t(frame)
        return frame

    def inverse(self, frame: Frame) -> Frame:
        for t in reversed(self.transforms):
            frame = t.inverse(frame)
        return frame


def _atomref_table(atomrefs: Mapping[int, float] | None) -> np.ndarray:
    table = np.zeros(119)
    for z, e in (atomrefs or {}).items():
        table[int(z)] = e
    return table


class RemoveOffsets(Transform):
    """``energy -= Σ_atoms atomref[Z] + n_atoms · mean_per_atom`` (eV). Inverse adds them back."""

    invertible = True

    def __init__(self, atomrefs: Mapping[int, float] | None = None, mean_per_atom: float = 0.0, property: str = "energy"):
        self.table = _atomref_table(atomrefs)
        self.mean_per_atom = float(mean_per_atom)
        self.property = property

    @classmethod
    def from_statistics(cls, stats, atomrefs: bool = True, mean: bool = True, property: str = "energy"):
        """Offsets from :class:`~mindsponge_mm.data.statistics.Statistics`."""
        return cls(stats.atomrefs if atomrefs else None, stats.mean_energy_per_atom if mean else 0.0, property)

    def offset(self, frame: Frame) -> float:
        z = frame["atomic_numbers"]
        return float(self.table[z].sum() + len(z) * self.mean_per_atom)

    def _shift(self, frame: Frame, sign: float) -> Frame:
        out = dict(frame)
        out[self.property] = np.asarray(frame[self.property]) + sign * self.offset(frame)
        return out

    def __call__(self, frame: Frame) -> Frame:
        return self._shift(frame, -1.0)

    def inverse(self, frame: Frame) -> Frame:
        return self._shift(frame, +1.0)


class AddOffsets(RemoveOffsets):
    """The inverse of :class:`RemoveOffsets` as a forward transform."""

    def __call__(self, frame: Frame) -> Frame:
        return self._shift(frame, +1.0)

    def inverse(self, frame: Frame) -> Frame:
        return self._shift(frame, -1.0)


class ScaleProperty(Transform):
    """Multiply properties by ``factor`` (e.g. to train in scaled units); the inverse divides."""

    invertible = True

    def __init__(self, properties: str | Sequence[str], factor: float):
        self.properties = [properties] if isinstance(properties, str) else list(properties)
        if factor == 0 or not np.isfinite(factor):
            raise ValueError(f"scale factor must be finite and non-zero, got {factor}")
        self.factor = float(factor)

    def _scale(self, frame: Frame, factor: float) -> Frame:
        out = dict(frame)
        for name in self.properties:
            out[name] = np.asarray(frame[name]) * factor
        return out

    def __call__(self, frame: Frame) -> Frame:
        return self._scale(frame, self.factor)

    def inverse(self, frame: Frame) -> Frame:
        return self._scale(frame, 1.0 / self.factor)


class CastDtype(Transform):
    """Cast every floating-point array to ``dtype`` (``"float32"`` or ``"float64"``)."""

    def __init__(self, dtype: str = "float32"):
        self.dtype = np.dtype(dtype)

    def __call__(self, frame: Frame) -> Frame:
        return {
            k: np.asarray(v, dtype=self.dtype) if np.asarray(v).dtype.kind == "f" else v for k, v in frame.items()
        }


class WrapPositions(Transform):
    """Wrap positions into the cell along periodic axes (fractional coordinates in [0, 1))."""

    def __call__(self, frame: Frame) -> Frame:
        if not np.any(frame["pbc"]):
            return frame
        out = dict(frame)
        out["positions"] = wrap_positions(frame["positions"], frame["cell"], pbc=frame["pbc"], eps=0.0)
        return out


class SubtractCenterOfMass(Transform):
    """Translate positions so that the centre of mass (atomic masses from ASE) is at the origin."""

    def __call__(self, frame: Frame) -> Frame:
        masses = atomic_masses[frame["atomic_numbers"]]
        com = masses @ frame["positions"] / masses.sum()
        out = dict(frame)
        out["positions"] = frame["positions"] - com
        return out
