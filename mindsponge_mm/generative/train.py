"""Training of :class:`~.latent.MolMIM`: one jitted step per padded length bucket, Adam with warmup and
cosine decay, a tqdm bar with the live loss, ``metrics.csv``, a learning-curve PNG and checkpoints."""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Callable, Sequence

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from ..io_utils import atomic_path, write_text_atomic
from .latent import MolMIM
from .metrics import reconstruction
from .model import MIMLoss


class _Step(nn.Cell):
    """loss = step(ids [B, L], eps [B, D], keep [B, L-1], causal [L-1, L-1]): gradients clipped to norm ``clip``."""

    def __init__(self, loss: MIMLoss, optimizer: nn.Optimizer, clip: float):
        super().__init__()
        self.loss, self.optimizer, self.clip = loss, optimizer, float(clip)
        self.grad_fn = ms.value_and_grad(self.loss, None, optimizer.parameters)

    def construct(self, ids, eps, keep, causal):
        value, grads = self.grad_fn(ids, eps, keep, causal)
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


def make_batches(mim: MolMIM, smiles: Sequence[str], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of int32 [batch_size, bucket] arrays, shuffled; short buckets are topped up by resampling."""
    by_bucket: dict[int, list[list[int]]] = {}
    for s in smiles:
        ids = mim.tokenizer.encode(s)
        by_bucket.setdefault(mim.bucket(len(ids)), []).append(ids)
    batches = []
    for length, seqs in by_bucket.items():
        order = rng.permutation(len(seqs))
        n_batches = max(1, int(round(len(seqs) / batch_size)))
        need = n_batches * batch_size
        if need > len(order):
            order = np.concatenate([order, rng.choice(len(seqs), need - len(order))])
        for b in range(n_batches):
            buf = np.zeros((batch_size, length), np.int32)
            for r, k in enumerate(order[b * batch_size: (b + 1) * batch_size]):
                buf[r, : len(seqs[k])] = seqs[k]
            batches.append(buf)
    return [batches[i] for i in rng.permutation(len(batches))]


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


def fit(mim: MolMIM, train: Sequence[str], val: Sequence[str] = (), *, epochs: int = 10, batch_size: int = 64,
        lr: float = 1e-3, warmup: int = 100, noise_std: float = 0.1, prior_weight: float = 0.1, clip: float = 1.0,
        token_dropout: float = 0.0,
        eval_every: int = 5, n_eval: int = 100, seed: int = 0, out_dir: str | Path | None = None,
        log: Callable[[str], None] = print, progress: bool = True) -> list[dict]:
    """Train ``mim`` in place on canonical SMILES ``train``; returns one metrics row per epoch.

    With ``out_dir``: ``model.safetensors`` after every epoch, ``metrics.csv`` and ``learning_curve.png``.
    Validation is the exact greedy reconstruction rate of up to ``n_eval`` molecules of ``val``.
    ``token_dropout``: the fraction of decoder input tokens replaced by UNK (word dropout).
    """
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    per_epoch = len(make_batches(mim, train, batch_size, np.random.default_rng(seed)))
    total = max(1, epochs * per_epoch)
    optimizer = nn.Adam(mim.model.trainable_params(), learning_rate=learning_rates(total, lr, min(warmup, total // 2)))
    step = _Step(MIMLoss(mim.model, noise_std, prior_weight), optimizer, clip)
    jitted = ms.jit(step.construct)
    out_dir = Path(out_dir) if out_dir is not None else None
    rows, start = [], time.perf_counter()
    val = list(val)[:n_eval]
    log(f"training  {len(train)} molecules, {per_epoch} steps/epoch of {batch_size}, {epochs} epochs, "
        f"{sum(p.size for p in mim.model.trainable_params())} weights, code size {mim.code_size}")
    for epoch in range(1, epochs + 1):
        batches = make_batches(mim, train, batch_size, rng)
        losses = []
        disable = None if progress else True  # None: a bar on terminals only
        with tqdm(batches, desc=f"epoch {epoch}/{epochs}", unit="step", disable=disable, leave=False) as bar:
            for ids in bar:
                eps = rng.standard_normal((ids.shape[0], mim.code_size)).astype(np.float32)
                keep = (rng.random((ids.shape[0], ids.shape[1] - 1)) >= token_dropout).astype(np.int32)
                keep[:, 0] = 1  # BOS
                loss = float(jitted(ms.Tensor(ids), ms.Tensor(eps), ms.Tensor(keep),
                                    mim.causal(ids.shape[1] - 1)).asnumpy())
                losses.append(loss)
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        row = {"epoch": epoch, "step": epoch * per_epoch, "train_loss": float(np.mean(losses)), "val_exact": "",
               "time_s": round(time.perf_counter() - start, 1)}
        if val and (epoch % eval_every == 0 or epoch == epochs):
            row["val_exact"] = reconstruction(val, mim.reconstruct(val))["exact"]
        rows.append(row)
        msg = f"epoch {epoch:3d}  loss {row['train_loss']:.4f}"
        if row["val_exact"] != "":
            msg += f"  val exact reconstruction {row['val_exact']:.3f}"
        log(msg + f"  ({row['time_s']:.0f} s)")
        if out_dir is not None:
            mim.save(out_dir / "model.safetensors", extra={"epoch": epoch, "train_loss": row["train_loss"]})
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            write_text_atomic(out_dir / "metrics.csv", text.getvalue())
            plot_curve(rows, out_dir / "learning_curve.png")
    return rows
