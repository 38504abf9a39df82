"""Perceiver encoder -> fixed-size latent code -> Transformer decoder (MindSpore cells).

Shapes: B molecules, L tokens (padded, BOS/EOS included), V vocabulary, d ``d_model``,
K ``n_latents``, z ``latent_dim``; the latent code of a molecule is a flat vector [K*z].

* :class:`Encoder`: token + position embeddings, ``encoder_layers`` self-attention blocks over
  the tokens (padding masked), then K learned latent queries cross-attend to the tokens
  (Perceiver), ``latent_layers`` self-attention blocks among the latents, and a projection to z.
* :class:`Decoder`: the code is projected back to K memory vectors of width d; ``decoder_layers``
  pre-norm blocks of causal self-attention, cross-attention to the memory and a feed-forward net.
* :class:`MIMLoss`: the MIM objective with a fixed-width Gaussian posterior
  q(z|x) = N(mu(x), noise_std²): token cross-entropy of x given z = mu + noise_std·eps plus
  ``prior_weight`` · ½|z|² / (K z) (the -log P(z) term of MIM with P = N(0, I); -log q is a
  constant for fixed width). Codes within ~noise_std of mu(x) are trained to decode to x.
  Decoder inputs are replaced by UNK where ``keep`` is 0 (word dropout, so that the decoder
  has to read the code rather than only the previous tokens).
"""
from __future__ import annotations

import math

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from .tokenizer import PAD_ID, UNK_ID

NEG_INF = -1.0e9

DEFAULT_HYPERPARAMETERS = dict(d_model=64, n_heads=4, ff_dim=128, n_latents=2, latent_dim=32, encoder_layers=1,
                               latent_layers=1, decoder_layers=2, max_length=128)


class Attention(nn.Cell):
    """Multi-head attention: x [B, Lq, d] attends to m [B, Lk, d]; bias [B or 1, Lq or 1, Lk] is added to the scores."""

    def __init__(self, d: int, n_heads: int):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"d_model {d} is not a multiple of n_heads {n_heads}")
        self.h, self.dh = n_heads, d // n_heads
        self.scale = 1.0 / math.sqrt(self.dh)
        self.q, self.k, self.v, self.o = (nn.Dense(d, d) for _ in range(4))

    def _split(self, x):  # [B, L, d] -> [B, h, L, dh]
        b, n, _ = x.shape
        return ops.transpose(x.reshape(b, n, self.h, self.dh), (0, 2, 1, 3))

    def construct(self, x, m, bias):
        b, n, d = x.shape
        q, k, v = self._split(self.q(x)), self._split(self.k(m)), self._split(self.v(m))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * self.scale + ops.expand_dims(bias, 1)
        att = ops.softmax(scores, -1)
        out = ops.transpose(ops.matmul(att, v), (0, 2, 1, 3)).reshape(b, n, d)
        return self.o(out)

    def memory(self, m):
        """Keys and values [B, h, K, dh] of a fixed memory m [B, K, d], projected once for :meth:`attend`."""
        return self._split(self.k(m)), self._split(self.v(m))

    def attend(self, x, keys, values):
        """Attention of x [B, Lq, d] to every position of projected keys and values (:meth:`memory`):
        equal to ``construct(x, m, 0)``."""
        b, n, d = x.shape
        scores = ops.matmul(self._split(self.q(x)), ops.transpose(keys, (0, 1, 3, 2))) * self.scale
        out = ops.matmul(ops.softmax(scores, -1), values)
        return self.o(ops.transpose(out, (0, 2, 1, 3)).reshape(b, n, d))

    def cached(self, x, keys, values, slot, bias):
        """Self-attention of one new position x [B, 1, d] over a key/value cache [B, h, L, dh].

        ``slot`` [1, 1, L, 1] is 1 at the new position (its key and value are written there; the cache
        must be zero there), ``bias`` [1, 1, 1, L] is -1e9 after it (:func:`step_masks`).
        Returns (output [B, 1, d], keys, values).
        """
        b, _, d = x.shape
        q = self._split(self.q(x))
        keys = keys + self._split(self.k(x)) * slot  # the cache is zero at the new position
        values = values + self._split(self.v(x)) * slot
        scores = ops.matmul(q, ops.transpose(keys, (0, 1, 3, 2))) * self.scale + bias
        out = ops.matmul(ops.softmax(scores, -1), values)  # [B, h, 1, dh]
        return self.o(ops.transpose(out, (0, 2, 1, 3)).reshape(b, 1, d)), keys, values


