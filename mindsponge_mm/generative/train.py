"""Training of :class:`~.latent.MolMIM`: one jitted step per padded length bucket, Adam with warmup and
cosine decay, a tqdm bar with the live loss, ``metrics.csv``, ``steps.csv``, a learning-curve PNG and
checkpoints that resume exactly.

The corpus is tokenized once (:func:`encode_corpus`: one padded id array per length bucket). Each
epoch's batches come from one ``numpy`` Generator (:func:`epoch_plan`), which then draws the latent
noise and the token-dropout mask of every step. A training checkpoint
(``checkpoints/last.safetensors``, written atomically at every epoch end and every
``checkpoint_every`` steps) holds the weights, the optimizer state (moments, step counter), the
epoch and step, the Generator's state at the start of the epoch (from which the epoch's data
order is drawn again) and now, the running loss sum of the epoch and the history. Resuming from
it continues the run exactly as if it had not stopped. ``model.safetensors`` (weights,
vocabulary and hyperparameters only) is written beside it for sampling.

Data parallel (``world_size > 1``, ranks started by ``msrun``): every rank draws the same plan and
noise and takes rows ``rank, rank + N, ...`` of each batch; each rank's loss is normalised by the
combined batch's token and molecule counts and the gradients are summed over ranks
(``DistributedGradReducer(mean=False)``), so the update is the single-process update on the
combined batch. Rank 0 writes every file.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from ..errors import ConfigError, UserError
from ..io_utils import atomic_path, read_safetensors, write_text_atomic
from ..runtime import check_interrupt, deferred_interrupts
from .latent import MolMIM
from .metrics import reconstruction
from .model import MIMLoss, loss_norms

LAST_CHECKPOINT = "checkpoints/last.safetensors"
MODEL_FILE = "model.safetensors"
STEPS_HEADER = "epoch,step,loss,lr\n"


class _Step(nn.Cell):
    """loss = step(ids [B, L], eps [B, D], keep [B, L-1], causal [L-1, L-1], norms [2]): gradients clipped to
    norm ``clip``; with ``world_size > 1`` gradients and loss are summed over the data-parallel ranks."""

    def __init__(self, loss: MIMLoss, optimizer: nn.Optimizer, clip: float, world_size: int = 1):
        super().__init__()
        self.loss, self.optimizer, self.clip = loss, optimizer, float(clip)
        self.grad_fn = ms.value_and_grad(self.loss, None, optimizer.parameters)
        self.distributed = world_size > 1
        if self.distributed:
            self.reducer = nn.DistributedGradReducer(optimizer.parameters, mean=False, degree=world_size)
            self.all_sum = ops.AllReduce()

    def construct(self, ids, eps, keep, causal, norms):
        value, grads = self.grad_fn(ids, eps, keep, causal, norms)
        if self.distributed:
            grads = self.reducer(grads)
            value = self.all_sum(value)
        grads = ops.clip_by_global_norm(grads, self.clip)
        self.optimizer(grads)
        return value


def learning_rates(total: int, lr: float, warmup: int) -> list[float]:
    """Linear warmup over ``warmup`` steps, then cosine decay to lr/20, one value per step."""
    out = []
    for s in range(total):
        if s < warmup:
            out.append(lr * (s + 1) / warmup)
        else:
            frac = (s - warmup) / max(1, total - warmup)
            out.append(lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac))))
    return out


def encode_corpus(mim: MolMIM, smiles: Sequence[str]) -> dict[int, np.ndarray]:
    """{bucket length: ids [n, bucket]} of every molecule, padded with PAD (uint8 for vocabularies
    below 256 tokens, to keep 1.6 M MOSES molecules in about 100 MB)."""
    dtype = np.uint8 if len(mim.tokenizer) <= 256 else np.int32
    rows: dict[int, list[list[int]]] = {}
    for s in smiles:
        ids = mim.tokenizer.encode(s)
        rows.setdefault(mim.bucket(len(ids)), []).append(ids)
    out = {}
    for length in sorted(rows):
        buf = np.zeros((len(rows[length]), length), dtype)
        for r, ids in enumerate(rows[length]):
            buf[r, : len(ids)] = ids
        out[length] = buf
    return out


def epoch_plan(counts: dict[int, int], batch_size: int, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """One epoch of (bucket length, row indices [batch_size]) in shuffled order; a bucket whose
    molecules do not fill its last batch is topped up by resampling."""
    batches = []
    for length in sorted(counts):
        n = counts[length]
        order = rng.permutation(n)
        n_batches = max(1, int(round(n / batch_size)))
        need = n_batches * batch_size
        if need > len(order):
            order = np.concatenate([order, rng.choice(n, need - len(order))])
        batches += [(length, order[b * batch_size: (b + 1) * batch_size]) for b in range(n_batches)]
    return [batches[i] for i in rng.permutation(len(batches))]


def make_batches(mim: MolMIM, smiles: Sequence[str], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of int32 [batch_size, bucket] arrays, shuffled (:func:`encode_corpus` + :func:`epoch_plan`)."""
    data = encode_corpus(mim, smiles)
    plan = epoch_plan({k: len(v) for k, v in data.items()}, batch_size, rng)
    return [data[length][rows].astype(np.int32) for length, rows in plan]


