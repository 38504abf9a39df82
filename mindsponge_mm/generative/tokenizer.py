"""Atom-level SMILES tokenizer with a vocabulary built from a corpus (saved as JSON).

Token ids: 0 PAD, 1 BOS, 2 EOS, 3 UNK, then the corpus tokens in sorted order. A sequence of
``n`` tokens encodes to ``[BOS, t1 .. tn, EOS]`` (length n + 2 <= ``max_length``).
"""
from __future__ import annotations

import json
import re
from typing import Iterable, Sequence

import numpy as np

from ..errors import UserError

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
MAX_LENGTH = 128

# Bracket atoms, two-letter organic-subset atoms, one-letter atoms (aromatic too), bonds,
# branches, ring closures (%nn and single digits), dot and charges/chirality outside brackets.
_PATTERN = re.compile(
    r"(\[[^\[\]]+\]|Br|Cl|Si|Se|se|As|as|B|C|N|O|P|S|F|I|b|c|n|o|p|s|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%\d{2}|\d)"
)


def tokenize(smiles: str) -> list[str]:
    """The atom-level tokens of ``smiles``; a UserError if characters are left over."""
    tokens = _PATTERN.findall(smiles)
    if "".join(tokens) != smiles:
        raise UserError(f"cannot tokenize SMILES {smiles!r}: unexpected characters; check the string")
    return tokens


class Tokenizer:
    """Maps SMILES to padded integer arrays and back.

    ``tokens`` is the full vocabulary (specials first). ``max_length`` counts BOS and EOS.
    """

    def __init__(self, tokens: Sequence[str], max_length: int = MAX_LENGTH):
        tokens = list(tokens)
        if tuple(tokens[:4]) != SPECIALS:
            raise UserError("a vocabulary must start with <pad>, <bos>, <eos>, <unk>; rebuild it with Tokenizer.build")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}
        self.max_length = int(max_length)

    @classmethod
    def build(cls, smiles: Iterable[str], max_length: int = MAX_LENGTH) -> "Tokenizer":
        """A vocabulary of every token in ``smiles`` (strings that do not tokenize are skipped)."""
        seen = set()
        for s in smiles:
            tokens = _PATTERN.findall(s)
            if "".join(tokens) == s:
                seen.update(tokens)
        return cls(list(SPECIALS) + sorted(seen), max_length)

    def __len__(self) -> int:
        return len(self.tokens)

    def fits(self, smiles: str) -> bool:
        """True when ``smiles`` tokenizes, uses only known tokens and fits ``max_length``."""
        tokens = _PATTERN.findall(smiles)
        return "".join(tokens) == smiles and len(tokens) + 2 <= self.max_length and all(t in self.index for t in tokens)

    def encode(self, smiles: str) -> list[int]:
        """``[BOS, ids.., EOS]``; unknown tokens map to UNK; too long is a UserError."""
        tokens = tokenize(smiles)
        if len(tokens) + 2 > self.max_length:
            raise UserError(f"SMILES {smiles[:40]!r}... has {len(tokens)} tokens; at most {self.max_length - 2} fit")
        return [BOS_ID] + [self.index.get(t, UNK_ID) for t in tokens] + [EOS_ID]

    def encode_batch(self, smiles: Sequence[str], length: int | None = None) -> np.ndarray:
        """int32 [B, length] arrays padded with PAD (``length`` default: the longest, BOS/EOS included)."""
        ids = [self.encode(s) for s in smiles]
        length = max(len(x) for x in ids) if length is None else int(length)
        out = np.full((len(ids), length), PAD_ID, dtype=np.int32)
        for row, x in zip(out, ids):
            if len(x) > length:
                raise UserError(f"a SMILES has {len(x)} tokens with BOS/EOS; the buffer holds {length}")
            row[: len(x)] = x
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """The SMILES of a token id sequence: stops at EOS or PAD, skips BOS, drops UNK."""
        out = []
        for i in ids:
            i = int(i)
            if i in (EOS_ID, PAD_ID):
                break
            if i in (BOS_ID, UNK_ID) or i >= len(self.tokens):
                continue
            out.append(self.tokens[i])
        return "".join(out)

    def to_json(self) -> str:
        return json.dumps({"tokens": self.tokens, "max_length": self.max_length})

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        data = json.loads(text)
        return cls(data["tokens"], data["max_length"])