class FeedForward(nn.Cell):
    def __init__(self, d: int, ff: int):
        super().__init__()
        self.a, self.b = nn.Dense(d, ff), nn.Dense(ff, d)

    def construct(self, x):
        return self.b(ops.gelu(self.a(x)))


class Block(nn.Cell):
    """Pre-norm block: x + Att(LN x, memory) [+ x + CrossAtt(LN x, mem2)] + FF. Memory None = self-attention."""

    def __init__(self, d: int, n_heads: int, ff: int, cross: bool = False):
        super().__init__()
        self.ln1, self.ln3 = nn.LayerNorm((d,)), nn.LayerNorm((d,))
        self.att, self.ff = Attention(d, n_heads), FeedForward(d, ff)
        self.cross = cross
        if cross:
            self.ln2 = nn.LayerNorm((d,))
            self.catt = Attention(d, n_heads)

    def construct(self, x, self_bias, mem, mem_bias):
        y = self.ln1(x)
        x = x + self.att(y, y, self_bias)
        if self.cross:
            x = x + self.catt(self.ln2(x), mem, mem_bias)
        return x + self.ff(self.ln3(x))

    def cached(self, x, keys, values, slot, bias, mem_keys, mem_values):
        """The block for one new position x [B, 1, d] with a self-attention cache (see Attention.cached)
        and the cross-attention memory projected once (``catt.memory``)."""
        att, keys, values = self.att.cached(self.ln1(x), keys, values, slot, bias)
        x = x + att
        if self.cross:
            x = x + self.catt.attend(self.ln2(x), mem_keys, mem_values)
        return x + self.ff(self.ln3(x)), keys, values


class CrossBlock(nn.Cell):
    """Latents [B, K, d] cross-attend to tokens [B, L, d] (Perceiver), then a feed-forward net."""

    def __init__(self, d: int, n_heads: int, ff: int):
        super().__init__()
        self.lnq, self.lnk, self.ln2 = nn.LayerNorm((d,)), nn.LayerNorm((d,)), nn.LayerNorm((d,))
        self.att, self.ff = Attention(d, n_heads), FeedForward(d, ff)

    def construct(self, latents, tokens, bias):
        x = latents + self.att(self.lnq(latents), self.lnk(tokens), bias)
        return x + self.ff(self.ln2(x))


class Embedding(nn.Cell):
    """Token ids [B, L] -> [B, L, d]: token table plus learned positions."""

    def __init__(self, vocab: int, d: int, max_length: int):
        super().__init__()
        init = np.random.default_rng(0)
        self.table = ms.Parameter(ms.Tensor(init.normal(0, 0.1, (vocab, d)).astype(np.float32)), name="table")
        self.pos = ms.Parameter(ms.Tensor(init.normal(0, 0.02, (max_length, d)).astype(np.float32)), name="pos")

    def construct(self, ids):
        n = ids.shape[1]
        return ops.gather(self.table, ids, 0) + ops.expand_dims(self.pos[:n], 0)

    def at(self, ids, position):
        """Token ids [B, 1] at one position (int32 [1]) -> [B, 1, d]."""
        return ops.gather(self.table, ids, 0) + ops.expand_dims(ops.gather(self.pos, position, 0), 0)


