"""Error metrics of a potential on labelled batches, accumulated on the host in float64.

Names (units): ``energy_mae``/``energy_rmse`` per structure (eV), ``energy_per_atom_mae``/
``energy_per_atom_rmse`` (eV/atom), ``forces_mae``/``forces_rmse`` per component (eV/Å),
``stress_mae``/``stress_rmse`` per component (eV/Å³, periodic labelled structures only).
"""
from __future__ import annotations

import numpy as np


class ErrorMetrics:
    """Add batches with :meth:`add`; read the metrics with :meth:`result`; keep pairs for parity plots."""

    def __init__(self, keep: bool = False):
        self.keep = keep
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.pairs: dict[str, list] = {"energy": [], "forces": []}

    def _acc(self, name: str, err: np.ndarray) -> None:
        err = np.asarray(err, np.float64).ravel()
        self.sums[name + "_abs"] = self.sums.get(name + "_abs", 0.0) + float(np.abs(err).sum())
        self.sums[name + "_sq"] = self.sums.get(name + "_sq", 0.0) + float((err * err).sum())
        self.counts[name] = self.counts.get(name, 0) + err.size

    def add(self, batch, predicted: dict) -> None:
        """``predicted``: the dict of :meth:`Potential.evaluate` for ``batch`` (padding included)."""
        s, a = batch.structure_mask, batch.atom_mask
        t = batch.targets
        if "energy" in t:
            e_ref, e = t["energy"][s], predicted["energy"][s]
            self._acc("energy", e - e_ref)
            self._acc("energy_per_atom", (e - e_ref) / batch.n_atoms[s])
            if self.keep:
                self.pairs["energy"].append(np.stack([e_ref / batch.n_atoms[s], e / batch.n_atoms[s]], 1))
        if "forces" in t:
            f_ref, f = t["forces"][a], predicted["forces"][a]
            self._acc("forces", f - f_ref)
            if self.keep:
                self.pairs["forces"].append(np.stack([f_ref.ravel(), f.ravel()], 1))
        if "stress" in t:
            m = s & batch.pbc.any(-1)
            if m.any():
                self._acc("stress", predicted["stress"][m] - t["stress"][m])

    def result(self) -> dict[str, float]:
        out = {}
        for name, n in self.counts.items():
            out[f"{name}_mae"] = self.sums[name + "_abs"] / n
            out[f"{name}_rmse"] = float(np.sqrt(self.sums[name + "_sq"] / n))
        return out

    def parity(self, key: str) -> np.ndarray:
        """[n, 2] (reference, predicted) pairs: energies per atom (eV/atom) or force components (eV/Å)."""
        parts = self.pairs.get(key) or []
        return np.concatenate(parts) if parts else np.zeros((0, 2))


def format_table(metrics: dict[str, float]) -> str:
    """A small text table in meV units (meV, meV/atom, meV/Å, meV/Å³)."""
    rows = [("energy", "meV/structure"), ("energy_per_atom", "meV/atom"), ("forces", "meV/Ang"),
            ("stress", "meV/Ang^3")]
    lines = [f"{'quantity':<18}{'MAE':>12}{'RMSE':>12}  unit"]
    for name, unit in rows:
        if f"{name}_mae" in metrics:
            lines.append(f"{name:<18}{1000 * metrics[name + '_mae']:>12.3f}{1000 * metrics[name + '_rmse']:>12.3f}  {unit}")
    return "\n".join(lines)
