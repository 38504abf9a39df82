"""Tokenizers of molecule strings, with a vocabulary built from a corpus (saved as JSON).

Two representations, chosen by ``model.representation``:

* ``smiles`` (:class:`Tokenizer`): atom-level SMILES tokens (bracket atoms, two-letter atoms,
  bonds, branches, ring labels);
* ``selfies`` (:class:`SelfiesTokenizer`, needs the ``selfies`` package): the SMILES is
  translated to SELFIES and its symbols are the tokens. Any sequence of SELFIES symbols decodes
  to a valid molecule, so every decoded string is one by construction.

Both take SMILES in and give SMILES out (:meth:`Tokenizer.encode` / :meth:`Tokenizer.decode`).
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
REPRESENTATIONS = ("smiles", "selfies")
SELFIES_INSTALL = "pip install selfies"

# Bracket atoms, two-letter organic-subset atoms, one-letter atoms (aromatic too), bonds,
# branches, ring closures (%nn and single digits), dot and charges/chirality outside brackets.
_PATTERN = re.compile(
    r"(\[[^\[\]]+\]|Br|Cl|Si|Se|se|As|as|B|C|N|O|P|S|F|I|b|c|n|o|p|s|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%\d{2}|\d)"
)
# the element of an atom token of either representation: "[13CH3+]" -> C, "[nH]" -> n, "[=N+1]" -> N
_ELEMENT = re.compile(r"^\[?[=#/\\-]?\d*(Cl|Br|[A-Z][a-z]?|se|as|te|[bcnops])")


def tokenize(smiles: str) -> list[str]:
    """The atom-level SMILES tokens of ``smiles``; a UserError if characters are left over."""
    tokens = _PATTERN.findall(smiles)
    if "".join(tokens) != smiles:
        raise UserError(f"cannot tokenize SMILES {smiles!r}: unexpected characters; check the string")
    return tokens


def token_element(token: str) -> str | None:
    """The element symbol of an atom token (capitalised: ``c`` -> ``C``), None for other tokens."""
    body = token.strip("[]").lstrip("=#/\\-")
    if body.startswith(("Branch", "Ring", "epsilon")) or token in SPECIALS:
        return None
    m = _ELEMENT.match(token)
    return m.group(1).capitalize() if m else None


def require_selfies():
    """The ``selfies`` module, or a one-line UserError naming the install command."""
    try:
        import selfies
    except ImportError:
        raise UserError(f"model.representation: selfies needs the selfies package; install it with "
                        f"{SELFIES_INSTALL} (or use representation: smiles)") from None
    return selfies


class Tokenizer:
    """Maps SMILES to padded integer arrays and back (SMILES tokens; see :class:`SelfiesTokenizer`).

    ``tokens`` is the full vocabulary (specials first). ``max_length`` counts BOS and EOS.
    """

    representation = "smiles"

    def __init__(self, tokens: Sequence[str], max_length: int = MAX_LENGTH):
        tokens = list(tokens)
        if tuple(tokens[:4]) != SPECIALS:
            raise UserError("a vocabulary must start with <pad>, <bos>, <eos>, <unk>; rebuild it with Tokenizer.build")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}
        self.max_length = int(max_length)

    # the representation: molecule text <-> tokens
    @classmethod
    def split(cls, smiles: str) -> list[str] | None:
        """The tokens of ``smiles``, or None when it cannot be tokenized."""
        tokens = _PATTERN.findall(smiles)
        return tokens if "".join(tokens) == smiles else None

    def join(self, tokens: Sequence[str]) -> str:
        """The SMILES that ``tokens`` spell."""
        return "".join(tokens)

    @classmethod
    def build(cls, smiles: Iterable[str], max_length: int = MAX_LENGTH) -> "Tokenizer":
        """A vocabulary of every token in ``smiles`` (strings that do not tokenize are skipped)."""
        return cls.from_splits((cls.split(s) for s in smiles), max_length)

    @classmethod
    def from_splits(cls, splits: Iterable[Sequence[str] | None], max_length: int = MAX_LENGTH) -> "Tokenizer":
        """A vocabulary of every token in ``splits`` (outputs of :meth:`split`; None entries are skipped)."""
        seen = set()
        for tokens in splits:
            if tokens is not None:
                seen.update(tokens)
        return cls(list(SPECIALS) + sorted(seen), max_length)

    def __len__(self) -> int:
        return len(self.tokens)

    def fits(self, smiles: str) -> bool:
        """True when ``smiles`` tokenizes, uses only known tokens and fits ``max_length``."""
        return self.fits_tokens(self.split(smiles))

    def fits_tokens(self, tokens: Sequence[str] | None) -> bool:
        """:meth:`fits` for the output of :meth:`split`."""
        return tokens is not None and len(tokens) + 2 <= self.max_length and all(t in self.index for t in tokens)

    def elements(self) -> set[str]:
        """Element symbols of the vocabulary's atom tokens."""
        return {e for e in map(token_element, self.tokens[len(SPECIALS):]) if e is not None}

    def check(self, smiles: str, what: str = "SMILES") -> list[str]:
        """The tokens of ``smiles``; a one-line UserError when it does not tokenize, is longer than
        ``max_length`` or has tokens outside the vocabulary (naming the missing elements)."""
        tokens = self.split(smiles)
        if tokens is None:
            raise UserError(f"{what} {smiles!r} cannot be written as {self.representation.upper()} tokens; "
                            f"check the string")
        if len(tokens) + 2 > self.max_length:
            raise UserError(f"{what} {smiles[:60]!r} has {len(tokens)} {self.representation.upper()} tokens; this "
                            f"model takes at most {self.max_length - 2} (model.max_length {self.max_length} counts "
                            f"BOS and EOS); use a shorter molecule")
        unknown = [t for t in dict.fromkeys(tokens) if t not in self.index]
        if unknown:
            known = self.elements()
            missing = sorted({e for e in map(token_element, unknown) if e is not None and e not in known})
            if missing:
                raise UserError(f"{what} {smiles[:60]!r} has element {', '.join(missing)}, which this model's "
                                f"vocabulary lacks (it knows {', '.join(sorted(known))}); use molecules of those "
                                f"elements or train on a corpus that has {', '.join(missing)}")
            raise UserError(f"{what} {smiles[:60]!r} has token(s) {', '.join(unknown)} that this model's vocabulary "
                            f"lacks; use another molecule or train on a corpus that has them")
        return tokens

    def encode(self, smiles: str) -> list[int]:
        """``[BOS, ids.., EOS]``; unknown tokens map to UNK; too long is a UserError."""
        tokens = self.split(smiles)
        if tokens is None:
            raise UserError(f"cannot tokenize {self.representation.upper()} of {smiles!r}: check the string")
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
        return self.join(out)

    def to_json(self) -> str:
        data = {"tokens": self.tokens, "max_length": self.max_length}
        if self.representation != "smiles":  # SMILES vocabularies stay as older checkpoints wrote them
            data["representation"] = self.representation
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        """The tokenizer that :meth:`to_json` wrote (of its representation; SMILES when none is named)."""
        data = json.loads(text)
        kind = tokenizer_class(data.get("representation", "smiles"))
        return kind(data["tokens"], data["max_length"])


