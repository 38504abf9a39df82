"""Plots of a run: the learning curve and parity plots (PNG, written atomically, Agg backend)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io_utils import save_figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curve(rows: list[dict], path: str | Path) -> Path:
    """Training loss and validation force/energy MAE against epoch (log scale)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] for r in rows]
    axes[0].semilogy(epochs, [r["train_loss"] for r in rows], label="train loss")
    if any("val_loss" in r for r in rows):
        axes[0].semilogy(epochs, [r.get("val_loss", np.nan) for r in rows], label="validation loss")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    for key, label in (("val_forces_mae", "force MAE (meV/Å)"), ("val_energy_per_atom_mae", "energy MAE (meV/atom)")):
        if any(key in r for r in rows):
            axes[1].semilogy(epochs, [1000 * r.get(key, np.nan) for r in rows], label=label)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("validation error")
    axes[1].legend()
    fig.tight_layout()
    return save_figure(fig, path)


def parity(pairs: np.ndarray, path: str | Path, quantity: str, unit: str) -> Path:
    """Predicted against reference values with the y = x line; MAE in the title."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if len(pairs):
        ref, pred = pairs[:, 0], pairs[:, 1]
        ax.scatter(ref, pred, s=3, alpha=0.5)
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_title(f"{quantity}: MAE {np.mean(np.abs(pred - ref)):.4g} {unit}")
    ax.set_xlabel(f"reference {quantity} ({unit})")
    ax.set_ylabel(f"predicted {quantity} ({unit})")
    fig.tight_layout()
    return save_figure(fig, path)
