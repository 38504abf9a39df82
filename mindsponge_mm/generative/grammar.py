"""Syntax constraints for SMILES decoding: balanced branches and closed rings.

:class:`SyntaxMask` tracks, for each row being decoded, the branch depth, the open ring-closure
labels and the class of the previous token, and masks the next tokens that would make the string
unparseable: ``)`` without an open branch, ``(``/ring labels/bonds in the wrong place, a ring
label that would bond an atom to itself or repeat a ring bond between two atoms, and EOS while a
branch or ring is still open. Valences of organic-subset atoms are capped (C 4, N 3, O 2, S 6, P 5,
halogens 1, aromatic atoms counting aromatic bonds as single); bracket atoms are not capped.
Aromaticity (Kekulé structures) is left to RDKit.

:class:`SelfiesMask` is the one rule SELFIES models need: the first symbol is an atom.
"""
from __future__ import annotations

import numpy as np

from .tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

START, ATOM, RING, BOND, OPEN, CLOSE, DOT, OTHER = range(8)
_BONDS = {"-": 1, "=": 2, "#": 3, ":": 1, "/": 1, "\\": 1, "~": 1}
_VALENCE = {"B": 3, "C": 4, "N": 3, "O": 2, "P": 5, "S": 6, "F": 1, "Cl": 1, "Br": 1, "I": 1,
            "b": 3, "c": 4, "n": 3, "o": 2, "p": 3, "s": 4}
UNCAPPED = 16