class LatentModel(nn.Cell):
    """Encoder and decoder of SMILES token sequences; hyperparameters as in :data:`DEFAULT_HYPERPARAMETERS`."""

    def __init__(self, vocab_size: int, d_model: int = 64, n_heads: int = 4, ff_dim: int = 128, n_latents: int = 2,
                 latent_dim: int = 32, encoder_layers: int = 1, latent_layers: int = 1, decoder_layers: int = 2,
                 max_length: int = 128):
        super().__init__()
        self.hyperparameters = dict(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, ff_dim=ff_dim,
                                    n_latents=n_latents, latent_dim=latent_dim, encoder_layers=encoder_layers,
                                    latent_layers=latent_layers, decoder_layers=decoder_layers, max_length=max_length)
        d = d_model
        self.k, self.z, self.d = n_latents, latent_dim, d
        self.code_size = n_latents * latent_dim
        self.max_length = max_length
        self.embed = Embedding(vocab_size, d, max_length)
        self.enc_blocks = nn.CellList([Block(d, n_heads, ff_dim) for _ in range(encoder_layers)])
        rng = np.random.default_rng(1)
        self.latents = ms.Parameter(ms.Tensor(rng.normal(0, 0.1, (n_latents, d)).astype(np.float32)), name="latents")
        self.cross = CrossBlock(d, n_heads, ff_dim)
        self.lat_blocks = nn.CellList([Block(d, n_heads, ff_dim) for _ in range(latent_layers)])
        self.ln_code = nn.LayerNorm((d,))
        self.to_code = nn.Dense(d, latent_dim)
        self.from_code = nn.Dense(latent_dim, d)
        self.dec_blocks = nn.CellList([Block(d, n_heads, ff_dim, cross=True) for _ in range(decoder_layers)])
        self.ln_out = nn.LayerNorm((d,))
        self.out = nn.Dense(d, vocab_size)

    def encode(self, ids):
        """ids int32 [B, L] (BOS .. EOS, PAD) -> code mu [B, K*z]."""
        b = ids.shape[0]
        pad_bias = ops.expand_dims((ids == PAD_ID).astype(ms.float32) * NEG_INF, 1)  # [B, 1, L]
        x = self.embed(ids)
        for blk in self.enc_blocks:
            x = blk(x, pad_bias, x, pad_bias)
        lat = ops.broadcast_to(ops.expand_dims(self.latents, 0), (b, self.k, self.d))
        lat = self.cross(lat, x, pad_bias)
        no_bias = ops.zeros_like(lat[:, :, :1]).transpose(0, 2, 1)  # [B, 1, K]
        for blk in self.lat_blocks:
            lat = blk(lat, no_bias, lat, no_bias)
        return self.to_code(self.ln_code(lat)).reshape(b, self.code_size)

    def decode(self, code, ids, causal):
        """Teacher-forced logits [B, L, V] for code [B, K*z], input ids [B, L] and causal bias [L, L]."""
        b = code.shape[0]
        mem = self.from_code(code.reshape(b, self.k, self.z))  # [B, K, d]
        mem_bias = ops.zeros_like(mem[:, :, :1]).transpose(0, 2, 1)  # [B, 1, K]
        self_bias = ops.expand_dims(causal, 0)
        x = self.embed(ids)
        for blk in self.dec_blocks:
            x = blk(x, self_bias, mem, mem_bias)
        return self.out(self.ln_out(x))

    def memory(self, code):
        """The decoder's cross-attention keys and values for codes [B, K*z]: a tuple of
        2 x decoder_layers tensors [B, n_heads, K, d_model / n_heads], computed once per decoding
        (they do not change from step to step)."""
        b = code.shape[0]
        mem = self.from_code(code.reshape(b, self.k, self.z))
        out = ()
        for blk in self.dec_blocks:
            out = out + blk.catt.memory(mem)
        return out

    def empty_cache(self, rows: int, length: int) -> tuple:
        """The decoder's key/value cache for ``rows`` sequences of up to ``length`` tokens: a tuple of
        2 x decoder_layers zero tensors [rows, n_heads, length, d_model / n_heads] (keys, values per layer).
        Separate tensors: slicing one stacked tensor cost more than the whole step on the CPU."""
        att = self.dec_blocks[0].att
        zeros = ms.Tensor(np.zeros((rows, att.h, length, att.dh), np.float32))
        return tuple(zeros.copy() for _ in range(2 * len(self.dec_blocks)))

    @staticmethod
    def extend_cache(cache: tuple, length: int) -> tuple:
        """The cache (:meth:`empty_cache`) zero-padded to ``length`` positions."""
        rows, heads, now, dh = cache[0].shape
        if length == now:
            return cache
        zeros = ms.Tensor(np.zeros((rows, heads, length - now, dh), np.float32))
        return tuple(ops.concat((c, zeros), 2) for c in cache)

    def decode_step(self, memory, token, position, cache, order, slot, bias):
        """One step of incremental decoding: log p(next token | code, tokens up to ``position``) [B, V].

        ``memory``: :meth:`memory` of the codes [B, K*z]; token int32 [B, 1], the token at
        ``position`` (int32 [1]); ``cache`` (:meth:`empty_cache`, any length C > position) holds the
        keys and values of the earlier positions, zero from ``position`` on; ``order`` int32 [B]
        picks each row's cache row first (beam search reorders rows within a code's beams, so the
        memory needs no reordering; identity otherwise); ``slot`` and ``bias`` come from
        :func:`step_masks` (position, C). Returns (log-probabilities [B, V], the updated cache).
        Equal to the teacher-forced :meth:`decode` at that position, at a cost that grows with C only.
        """
        x = self.embed.at(token, position)
        updated = ()
        for i, blk in enumerate(self.dec_blocks):
            keys, values = ops.gather(cache[2 * i], order, 0), ops.gather(cache[2 * i + 1], order, 0)
            x, keys, values = blk.cached(x, keys, values, slot, bias, memory[2 * i], memory[2 * i + 1])
            updated = updated + (keys, values)
        logits = self.out(self.ln_out(x)).squeeze(1)
        return ops.log_softmax(logits, -1), updated