def plot_curve(rows: list[dict], path: Path) -> None:
    """Training loss per epoch (and validation reconstruction when present) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r["epoch"] for r in rows], [r["train_loss"] for r in rows], "o-", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (nats/token + prior)")
    val = [(r["epoch"], r["val_exact"]) for r in rows if r.get("val_exact") not in (None, "")]
    if val:
        ax2 = ax.twinx()
        ax2.plot(*zip(*val), "s--", color="C1", label="val exact reconstruction")
        ax2.set_ylabel("val exact reconstruction")
        ax2.set_ylim(0, 1)
    ax.set_title("MolMIM training")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def read_steps(path: str | Path) -> list[dict]:
    """The rows of a ``steps.csv`` (epoch and step as int, loss and lr as float)."""
    with open(path, newline="") as f:
        return [{"epoch": int(r["epoch"]), "step": int(r["step"]), "loss": float(r["loss"]), "lr": float(r["lr"])}
                for r in csv.DictReader(f)]


class Trainer:
    """Trains ``mim`` in place; see the module docstring. Arguments as in :func:`fit`."""

    def __init__(self, mim: MolMIM, train: Sequence[str], val: Sequence[str] = (), *, epochs: int = 10,
                 batch_size: int = 64, lr: float = 1e-3, warmup: int = 100, noise_std: float = 0.1,
                 prior_weight: float = 0.1, clip: float = 1.0, token_dropout: float = 0.0, eval_every: int = 5,
                 n_eval: int = 100, seed: int = 0, out_dir: str | Path | None = None, checkpoint_every: int = 0,
                 rank: int = 0, world_size: int = 1, log: Callable[[str], None] = print, progress: bool = True):
        if batch_size % world_size:
            raise ConfigError(f"train.batch_size {batch_size} is not a multiple of the {world_size} data-parallel "
                              f"ranks; choose a batch size that divides evenly")
        self.mim, self.val = mim, list(val)[:n_eval]
        self.epochs, self.batch_size, self.token_dropout = int(epochs), int(batch_size), float(token_dropout)
        self.eval_every, self.seed, self.checkpoint_every = int(eval_every), int(seed), int(checkpoint_every)
        self.rank, self.world = int(rank), int(world_size)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self._log = log if rank == 0 else (lambda _text: None)
        self.progress = progress and rank == 0
        self.data = encode_corpus(mim, train)
        self.counts = {k: len(v) for k, v in self.data.items()}
        self.n_train = len(train)
        self.per_epoch = len(epoch_plan(self.counts, batch_size, np.random.default_rng(seed)))
        total = max(1, self.epochs * self.per_epoch)
        self.lrs = learning_rates(total, lr, min(warmup, total // 2))
        self.optimizer = nn.Adam(mim.model.trainable_params(), learning_rate=self.lrs)
        self.step_cell = _Step(MIMLoss(mim.model, noise_std, prior_weight), self.optimizer, clip, self.world)
        self.step_fn = ms.jit(self.step_cell.construct)
        self.rng = np.random.default_rng(seed)
        self.state = {"epoch": 0, "step": 0, "epoch_step": 0, "loss_sum": 0.0, "history": [], "time_s": 0.0,
                      "rng_epoch": None, "rng": None}
        self._plan = None
        self._pending_steps: list[str] = []

    # ------------------------------------------------------------------ files
    @property
    def last_checkpoint(self) -> Path:
        return self.out_dir / LAST_CHECKPOINT

    def _optimizer_state(self) -> list:
        """Every optimizer Parameter that is not a model weight (moments, beta powers, step), in a fixed order."""
        weights = {id(p) for p in self.optimizer.parameters}
        return [p for _, p in self.optimizer.parameters_and_names() if id(p) not in weights]

    def save_checkpoint(self) -> None:
        """steps.csv (appended), checkpoints/last.safetensors and model.safetensors, rank 0, each atomic."""
        if self.out_dir is None or self.rank != 0:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self._pending_steps:  # first: a stop before the checkpoint drops these lines again on resume
            steps = self.out_dir / "steps.csv"
            head = "" if steps.exists() else STEPS_HEADER
            with open(steps, "a") as f:
                f.write(head + "".join(self._pending_steps))
            self._pending_steps = []
        self.state["rng"] = self.rng.bit_generator.state
        from safetensors.numpy import save_file

        tensors = {name: p.asnumpy().copy() for name, p in self.mim.model.parameters_and_names()}
        tensors.update({f"train/opt/{k}": p.asnumpy().copy() for k, p in enumerate(self._optimizer_state())})
        meta = {**self.mim.metadata(), "training_state": self.state}
        with atomic_path(self.last_checkpoint) as tmp:
            save_file(tensors, str(tmp), metadata={"mindsponge_mm": json.dumps(meta)})
        self.mim.save(self.out_dir / MODEL_FILE, extra={"epoch": self.state["epoch"], "step": self.state["step"]})

    def resume(self, path: str | Path) -> None:
        """Restore weights, optimizer state, position, random state and history from a training checkpoint."""
        meta, tensors = read_safetensors(path, "nothing to resume (no training checkpoint); start the run "
                                               "without --resume")
        state = meta.get("training_state")
        if state is None or meta.get("hyperparameters") != self.mim.model.hyperparameters:
            raise UserError(f"{path}: not a training checkpoint of this model (other hyperparameters or no "
                            f"optimizer state); resume with the config the run was started with")
        if meta.get("vocabulary") != json.loads(self.mim.tokenizer.to_json()):
            raise UserError(f"{path}: the checkpoint's vocabulary differs from this corpus's; resume with the "
                            f"config and corpus the run was started with")

        def put(param, name):
            value = tensors.get(name)
            if value is None or tuple(value.shape) != tuple(param.shape):
                raise UserError(f"{path}: {name} is missing or has another shape; the checkpoint does not match "
                                f"this config")
            param.copy_(ms.Tensor(value))

        for name, p in self.mim.model.parameters_and_names():
            put(p, name)
        for k, p in enumerate(self._optimizer_state()):
            put(p, f"train/opt/{k}")
        self.state = state
        if state["epoch_step"]:  # inside an epoch: draw its plan again from the epoch's starting state
            self.rng.bit_generator.state = copy.deepcopy(state["rng_epoch"])
            self._plan = epoch_plan(self.counts, self.batch_size, self.rng)
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        if self.out_dir is not None and self.rank == 0:
            steps = self.out_dir / "steps.csv"
            old = steps.read_text().splitlines()[1:] if steps.exists() else []
            kept = [ln for ln in old if ln and int(ln.split(",")[1]) <= state["step"]]
            write_text_atomic(steps, STEPS_HEADER + "".join(ln + "\n" for ln in kept))

    def _write_epoch_outputs(self) -> None:
        if self.out_dir is None or self.rank != 0:
            return
        rows = self.state["history"]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.out_dir / "metrics.csv", text.getvalue())
        plot_curve(rows, self.out_dir / "learning_curve.png")

    # ------------------------------------------------------------------ loop
    def _batch(self, length: int, rows: np.ndarray):
        ids = self.data[length][rows].astype(np.int32)
        eps = self.rng.standard_normal((ids.shape[0], self.mim.code_size)).astype(np.float32)
        keep = (self.rng.random((ids.shape[0], ids.shape[1] - 1)) >= self.token_dropout).astype(np.int32)
        keep[:, 0] = 1  # BOS
        norms = loss_norms(ids)
        if self.world > 1:
            part = slice(self.rank, None, self.world)
            ids, eps, keep = ids[part], eps[part], keep[part]
        return ids, eps, keep, norms

    def _step(self, epoch: int, length: int, rows: np.ndarray) -> float:
        """One optimizer step on the bucket ``length`` rows ``rows``; updates the position and the step log."""
        st = self.state
        check_interrupt()
        ids, eps, keep, norms = self._batch(length, rows)
        lr = self.lrs[min(st["step"], len(self.lrs) - 1)]
        loss = float(self.step_fn(ms.Tensor(ids), ms.Tensor(eps), ms.Tensor(keep),
                                  self.mim.causal(ids.shape[1] - 1), ms.Tensor(norms)).asnumpy())
        if not np.isfinite(loss):
            raise UserError(f"the loss became {loss} at epoch {epoch}, step {st['step'] + 1}; "
                            f"{LAST_CHECKPOINT} holds the last good state; lower train.lr")
        st["step"] += 1
        st["epoch_step"] += 1
        st["loss_sum"] += loss
        self._pending_steps.append(f"{epoch},{st['step']},{loss!r},{lr!r}\n")
        return loss

    def fit(self) -> list[dict]:
        from tqdm import tqdm

        st = self.state
        if st["epoch"] == 0 and st["step"] == 0:
            self._log(f"training  {self.n_train} molecules, {self.per_epoch} steps/epoch of {self.batch_size}, "
                      f"{self.epochs} epochs, {sum(p.size for p in self.mim.model.trainable_params())} weights, "
                      f"code size {self.mim.code_size}, {self.mim.representation.upper()} tokens")
        else:
            self._log(f"resumed   after epoch {st['epoch']}, step {st['step']} ({st['epoch_step']} steps into "
                      f"epoch {st['epoch'] + 1})")
        if st["epoch"] >= self.epochs:
            self._log(f"nothing to do: the run already finished {st['epoch']} epochs")
        start = time.perf_counter() - st["time_s"]
        for epoch in range(st["epoch"] + 1, self.epochs + 1):
            if self._plan is None:
                st["rng_epoch"] = self.rng.bit_generator.state
                self._plan = epoch_plan(self.counts, self.batch_size, self.rng)
            plan, self._plan = self._plan, None
            disable = None if self.progress else True  # None: a bar on terminals only
            with tqdm(total=len(plan), initial=st["epoch_step"], desc=f"epoch {epoch}/{self.epochs}", unit="step",
                      disable=disable, leave=False) as bar:
                try:
                    for length, rows in plan[st["epoch_step"]:]:
                        with deferred_interrupts():  # a step and its bookkeeping are never cut apart
                            loss = self._step(epoch, length, rows)
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss:.3f}")
                        if (self.checkpoint_every and st["step"] % self.checkpoint_every == 0
                                and st["epoch_step"] < len(plan)):
                            with deferred_interrupts():
                                st["time_s"] = time.perf_counter() - start
                                self.save_checkpoint()
                            self._log(f"checkpoint step {st['step']} (epoch {epoch}, {st['epoch_step']}/{len(plan)})")
                except KeyboardInterrupt:
                    if st["epoch_step"]:  # keep every finished step (the resumed run redraws this plan)
                        st["time_s"] = time.perf_counter() - start
                        self.save_checkpoint()  # atomic files: a second Ctrl-C here loses only this save
                        self._log(f"interrupted at step {st['step']} (epoch {epoch}, {st['epoch_step']}/{len(plan)}); "
                                  f"{LAST_CHECKPOINT} holds it: continue with --resume")
                    raise
            row = {"epoch": epoch, "step": st["step"], "train_loss": st["loss_sum"] / st["epoch_step"],
                   "val_exact": "", "time_s": 0.0}
            if self.val and (epoch % self.eval_every == 0 or epoch == self.epochs):
                row["val_exact"] = reconstruction(self.val, self.mim.reconstruct(self.val))["exact"]
            with deferred_interrupts():  # the epoch's checkpoint and logs are written together
                row["time_s"] = st["time_s"] = round(time.perf_counter() - start, 1)
                st["history"].append(row)
                st.update(epoch=epoch, epoch_step=0, loss_sum=0.0)
                self.save_checkpoint()
                self._write_epoch_outputs()
            msg = f"epoch {epoch:3d}  loss {row['train_loss']:.4f}"
            if row["val_exact"] != "":
                msg += f"  val exact reconstruction {row['val_exact']:.3f}"
            self._log(msg + f"  ({row['time_s']:.0f} s)")
        return st["history"]


def fit(mim: MolMIM, train: Sequence[str], val: Sequence[str] = (), *, epochs: int = 10, batch_size: int = 64,
        lr: float = 1e-3, warmup: int = 100, noise_std: float = 0.1, prior_weight: float = 0.1, clip: float = 1.0,
        token_dropout: float = 0.0, eval_every: int = 5, n_eval: int = 100, seed: int = 0,
        out_dir: str | Path | None = None, checkpoint_every: int = 0, resume: bool = False, rank: int = 0,
        world_size: int = 1, log: Callable[[str], None] = print, progress: bool = True) -> list[dict]:
    """Train ``mim`` in place on canonical SMILES ``train``; returns one metrics row per epoch.

    With ``out_dir``: ``checkpoints/last.safetensors`` (everything to resume) and ``model.safetensors``
    after every epoch and every ``checkpoint_every`` steps (0: epoch ends only), ``steps.csv``,
    ``metrics.csv`` and ``learning_curve.png``. ``resume``: continue from ``out_dir``'s last
    checkpoint (same data and settings), exactly as if the run had not stopped.
    Validation is the exact greedy reconstruction rate of up to ``n_eval`` molecules of ``val``.
    ``token_dropout``: the fraction of decoder input tokens replaced by UNK (word dropout).
    ``rank``, ``world_size``: data-parallel position (see the module docstring).
    """
    trainer = Trainer(mim, train, val, epochs=epochs, batch_size=batch_size, lr=lr, warmup=warmup,
                      noise_std=noise_std, prior_weight=prior_weight, clip=clip, token_dropout=token_dropout,
                      eval_every=eval_every, n_eval=n_eval, seed=seed, out_dir=out_dir,
                      checkpoint_every=checkpoint_every, rank=rank, world_size=world_size, log=log,
                      progress=progress)
    if resume:
        if out_dir is None:
            raise UserError("resume needs the run directory (out_dir)")
        trainer.resume(trainer.last_checkpoint)
    return trainer.fit()