def token_valences(tokenizer: Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """(max valence [V] of atom tokens, bond order [V] of bond tokens); zeros elsewhere."""
    valence, order = np.zeros(len(tokenizer), np.int64), np.zeros(len(tokenizer), np.int64)
    for i, t in enumerate(tokenizer.tokens):
        if i > UNK_ID:
            valence[i] = _VALENCE.get(t, UNCAPPED if t.startswith("[") or t == "*" else 0)
            order[i] = _BONDS.get(t, 0)
    return valence, order


def token_classes(tokenizer: Tokenizer) -> np.ndarray:
    """int [V]: the syntactic class of every token."""
    out = np.full(len(tokenizer), OTHER, np.int64)
    for i, t in enumerate(tokenizer.tokens):
        if i in (PAD_ID, BOS_ID, EOS_ID, UNK_ID):
            continue
        if t.startswith("[") or t[0].isalpha() or t == "*":
            out[i] = ATOM
        elif t.isdigit() or t.startswith("%"):
            out[i] = RING
        elif t in _BONDS:
            out[i] = BOND
        elif t == "(":
            out[i] = OPEN
        elif t == ")":
            out[i] = CLOSE
        elif t == ".":
            out[i] = DOT
    return out


class SyntaxMask:
    """Per-row SMILES syntax state for ``rows`` sequences; ``mask()`` -> bool [rows, V] of allowed tokens."""

    def __init__(self, tokenizer: Tokenizer, rows: int):
        self.cls = token_classes(tokenizer)
        self.max_valence, self.order = token_valences(tokenizer)
        size = tokenizer.max_length + 1
        self.valence = np.zeros((rows, size), np.int64)  # max valence of each atom so far
        self.used = np.zeros((rows, size), np.int64)  # bond orders attached to each atom
        self.pending = np.ones(rows, np.int64)  # order of the next bond (1 unless a bond token set it)
        self.ring_ids = np.flatnonzero(self.cls == RING)
        self.ring_col = {int(t): k for k, t in enumerate(self.ring_ids)}
        self.depth = np.zeros(rows, np.int64)
        self.rings = np.zeros((rows, len(self.ring_ids)), bool)
        self.prev = np.full(rows, START, np.int64)
        self.atom = np.full(rows, -1, np.int64)  # index of the current atom
        self.open_at = np.zeros((rows, len(self.ring_ids)), np.int64)  # atom where each open label started
        self.ring_order = np.ones((rows, len(self.ring_ids)), np.int64)  # order reserved when a label opened
        self.bonded_here = np.zeros((rows, tokenizer.max_length + 1), bool)  # bond partners of the current atom
        self.anchor = np.full(rows, -1, np.int64)  # the atom the next atom bonds to
        self.stack = np.full((rows, tokenizer.max_length + 1), -1, np.int64)  # branch anchors

    def reorder(self, index: np.ndarray) -> None:
        for name in ("depth", "rings", "prev", "atom", "open_at", "bonded_here", "anchor", "stack", "valence",
                     "used", "pending", "ring_order"):
            setattr(self, name, getattr(self, name)[index])

    def mask(self) -> np.ndarray:
        cls, prev = self.cls[None, :], self.prev[:, None]
        after_atomish = np.isin(prev, (ATOM, RING, CLOSE))
        allowed = np.ones((len(self.prev), len(self.cls)), bool)
        allowed &= ~(cls == OTHER) | (np.arange(len(self.cls)) == EOS_ID)[None, :]
        allowed &= (cls != RING) | np.isin(prev, (ATOM, RING, BOND))
        allowed &= (cls != BOND) | after_atomish | (prev == OPEN)
        allowed &= (cls != OPEN) | after_atomish
        allowed &= (cls != CLOSE) | (after_atomish & (self.depth[:, None] > 0))
        allowed &= (cls != DOT) | (after_atomish & (self.depth[:, None] == 0))
        # after a bond, only a ring label that closes an open ring
        if len(self.ring_ids):
            ring_ok = ~((prev == BOND) & ~self.rings)  # [rows, n_rings]
            partner_taken = np.take_along_axis(self.bonded_here, self.open_at, 1) | (self.open_at == self.atom[:, None])
            ring_ok &= ~(self.rings & partner_taken)
            allowed[:, self.ring_ids] &= ring_ok
        # valences: the atom a new bond attaches to (the anchor) and the partner of a ring closure
        rows = np.arange(len(self.prev))
        anchor = np.maximum(self.anchor, 0)
        spare = np.where(self.anchor >= 0, self.valence[rows, anchor] - self.used[rows, anchor], UNCAPPED)
        need = np.where(self.anchor >= 0, self.pending, 0)
        atom_cols = np.flatnonzero(self.cls == ATOM)
        allowed[:, atom_cols] &= (spare >= need)[:, None] & (self.max_valence[atom_cols][None, :] >= need[:, None])
        bond_cols = np.flatnonzero(self.cls == BOND)
        allowed[:, bond_cols] &= spare[:, None] >= self.order[bond_cols][None, :]
        allowed[:, self.cls == OPEN] &= (spare >= 1)[:, None]
        if len(self.ring_ids):
            # the partner reserved ring_order when the label opened; a closing bond of higher order needs more
            partner_spare = np.take_along_axis(self.valence - self.used, self.open_at, 1)  # [rows, n_rings]
            extra = np.maximum(self.pending[:, None] - self.ring_order, 0)
            ring_fits = (spare >= self.pending)[:, None] & (~self.rings | (partner_spare >= extra))
            allowed[:, self.ring_ids] &= ring_fits
        can_end = after_atomish[:, 0] & (self.depth == 0) & ~self.rings.any(1)
        allowed[:, EOS_ID] = can_end
        allowed[:, PAD_ID] = False
        allowed[:, BOS_ID] = False
        allowed[:, UNK_ID] = False
        return allowed

    def update(self, tokens: np.ndarray, active: np.ndarray) -> None:
        """Advance rows where ``active`` with the chosen ``tokens`` [rows]."""
        c = self.cls[tokens]
        rows = np.arange(len(tokens))
        opening, closing = active & (c == OPEN), active & (c == CLOSE)
        self.stack[rows[opening], self.depth[opening]] = self.anchor[opening]
        self.depth += opening
        self.depth -= closing
        self.anchor[closing] = self.stack[rows[closing], self.depth[closing]]
        self.anchor[active & (c == DOT)] = -1
        bond = active & (c == BOND)
        self.pending[bond] = self.order[tokens[bond]]
        new_atom = active & (c == ATOM)
        self.atom += new_atom
        self.bonded_here[new_atom] = False
        self.valence[rows[new_atom], self.atom[new_atom]] = self.max_valence[tokens[new_atom]]
        chained = new_atom & (self.anchor >= 0)
        self.bonded_here[rows[chained], self.anchor[chained]] = True  # the chain bond to the previous atom
        self.used[rows[chained], self.anchor[chained]] += self.pending[chained]
        self.used[rows[chained], self.atom[chained]] += self.pending[chained]
        self.pending[new_atom] = 1
        self.anchor[new_atom] = self.atom[new_atom]
        for r in np.flatnonzero(active & (c == RING)):
            k = self.ring_col[int(tokens[r])]
            if self.rings[r, k]:  # closing: remember the partner; the bond order counts on both atoms
                self.bonded_here[r, self.open_at[r, k]] = True
                self.rings[r, k] = False
                self.used[r, self.open_at[r, k]] += max(self.pending[r] - self.ring_order[r, k], 0)
            else:
                self.rings[r, k] = True
                self.open_at[r, k] = self.atom[r]
                self.ring_order[r, k] = self.pending[r]
                self.bonded_here[r, self.atom[r]] = True  # opening twice on one atom is fine, closing onto it is not
            self.used[r, self.atom[r]] += self.pending[r]
            self.pending[r] = 1
        self.prev = np.where(active & (tokens != EOS_ID), c, self.prev)


class SelfiesMask:
    """The one constraint SELFIES needs: the first symbol is an atom.

    Any sequence of SELFIES symbols decodes to a valid molecule, except one without an atom symbol
    (only branch and ring symbols), which decodes to the empty string; branch and ring symbols
    before the first atom are ignored by the decoder anyway. Same interface as :class:`SyntaxMask`.
    """

    def __init__(self, tokenizer: Tokenizer, rows: int):
        from .tokenizer import token_element

        self.is_atom = np.array([i > UNK_ID and token_element(t) is not None for i, t in enumerate(tokenizer.tokens)])
        self.n_tokens = len(tokenizer)
        self.has_atom = np.zeros(rows, bool)

    def reorder(self, index: np.ndarray) -> None:
        self.has_atom = self.has_atom[index]

    def mask(self) -> np.ndarray:
        allowed = self.has_atom[:, None] | self.is_atom[None, :]
        allowed[:, [PAD_ID, BOS_ID, UNK_ID]] = False
        allowed[:, EOS_ID] = self.has_atom
        return allowed

    def update(self, tokens: np.ndarray, active: np.ndarray) -> None:
        self.has_atom |= active & self.is_atom[tokens]
