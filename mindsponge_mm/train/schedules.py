"""Learning-rate and loss-weight schedules, evaluated on the host between steps.

A schedule is a small object with ``value(epoch, step_in_epoch, steps_per_epoch)``, an
``observe(val_loss)`` hook called after each validation, and a JSON-able ``state`` so a
resumed run continues exactly. The learning rate goes into the optimizer's
``learning_rate`` Parameter in place, so the compiled step never recompiles.

* ``constant``: ``lr``.
* ``cosine``: cosine decay from ``lr`` to ``min_lr`` over the run.
* ``plateau``: multiply by ``factor`` when the validation loss has not improved by a
  relative ``threshold`` for ``patience`` validations (never below ``min_lr``).

Every schedule starts with a linear warm-up over ``warmup_epochs`` (fractional epochs allowed).
"""
from __future__ import annotations

import functools
import math

from ..errors import ConfigError
from ..registry import Registry

# ``training.scheduler.type`` -> LRSchedule of that kind; the other scheduler keys are its arguments
SCHEDULERS = Registry("scheduler", label="scheduler type")


class LRSchedule:
    """See the module docstring. ``epochs`` is the planned length of the run."""

    def __init__(self, kind: str, lr: float, epochs: int, warmup_epochs: float = 0.0, min_lr: float = 0.0,
                 factor: float = 0.5, patience: int = 5, threshold: float = 1e-3):
        SCHEDULERS.check_name(kind, where="training.scheduler.type")
        self.kind, self.lr, self.epochs = kind, float(lr), int(epochs)
        self.warmup, self.min_lr = float(warmup_epochs), float(min_lr)
        self.factor, self.patience, self.threshold = float(factor), int(patience), float(threshold)
        self.state = {"plateau_lr": self.lr, "best": None, "bad": 0}

    def value(self, epoch: int, step: int, steps_per_epoch: int) -> float:
        """Learning rate for ``step`` (0-based) of ``epoch`` (0-based)."""
        t = epoch + step / max(steps_per_epoch, 1)  # fractional epochs done
        if self.kind == "cosine":
            span = max(self.epochs - self.warmup, 1e-12)
            frac = min(max((t - self.warmup) / span, 0.0), 1.0)
            base = self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * frac))
        elif self.kind == "plateau":
            base = self.state["plateau_lr"]
        else:
            base = self.lr
        if self.warmup > 0 and t < self.warmup:
            base *= (t + 1.0 / max(steps_per_epoch, 1)) / self.warmup
        return base

    def observe(self, val_loss: float) -> bool:
        """Record a validation loss; True when a plateau schedule just lowered the rate."""
        best = self.state["best"]
        if best is None or val_loss < best * (1.0 - self.threshold):
            self.state.update(best=float(val_loss), bad=0)
            return False
        self.state["bad"] += 1
        if self.kind == "plateau" and self.state["bad"] > self.patience:
            new = max(self.state["plateau_lr"] * self.factor, self.min_lr)
            lowered = new < self.state["plateau_lr"]
            self.state.update(plateau_lr=new, bad=0)
            return lowered
        return False


for _kind in ("constant", "cosine", "plateau"):
    SCHEDULERS.register(_kind)(functools.partial(LRSchedule, _kind))


class WeightSchedule:
    """Loss weights (energy, forces, stress) that change at given epochs, and MACE's stage two.

    ``changes`` is a list of mappings ``{epoch: k, energy: w_E, forces: w_F, stress: w_S, lr: η}``;
    from epoch k on the given weights apply (unnamed ones keep their value). An entry with ``lr``
    starts a stage with its own constant learning rate η (MACE's second stage: a higher energy
    weight at a small fixed rate), which replaces the scheduler's rate from that epoch on.
    """

    def __init__(self, energy: float, forces: float, stress: float, changes=()):
        self.initial = (float(energy), float(forces), float(stress))
        self.changes = sorted((dict(c) for c in changes), key=lambda c: c.get("epoch", 0))
        for c in self.changes:
            unknown = set(c) - {"epoch", "energy", "forces", "stress", "lr"}
            if unknown or "epoch" not in c:
                raise ConfigError(
                    "training.loss.schedule entries look like {epoch: 10, energy: 1.0, forces: 100.0, lr: 0.001}; "
                    f"got {c}")
            if "lr" in c and not (isinstance(c["lr"], (int, float)) and c["lr"] > 0):
                raise ConfigError(f"training.loss.schedule: lr must be a positive number; got {c}")

    def value(self, epoch: int) -> tuple[float, float, float]:
        e, f, s = self.initial
        for c in self.changes:
            if epoch >= int(c["epoch"]):
                e, f, s = float(c.get("energy", e)), float(c.get("forces", f)), float(c.get("stress", s))
        return e, f, s

    def lr(self, epoch: int) -> float | None:
        """The learning rate of the stage that ``epoch`` is in, or None (the scheduler's rate applies)."""
        rate = None
        for c in self.changes:
            if epoch >= int(c["epoch"]) and "lr" in c:
                rate = float(c["lr"])
        return rate
