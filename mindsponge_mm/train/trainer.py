"""Trainer: epochs of compiled train steps, validation with EMA weights, checkpoints and resume.

The run directory (its files: :class:`~mindsponge_mm.io_utils.RunDirectory`) holds
``config.yaml``, ``split.npz``, ``statistics.json``, ``checkpoints/last.safetensors`` (live
weights plus optimizer, EMA, loss-weight and schedule state: everything needed to continue
exactly), ``checkpoints/best.safetensors`` (the EMA weights of the best validation epoch),
``metrics.csv``, ``steps.csv`` (loss and learning rate of every step), ``learning_curve.png``,
``train.log`` and ``training_state.json``. Every file is written atomically, so a run killed
at any moment resumes from its last completed epoch.

Data parallel: with ``world_size > 1`` each global batch of ``batch_size`` structures is
split across ranks (rank r takes structures r, r + N, ...; ``AtomsLoader.shard``); the loss of
every rank is normalised by the counts of the combined batch and the gradients are summed, so the
update equals the single-process update on the combined batch. Every rank validates on
the whole validation set (identical results keep the schedules in step); rank 0 writes.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Callable

import mindspore as ms
import numpy as np

from ..errors import UserError
from ..io_utils import RunDirectory, write_text_atomic
from ..models.potential import Potential, read_checkpoint
from . import plots
from .ema import EMA
from .loss import LOSSES, loss_inputs
from .metrics import ErrorMetrics
from .optimizers import build_optimizer
from ..runtime import check_interrupt, deferred_interrupts
from .schedules import SCHEDULERS, WeightSchedule
from .step import TrainStep


# Test-only fault injection (tests/test_training.py): MINDSPONGE_MM_TEST_KILL_AT=POINT:EPOCH makes the
# process SIGKILL itself at POINT of the 1-based EPOCH, so the kill -9 resume tests hit exact moments:
#   after_steps_csv  steps.csv of the epoch is written, checkpoints/last is not
#   mid_checkpoint   a temporary checkpoint file beside last.safetensors is half written, not renamed
#   during_eval      the first validation batch has been evaluated (EMA weights swapped in)
# Nothing outside the tests sets it; unset, each check is one dictionary lookup.
_TEST_KILL_ENV = "MINDSPONGE_MM_TEST_KILL_AT"


def _test_kill_requested(point: str, epoch: int) -> bool:
    return os.environ.get(_TEST_KILL_ENV) == f"{point}:{epoch}"


def _test_kill_now() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


class Trainer:
    """Train ``potential`` on ``train_loader``, validating on ``val_loader``; see the module docstring.

    Args:
        potential: the :class:`Potential` to train (its model already has E0 and scale/shift).
        train_loader, val_loader: :class:`~mindsponge_mm.data.AtomsLoader` (global batch size).
        settings: the validated ``training`` section of a job config.
        out_dir: the run directory (its files: :class:`~mindsponge_mm.io_utils.RunDirectory`).
        rank, world_size: data-parallel position (1 process: 0, 1).
        log: where progress lines go (rank 0 also appends them to ``train.log``).
    """

    def __init__(self, potential: Potential, train_loader, val_loader, settings: dict, out_dir: Path,
                 rank: int = 0, world_size: int = 1, log: Callable[[str], None] = print, progress: bool = True):
        self.potential, self.train_loader, self.val_loader = potential, train_loader, val_loader
        self.s = settings
        self.out_dir = Path(out_dir)
        self.files = RunDirectory(self.out_dir)
        self.rank, self.world = int(rank), int(world_size)
        self._print, self.progress = log, progress and rank == 0
        self.train_shard = train_loader.shard(self.rank, self.world)  # this rank's part of every batch
        loss_cfg = settings["loss"]
        self.weight_schedule = WeightSchedule(loss_cfg["energy_weight"], loss_cfg["forces_weight"],
                                              loss_cfg["stress_weight"], loss_cfg["schedule"])
        used = self._check_labels(train_loader.dataset)
        self.loss = LOSSES.build(loss_cfg["type"], potential=potential, weights=self.weight_schedule.value(0),
                                 huber_delta=loss_cfg["huber_delta"], energy_mode=loss_cfg["energy_mode"],
                                 stress=used["stress"])
        params = potential.model.trainable_params()
        self.optimizer = build_optimizer(params, settings["optimizer"], settings["lr"], settings["weight_decay"])
        self.ema = EMA(self.optimizer.parameters, settings["ema_decay"]) if settings["ema_decay"] else None
        self.step_cell = TrainStep(self.loss, self.optimizer, settings["clip_grad_norm"], self.ema, self.world)
        self.step_fn = ms.jit(self.step_cell.construct)
        sched = settings["scheduler"]
        self.lr_schedule = SCHEDULERS.build(sched["type"], lr=settings["lr"], epochs=settings["epochs"],
                                            **{k: v for k, v in sched.items() if k != "type"})
        self.compiled_shapes: set = set()
        self.state = {"epoch": 0, "global_step": 0, "best_val": None, "best_epoch": None, "bad_epochs": 0,
                      "history": [], "stopped_early": False}
        self._lr_now = None
        self._epoch_running = 0  # 1-based epoch in progress (for the test-only kill hook)

    # ------------------------------------------------------------------ helpers
    def log(self, text: str) -> None:
        if self.rank != 0:
            return
        self._print(text)
        with open(self.files.train_log, "a") as f:
            f.write(text + "\n")

    def _check_labels(self, dataset) -> dict:
        """{label: whether the loss uses it at any epoch}; a used label the dataset lacks is a UserError."""
        out = {}
        for name, w in zip(("energy", "forces", "stress"), self.weight_schedule.initial):
            raised = [int(c["epoch"]) for c in self.weight_schedule.changes if c.get(name, 0) > 0]
            out[name] = used = w > 0 or bool(raised)
            if used and name not in dataset.properties:
                where = [f"training.loss.{name}_weight = {w:g}"] if w > 0 else []
                where += [f"training.loss.schedule sets {name} > 0 at epoch {e}" for e in raised]
                fix = [f"training.loss.{name}_weight: 0"] if w > 0 else []
                fix += [f"{name}: 0 in every training.loss.schedule entry"] if raised else []
                raise UserError(f"{dataset.source}: the loss uses {name} ({'; '.join(where)}) but the dataset has "
                                f"no {name!r} column; set {' and '.join(fix)}")
        return out

    def _set_lr(self, value: float) -> None:
        if value != self._lr_now:
            self.optimizer.learning_rate.copy_(ms.Tensor(np.float32(value)))
            self._lr_now = value

    # ------------------------------------------------------------------ state
    def save_checkpoint(self, path: Path, best: bool = False) -> None:
        if self.rank != 0:
            return
        meta = {"training_state": self.state, "lr_schedule": self.lr_schedule.state}
        if best:
            if self.ema is not None:
                with self.ema.swapped():
                    self.potential.save(path, {"training_state": {"epoch": self.state["epoch"], "best": True}})
            else:
                self.potential.save(path, {"training_state": {"epoch": self.state["epoch"], "best": True}})
            return
        extra = {f"train/opt/{k}": p.asnumpy().copy() for k, p in enumerate(self._optimizer_state())}
        if self.ema is not None:
            extra.update({f"train/ema/{k}": p.asnumpy().copy() for k, p in enumerate(self.ema.shadow)})
            extra["train/ema_count"] = self.ema.count.asnumpy().copy()
        extra["train/loss_weights"] = self.loss.weights.asnumpy().copy()
        if _test_kill_requested("mid_checkpoint", self._epoch_running):
            # the temporary file atomic_path would write, cut off halfway, and no rename
            fd, tmp = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=".tmp", dir=Path(path).parent)
            os.close(fd)
            self.potential.save(tmp, meta, extra)
            os.truncate(tmp, os.path.getsize(tmp) // 2)
            _test_kill_now()
        self.potential.save(path, meta, extra)

    def _optimizer_state(self) -> list:
        """Every optimizer Parameter that is not a model weight, in a fixed order."""
        weights = {id(p) for p in self.optimizer.parameters}
        return [p for _, p in self.optimizer.parameters_and_names() if id(p) not in weights]

    def resume(self, path: Path) -> None:
        """Restore weights, optimizer, EMA, loss weights, schedules and history from ``last``."""
        meta, tensors = read_checkpoint(path)
        mine = self.potential.metadata()
        if meta["model"] != mine["model"] or meta["hyperparameters"] != mine["hyperparameters"]:
            raise UserError(f"{path}: checkpoint is a {meta['model']} model with other hyperparameters than this "
                            f"config's {mine['model']}; resume with the config the run was started with")
        if "training_state" not in meta or "train/loss_weights" not in tensors:
            raise UserError(f"{path}: not a training checkpoint (no optimizer state); resume from checkpoints/last")

        def put(param, name):
            value = tensors.get(name)
            if value is None or tuple(value.shape) != tuple(param.shape):
                raise UserError(f"{path}: training state {name} is missing or has another shape; "
                                f"the checkpoint does not match this config")
            param.copy_(ms.Tensor(value))

        for name, p in self.potential.model.parameters_and_names():
            put(p, name)
        for k, p in enumerate(self._optimizer_state()):
            put(p, f"train/opt/{k}")
        if self.ema is not None:
            for k, p in enumerate(self.ema.shadow):
                put(p, f"train/ema/{k}")
            put(self.ema.count, "train/ema_count")
        put(self.loss.weights, "train/loss_weights")
        self.state = meta["training_state"]
        self.lr_schedule.state = meta["lr_schedule"]
        self._lr_now = None

    # ------------------------------------------------------------------ loop
    def validate(self) -> dict:
        """Metrics of the (EMA) weights on the validation loader."""
        metrics = ErrorMetrics()
        if self.ema is not None:
            with self.ema.swapped():
                for batch in self.val_loader:
                    metrics.add(batch, self.potential.evaluate(batch))
                    if _test_kill_requested("during_eval", self._epoch_running):
                        _test_kill_now()
        else:
            for batch in self.val_loader:
                metrics.add(batch, self.potential.evaluate(batch))
                if _test_kill_requested("during_eval", self._epoch_running):
                    _test_kill_now()
        return metrics.result()

    def validation_loss(self, m: dict, weights) -> float:
        """The loss's weighted sum with RMSE² in place of the mean of ρ (comparable across epochs)."""
        w_e, w_f, w_s = weights
        key = "energy_per_atom_rmse" if self.s["loss"]["energy_mode"] == "per_atom" else "energy_rmse"
        return (w_e * m.get(key, 0.0) ** 2 + w_f * m.get("forces_rmse", 0.0) ** 2
                + w_s * m.get("stress_rmse", 0.0) ** 2)

    def fit(self) -> dict:
        epochs = self.s["epochs"]
        n_steps = len(self.train_shard)
        patience = self.s["early_stopping_patience"]
        start = self.state["epoch"]
        if start >= epochs or self.state["stopped_early"]:
            self.log(f"nothing to do: the run already finished {start} epochs")
        for epoch in range(start, epochs):
            if self.state["stopped_early"]:
                break
            t0 = time.perf_counter()
            self._epoch_running = epoch + 1
            weights = self.weight_schedule.value(epoch)
            stage_lr = self.weight_schedule.lr(epoch)
            self.loss.set_weights(*weights)
            losses = []
            bar = None
            if self.progress:
                from tqdm import tqdm

                # disable=None: a bar on a terminal only; logs and pipes get the epoch line alone
                bar = tqdm(total=n_steps, desc=f"epoch {epoch + 1}/{epochs}", leave=False, dynamic_ncols=True,
                           disable=None)
            step_rows = []
            self.train_shard.set_epoch(epoch)
            for step, (batch, norms) in enumerate(self.train_shard):
                check_interrupt()  # Ctrl-C that landed where its KeyboardInterrupt was dropped
                lr = self.lr_schedule.value(epoch, step, n_steps) if stage_lr is None else stage_lr
                self._set_lr(lr)
                self.compiled_shapes.add(batch.shape)
                value = float(self.step_fn(*loss_inputs(self.potential, batch, norms)).asnumpy())
                if not math.isfinite(value):
                    if bar is not None:
                        bar.close()
                    raise TrainingDiverged(
                        f"the loss became {value} at epoch {epoch + 1}, step {step + 1}; training stopped and "
                        f"{self.files.last_checkpoint} holds the last good epoch; lower training.lr or set "
                        f"training.clip_grad_norm")
                losses.append(value)
                step_rows.append((epoch + 1, self.state["global_step"] + 1, value, lr))
                self.state["global_step"] += 1
                if bar is not None:
                    bar.set_postfix(loss=f"{value:.4g}", lr=f"{lr:.2g}")
                    bar.update(1)
            if bar is not None:
                bar.close()
            row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "lr": self._lr_now,
                   "time_s": time.perf_counter() - t0}
            val = self.validate() if len(self.val_loader.indices) else {}
            row.update({f"val_{k}": v for k, v in val.items()})
            with deferred_interrupts():  # an epoch's checkpoints and logs are written together
                self.state["epoch"] = epoch + 1
                self.state["history"].append(row)
                if val:
                    val_loss = self.validation_loss(val, weights)
                    row["val_loss"] = val_loss
                    self.lr_schedule.observe(val_loss)
                    if self.state["best_val"] is None or val_loss < self.state["best_val"]:
                        self.state.update(best_val=val_loss, best_epoch=epoch + 1, bad_epochs=0)
                        self.save_checkpoint(self.files.best_checkpoint, best=True)
                    else:
                        self.state["bad_epochs"] += 1
                    if patience is not None and self.state["bad_epochs"] >= patience:
                        self.state["stopped_early"] = True
                else:
                    self.save_checkpoint(self.files.best_checkpoint, best=True)
                self._write_outputs(step_rows)
                self.log(self._epoch_line(row))
                if self.state["stopped_early"]:
                    self.log(f"early stopping: no improvement for {patience} epochs; best epoch {self.state['best_epoch']}")
        return {"history": self.state["history"], "best_epoch": self.state["best_epoch"],
                "compiled_shapes": len(self.compiled_shapes)}

    def _epoch_line(self, row: dict) -> str:
        parts = [f"epoch {row['epoch']:>4}", f"loss {row['train_loss']:.4g}", f"lr {row['lr']:.3g}"]
        if "val_forces_mae" in row:
            parts.append(f"val F MAE {1000 * row['val_forces_mae']:.1f} meV/Ang")
        if "val_energy_per_atom_mae" in row:
            parts.append(f"E MAE {1000 * row['val_energy_per_atom_mae']:.2f} meV/atom")
        if "val_stress_mae" in row:
            parts.append(f"S MAE {1000 * row['val_stress_mae']:.3f} meV/Ang^3")
        parts.append(f"{row['time_s']:.1f} s")
        return "  ".join(parts)

    def _write_outputs(self, step_rows) -> None:
        """checkpoints/last, metrics.csv, steps.csv and the learning curve (rank 0, atomically)."""
        if self.rank != 0:
            return
        history = self.state["history"]
        keys = []
        for row in history:
            keys += [k for k in row if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
        steps_path = self.files.steps
        old = steps_path.read_text() if steps_path.exists() else "epoch,step,loss,lr\n"
        # keep only the steps of completed epochs (a resumed run rewrites the interrupted epoch)
        lines = [ln for ln in old.splitlines()[1:] if ln and int(ln.split(",")[0]) < step_rows[0][0]] if step_rows else []
        lines += [f"{e},{s},{v!r},{lr!r}" for e, s, v, lr in step_rows]
        # steps.csv first: a kill before the checkpoint resumes from the previous epoch, which drops these lines
        write_text_atomic(steps_path, "epoch,step,loss,lr\n" + "".join(ln + "\n" for ln in lines))
        if _test_kill_requested("after_steps_csv", self._epoch_running):
            _test_kill_now()
        self.save_checkpoint(self.files.last_checkpoint)
        write_text_atomic(self.files.metrics, buf.getvalue())
        plots.learning_curve(history, self.files.learning_curve)
        write_text_atomic(self.files.training_state, json.dumps(
            {k: v for k, v in self.state.items() if k != "history"}, indent=1))