class SelfiesTokenizer(Tokenizer):
    """SELFIES symbols as tokens; SMILES in (translated with ``selfies.encoder``) and SMILES out.

    Decoding joins the symbols and translates them back with ``selfies.decoder``, which turns any
    symbol sequence into a valid molecule (an empty one for no symbols).
    """

    representation = "selfies"

    def __init__(self, tokens: Sequence[str], max_length: int = MAX_LENGTH):
        self._sf = require_selfies()
        super().__init__(tokens, max_length)

    @classmethod
    def split(cls, smiles: str) -> list[str] | None:
        sf = require_selfies()
        try:
            text = sf.encoder(smiles)
        except Exception:  # selfies.EncoderError and RDKit-free parse errors alike
            return None
        return list(sf.split_selfies(text)) if text is not None else None

    def join(self, tokens: Sequence[str]) -> str:
        try:
            return self._sf.decoder("".join(tokens))
        except Exception:  # symbols outside the SELFIES alphabet (never from a vocabulary built here)
            return ""


def tokenizer_class(representation: str) -> type[Tokenizer]:
    """The tokenizer class of ``smiles`` or ``selfies`` (a UserError for others)."""
    if representation == "smiles":
        return Tokenizer
    if representation == "selfies":
        require_selfies()
        return SelfiesTokenizer
    raise UserError(f"unknown representation {representation!r}; use one of {', '.join(REPRESENTATIONS)}")


def build_tokenizer(smiles: Iterable[str], representation: str = "smiles", max_length: int = MAX_LENGTH) -> Tokenizer:
    """A vocabulary of ``representation`` tokens over ``smiles``."""
    return tokenizer_class(representation).build(smiles, max_length)