def step_masks(position: int, length: int) -> tuple:
    """(slot [1, 1, L, 1], bias [1, 1, 1, L]) float32 tensors for :meth:`LatentModel.decode_step` at
    ``position``: the one-hot of the position, and -1e9 after it."""
    slot = np.zeros((1, 1, length, 1), np.float32)
    slot[0, 0, position, 0] = 1.0
    bias = np.where(np.arange(length) > position, NEG_INF, 0.0).astype(np.float32).reshape(1, 1, 1, length)
    return ms.Tensor(slot), ms.Tensor(bias)


def causal_bias(length: int) -> ms.Tensor:
    """[L, L] float32: 0 on and below the diagonal, -1e9 above it."""
    return ms.Tensor(np.triu(np.full((length, length), NEG_INF, np.float32), 1))


class MIMLoss(nn.Cell):
    """Token cross-entropy + prior_weight · ½|z|²/(K z), each averaged over a batch.

    ids int32 [B, L], eps [B, K*z] standard normal, keep int32 [B, L-1] (0: feed UNK), causal [L-1, L-1],
    norms float32 [2]: (non-PAD target tokens, molecules) of the batch the loss averages over. One
    process passes its own batch's counts; a data-parallel rank passes those of the combined batch,
    so that the ranks' losses (and gradients) sum to the combined batch's.
    """

    def __init__(self, model: LatentModel, noise_std: float = 0.1, prior_weight: float = 0.1):
        super().__init__()
        self.model = model
        self.noise_std = float(noise_std)
        self.prior_weight = float(prior_weight)

    def construct(self, ids, eps, keep, causal, norms):
        mu = self.model.encode(ids)
        z = mu + self.noise_std * eps
        n = ids.shape[1]
        inputs, targets = ids[:, : n - 1], ids[:, 1:]
        inputs = inputs * keep + UNK_ID * (1 - keep)
        logp = ops.log_softmax(self.model.decode(z, inputs, causal), -1)
        onehot = ops.one_hot(targets, logp.shape[-1], ops.ones((), ms.float32), ops.zeros((), ms.float32))
        nll = -(logp * onehot).sum(-1)
        mask = (targets != PAD_ID).astype(ms.float32)
        ce = (nll * mask).sum() / norms[0]
        prior = 0.5 * (z * z).sum() / (norms[1] * z.shape[1])
        return ce + self.prior_weight * prior


def loss_norms(ids: np.ndarray) -> np.ndarray:
    """float32 [2]: (non-PAD target tokens, at least 1; molecules) of a batch of ids [B, L]."""
    return np.array([max(int((ids[:, 1:] != PAD_ID).sum()), 1), ids.shape[0]], np.float32)
