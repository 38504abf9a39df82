"""``MolMIM``: a tokenizer plus a :class:`~.model.LatentModel`, with jitted encode/decode on fixed shapes,
greedy and beam-search decoding, sampling around a seed and self-describing checkpoints.

The tokenizer's representation (SMILES or SELFIES) travels in the checkpoint's vocabulary. The
SMILES syntax mask of :mod:`.grammar` applies to SMILES models only; SELFIES models need no syntax
mask, only :class:`~.grammar.SelfiesMask` (the first symbol is an atom).

Codes are numpy float32 arrays [N, D] with D = ``n_latents * latent_dim``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import mindspore as ms
import numpy as np

from .. import __version__
from ..errors import UserError
from ..interfaces.rdkit import canonical_smiles
from ..io_utils import atomic_path, read_safetensors
from .grammar import SelfiesMask, SyntaxMask
from .model import LatentModel, causal_bias, step_masks
from .tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

CHECKPOINT_FORMAT = "mindsponge_mm.generative/1"
DEFAULT_BUCKETS = (32, 64, 128)
# Decoding chunks of at least GROWING_CACHE_ROWS rows grow their key/value cache by CACHE_BLOCK positions
# at a time (one compiled step per length): a step at 256 rows costs 11 ms with 16 cached positions and
# 25 ms with 64; at 16 rows the length makes no difference, so small chunks keep one length (one compile).
CACHE_BLOCK, GROWING_CACHE_ROWS = 16, 64


def _row_bucket(n: int, cap: int) -> int:
    """Rows padded to a power of two >= 16 (at most ``cap``) so few shapes compile."""
    size = 16
    while size < n and size < cap:
        size *= 2
    return min(size, cap) if n <= cap else cap


class MolMIM:
    """Latent model of SMILES.  ``buckets``: padded sequence lengths (the last one is ``max_length``)."""

    def __init__(self, tokenizer: Tokenizer, model: LatentModel, buckets: Sequence[int] = DEFAULT_BUCKETS,
                 chunk: int = 256):
        self.tokenizer, self.model = tokenizer, model
        self.buckets = tuple(sorted({int(b) for b in buckets if b < tokenizer.max_length} | {tokenizer.max_length}))
        self.chunk = int(chunk)
        self.trained_on: str | None = None  # the training corpus, recorded in saved checkpoints
        self._encode = ms.jit(model.encode)
        self._decode_step = ms.jit(model.decode_step)
        self._memory = ms.jit(model.memory)
        self._causal = {}

    @classmethod
    def create(cls, tokenizer: Tokenizer, buckets: Sequence[int] = DEFAULT_BUCKETS, **hyperparameters) -> "MolMIM":
        hp = dict(hyperparameters, max_length=tokenizer.max_length)
        return cls(tokenizer, LatentModel(len(tokenizer), **hp), buckets)

    @property
    def representation(self) -> str:
        return self.tokenizer.representation

    def check_smiles(self, smiles: str, what: str = "seed SMILES") -> str:
        """The canonical SMILES of ``smiles``; a one-line UserError when RDKit rejects it, when it is
        longer than the tokenizer's ``max_length`` or when it has an element (or token) outside the
        vocabulary."""
        canonical = canonical_smiles(smiles) if isinstance(smiles, str) and smiles.strip() else None
        if canonical is None:
            raise UserError(f"invalid {what} {smiles!r}: RDKit cannot parse it; check the string")
        self.tokenizer.check(canonical, what)
        return canonical

    @property
    def code_size(self) -> int:
        return self.model.code_size

    def causal(self, length: int) -> ms.Tensor:
        if length not in self._causal:
            self._causal[length] = causal_bias(length)
        return self._causal[length]

    def bucket(self, length: int) -> int:
        """The smallest bucket that holds ``length`` tokens."""
        for b in self.buckets:
            if length <= b:
                return b
        raise UserError(f"a sequence of {length} tokens exceeds max_length {self.buckets[-1]}")

    # ------------------------------------------------------------------ encode / decode
    def encode(self, smiles: Sequence[str]) -> np.ndarray:
        """Latent codes mu [N, D] of ``smiles`` (each must fit the tokenizer's max_length)."""
        out = []
        for start in range(0, len(smiles), self.chunk):
            part = list(smiles[start: start + self.chunk])
            ids = [self.tokenizer.encode(s) for s in part]
            length = self.bucket(max(len(x) for x in ids))
            rows = _row_bucket(len(part), self.chunk)
            buf = np.full((rows, length), PAD_ID, np.int32)
            buf[len(part):, 0], buf[len(part):, 1] = BOS_ID, EOS_ID
            for r, x in enumerate(ids):
                buf[r, : len(x)] = x
            out.append(self._encode(ms.Tensor(buf)).asnumpy()[: len(part)])
        return np.concatenate(out, 0) if out else np.zeros((0, self.code_size), np.float32)

    def _decode_chunk(self, codes: np.ndarray, beam_width: int, constrained: bool,
                      max_tokens: int) -> list[list[str]]:
        n, w = len(codes), int(beam_width)
        rows = _row_bucket(n * w, max(self.chunk, n * w))
        z = np.zeros((rows, self.code_size), np.float32)
        z[: n * w] = np.repeat(codes.astype(np.float32), w, 0)
        max_len = min(self.tokenizer.max_length, int(max_tokens) + 2)
        length = self.bucket(max_len)  # longest cache: one compiled step per (rows, cache length)
        ids = np.full((rows, length), PAD_ID, np.int32)
        ids[:, 0] = BOS_ID
        memory = self._memory(ms.Tensor(z))
        block = CACHE_BLOCK if rows >= GROWING_CACHE_ROWS else length
        cache = self.model.empty_cache(rows, min(length, block))
        order = np.arange(rows, dtype=np.int32)
        score = np.zeros(rows)
        score[: n * w] = np.tile(np.r_[0.0, np.full(w - 1, -np.inf)], n)
        done = np.zeros(rows, bool)
        done[n * w:] = True
        lengths = np.ones(rows)
        syntax = None
        if constrained:
            syntax = (SyntaxMask if self.representation == "smiles" else SelfiesMask)(self.tokenizer, rows)
        for t in range(max_len - 1):
            cache = self.model.extend_cache(cache, min(length, block * (t // block + 1)))
            logp, cache = self._decode_step(ms.mutable(memory), ms.Tensor(ids[:, t: t + 1]), ms.Tensor(np.array([t], np.int32)),
                                            ms.mutable(cache), ms.Tensor(order),
                                            *step_masks(t, cache[0].shape[2]))
            logp = logp.asnumpy()
            if syntax is not None:
                logp = np.where(syntax.mask(), logp, -np.inf)
            if w == 1:
                nxt = logp.argmax(-1).astype(np.int32)
                nxt[done] = PAD_ID
            else:
                logp = np.where(done[:, None], -np.inf, logp)
                logp[done, PAD_ID] = 0.0  # a finished beam keeps its score
                cand = (score[:, None] + logp)[: n * w].reshape(n, w * logp.shape[1])
                best = np.argsort(-cand, axis=1, kind="stable")[:, :w]
                origin = (np.arange(n)[:, None] * w + best // logp.shape[1]).reshape(-1)
                nxt = np.full(rows, PAD_ID, np.int32)
                nxt[: n * w] = (best % logp.shape[1]).reshape(-1)
                keep = np.r_[origin, np.arange(n * w, rows)].astype(np.int32)
                ids, done, lengths, order = ids[keep], done[keep], lengths[keep], keep
                if syntax is not None:
                    syntax.reorder(keep)
                score[: n * w] = cand[np.arange(n)[:, None], best].reshape(-1)
            ids[:, t + 1] = nxt
            if syntax is not None:
                syntax.update(nxt, ~done)
            lengths += ~done
            done |= nxt == EOS_ID
            if done.all():
                break
        if w == 1:
            return [[self.tokenizer.decode(row)] for row in ids[:n]]
        # beams ranked by length-normalised log-probability
        norm = score[: n * w].reshape(n, w) / lengths[: n * w].reshape(n, w)
        return [[self.tokenizer.decode(ids[i * w + b]) for b in np.argsort(-norm[i], kind="stable")]
                for i in range(n)]

    def decode_beams(self, codes: np.ndarray, beam_width: int, constrained: bool = True,
                     max_tokens: int | None = None) -> list[list[str]]:
        """Every beam of a beam search: for each of the N codes [N, D], its ``beam_width`` raw strings
        ranked by length-normalised log-probability (``decode``'s arguments otherwise)."""
        max_tokens = self.tokenizer.max_length if max_tokens is None else max_tokens
        codes = np.asarray(codes, np.float32).reshape(-1, self.code_size)
        per = max(1, self.chunk // max(1, beam_width))
        out = []
        for start in range(0, len(codes), per):
            out += self._decode_chunk(codes[start: start + per], beam_width, constrained, max_tokens)
        return out

    def decode(self, codes: np.ndarray, beam_width: int = 1, constrained: bool = True,
               prefer_valid: bool = True, max_tokens: int | None = None, rerank: bool = False) -> list[str]:
        """Raw SMILES strings (possibly invalid) decoded from codes [N, D]; greedy when beam_width == 1.

        ``constrained``: mask tokens that break SMILES syntax (unbalanced branches, unclosed rings;
        see :mod:`.grammar`). Valence and aromaticity errors remain possible. For SELFIES models it
        only makes the first symbol an atom; every such symbol sequence is a valid molecule.
        ``prefer_valid`` (beam search): return the most probable beam that RDKit can sanitise, if any.
        ``max_tokens``: stop after this many SMILES tokens (an unfinished string is invalid); default
        the tokenizer's limit. Decoding costs grow with it, since a chunk runs until every row ends.
        ``rerank`` (beam search): return the valid beam whose own code (``encode`` of it) lies nearest
        the code decoded, instead of the most probable one: the encoder checks the decoder (see
        :meth:`nearest_beams`; one encoding per distinct valid beam).
        """
        codes = np.asarray(codes, np.float32).reshape(-1, self.code_size)
        beams = self.decode_beams(codes, beam_width, constrained, max_tokens)
        if rerank and beam_width > 1:
            return self.nearest_beams(codes, beams)
        out = []
        for texts in beams:
            valid = [t for t in texts if canonical_smiles(t) is not None] if prefer_valid and len(texts) > 1 else []
            out.append(valid[0] if valid else texts[0])
        return out

    def nearest_beams(self, codes: np.ndarray, beams: Sequence[Sequence[str]]) -> list[str]:
        """For each code [N, D] and its beams (``decode_beams``): the canonical SMILES of the valid,
        encodable beam whose mean code is nearest the code (squared Euclidean distance; ties go to
        the more probable beam), or the most probable raw string when no beam is valid."""
        out = [texts[0] for texts in beams]
        cands = [(i, c) for i, texts in enumerate(beams)
                 for c in dict.fromkeys(canonical_smiles(t) for t in texts) if c is not None and self.tokenizer.fits(c)]
        if not cands:
            return out
        rows = np.array([i for i, _ in cands])
        dist = ((self.encode([c for _, c in cands]) - np.asarray(codes, np.float32)[rows]) ** 2).sum(1)
        best: dict[int, float] = {}
        for (i, c), d in zip(cands, dist):
            if i not in best or d < best[i]:
                best[i], out[i] = float(d), c
        return out

    def reconstruct(self, smiles: Sequence[str], beam_width: int = 1, constrained: bool = True,
                    rerank: bool = False) -> list[str]:
        """decode(encode(smiles)): raw decoded strings (``rerank``: see :meth:`decode`)."""
        return self.decode(self.encode(smiles), beam_width, constrained, rerank=rerank)

    def sample(self, seed: str, n: int = 10, radius: float = 1.0, beam_width: int = 1, rng_seed: int = 0,
               unique: bool = True, rerank: bool = False) -> list[str]:
        """Molecules near ``seed``: decode mu(seed) + radius·N(0, I) for ``n`` draws (``rerank``: see
        :meth:`decode`).

        Returns canonical SMILES of the valid decodings, de-duplicated in draw order when ``unique``.
        """
        seed_c = self.check_smiles(seed)
        mu = self.encode([seed_c])
        rng = np.random.default_rng(rng_seed)
        codes = mu + radius * rng.standard_normal((n, self.code_size)).astype(np.float32)
        out, seen = [], set()
        for s in self.decode(codes, beam_width, rerank=rerank):
            c = canonical_smiles(s)
            if c is None or (unique and c in seen):
                continue
            seen.add(c)
            out.append(c)
        return out

    # ------------------------------------------------------------------ checkpoints
    def metadata(self) -> dict:
        meta = {"format": CHECKPOINT_FORMAT, "package_version": __version__, "model": "molmim",
                "hyperparameters": self.model.hyperparameters, "buckets": list(self.buckets),
                "vocabulary": json.loads(self.tokenizer.to_json())}
        if self.trained_on is not None:
            meta["trained_on"] = self.trained_on
        return meta

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        """Weights and metadata (vocabulary, hyperparameters) in one safetensors file, written atomically."""
        from safetensors.numpy import save_file

        path = Path(path)
        tensors = {name: p.asnumpy().copy() for name, p in self.model.parameters_and_names()}
        meta = {**self.metadata(), **(extra or {})}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"mindsponge_mm": json.dumps(meta)})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MolMIM":
        """A model saved by :meth:`save`; a missing or foreign file is a one-line UserError."""
        try:
            meta, tensors = read_safetensors(path, "generative checkpoint not found; train one with "
                                                   "'mindsponge-mm generate train'")
        except json.JSONDecodeError:
            raise UserError(f"{path}: the checkpoint's metadata is not readable JSON; the file is corrupt, "
                            f"train again or use another checkpoint") from None
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"{path}: not a generative-model checkpoint; use one written by 'generate train'")
        try:
            tokenizer = Tokenizer.from_json(json.dumps(meta["vocabulary"]))
            hp = dict(meta["hyperparameters"])
            hp.pop("vocab_size", None)
            obj = cls.create(tokenizer, meta.get("buckets", DEFAULT_BUCKETS), **hp)
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{path}: the checkpoint's metadata is incomplete ({type(err).__name__}: {err}); the "
                            f"file is corrupt, train again or use another checkpoint") from None
        for name, p in obj.model.parameters_and_names():
            if name not in tensors or tuple(tensors[name].shape) != tuple(p.shape):
                raise UserError(f"{path}: weight {name} is missing or has the wrong shape; the file is inconsistent")
            p.copy_(ms.Tensor(tensors[name]))
        obj.meta = meta
        obj.trained_on = meta.get("trained_on")
        return obj
