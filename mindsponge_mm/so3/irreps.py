"""Irreducible representations of O(3) and their direct sums, with e3nn's string syntax.

* ``Irrep("1o")``: degree ``l = 1``, parity ``p = -1`` ("e" = even, +1; "o" = odd, -1;
  "y" = ``(-1)^l``, the parity of the spherical harmonics). Dimension ``2l+1``.
* ``Irreps("128x0e+128x1o")`` (spaces allowed, ``1x`` optional): an ordered list of
  ``(mul, l, p)`` entries. A feature vector of these irreps is laid out as in e3nn ("mul_ir"):
  entry after entry; inside an entry, copy after copy (``[mul, 2l+1]`` flattened, row-major).
* ``str(Irreps(...))`` writes e3nn's canonical form (``"128x0e+128x1o"``) and parses back.
* Order of irreps (``sort``): by ``(l, p)``, so ``0o < 0e < 1o < 1e``, as in e3nn.

Pure python/numpy (no MindSpore).
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

__all__ = ["Irrep", "MulIr", "Irreps"]

_PARITY_CHAR = {1: "e", -1: "o"}


class Irrep(tuple):
    """One irrep ``(l, p)`` of O(3); ``p`` is +1 (even) or -1 (odd).

    ``Irrep("1o")``, ``Irrep(1, -1)``, ``Irrep((1, -1))`` are the same; it is a ``(l, p)`` tuple.
    """

    __slots__ = ()

    def __new__(cls, l, p=None):
        if p is None:
            if isinstance(l, Irrep):
                return l
            if isinstance(l, str):
                m = re.fullmatch(r"\s*(\d+)\s*([eoy])\s*", l)
                if m is None:
                    raise ValueError(f"cannot parse irrep {l!r}; expected e.g. '0e', '1o', '2y'")
                deg = int(m.group(1))
                return tuple.__new__(cls, (deg, {"e": 1, "o": -1, "y": (-1) ** deg}[m.group(2)]))
            l, p = l
        if int(l) < 0 or int(p) not in (1, -1):
            raise ValueError(f"invalid irrep (l={l}, p={p}): need l >= 0 and p = ±1")
        return tuple.__new__(cls, (int(l), int(p)))

    @classmethod
    def parse(cls, spec) -> "Irrep":
        return cls(spec)

    @property
    def l(self) -> int:  # noqa: E743
        return self[0]

    @property
    def p(self) -> int:
        return self[1]

    @property
    def dim(self) -> int:
        return 2 * self.l + 1

    def is_scalar(self) -> bool:
        return self.l == 0 and self.p == 1

    def __str__(self) -> str:
        return f"{self.l}{_PARITY_CHAR[self.p]}"

    def __repr__(self) -> str:
        return str(self)

    def __mul__(self, other):
        """Irreps in the tensor product ``self ⊗ other``: ``l = |l1-l2|..l1+l2`` with parity ``p1 p2``."""
        if isinstance(other, int):  # Irrep * int -> Irreps (like e3nn's 3 * Irrep)
            return Irreps([(other, self)])
        other = Irrep.parse(other)
        return [Irrep(l, self.p * other.p) for l in range(abs(self.l - other.l), self.l + other.l + 1)]

    def __rmul__(self, mul: int) -> "Irreps":
        return Irreps([(mul, self)])

    def D_from_matrix(self, R: np.ndarray) -> np.ndarray:
        """Representation [2l+1, 2l+1] of an orthogonal matrix R (``p^k`` factor for det R = (-1)^k)."""
        from .wigner import D_from_matrix

        return D_from_matrix(self.l, R, parity=self.p)


class MulIr(NamedTuple):
    """One entry of an Irreps: ``mul`` copies of irrep ``(l, p)``. Unpacks as ``mul, l, p``."""

    mul: int
    l: int
    p: int

    @property
    def ir(self) -> Irrep:
        return Irrep(self.l, self.p)

    @property
    def dim(self) -> int:
        return self.mul * (2 * self.l + 1)

    def __str__(self) -> str:
        return f"{self.mul}x{self.ir}"

    def __repr__(self) -> str:
        return str(self)


class Irreps:
    """Ordered direct sum of O(3) irreps, e3nn-compatible.

    ``Irreps("128x0e+128x1o")``, ``Irreps([(128, "0e"), (128, (1, -1))])``, ``Irreps([(2, 1, -1)])``.
    Iterating yields :class:`MulIr` ``(mul, l, p)`` entries.
    """

    __slots__ = ("_entries",)

    def __init__(self, spec=None):
        if spec is None:
            entries: list[MulIr] = []
        elif isinstance(spec, Irreps):
            entries = list(spec._entries)
        elif isinstance(spec, Irrep):
            entries = [MulIr(1, spec.l, spec.p)]
        elif isinstance(spec, str):
            entries = self._parse(spec)
        else:
            entries = [self._entry(item) for item in spec]
        for e in entries:
            if e.mul < 0:
                raise ValueError(f"negative multiplicity in {spec!r}")
        object.__setattr__(self, "_entries", tuple(entries))

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _parse(text: str) -> list[MulIr]:
        text = text.strip()
        if not text:
            return []
        out = []
        for part in text.split("+"):
            m = re.fullmatch(r"\s*(?:(\d+)\s*x\s*)?(\d+\s*[eoy])\s*", part)
            if m is None:
                raise ValueError(f"cannot parse irreps {text!r} at {part!r}; expected e.g. '128x0e+64x1o'")
            mul = int(m.group(1)) if m.group(1) is not None else 1
            ir = Irrep.parse(m.group(2).replace(" ", ""))
            out.append(MulIr(mul, ir.l, ir.p))
        return out

    @staticmethod
    def _entry(item) -> MulIr:
        if isinstance(item, MulIr):
            return item
        if isinstance(item, (Irrep, str)):
            ir = Irrep.parse(item)
            return MulIr(1, ir.l, ir.p)
        item = tuple(item)
        if len(item) == 3:
            return MulIr(int(item[0]), *Irrep.parse((item[1], item[2])))
        if len(item) == 2:
            ir = Irrep.parse(item[1])
            return MulIr(int(item[0]), ir.l, ir.p)
        raise ValueError(f"cannot interpret {item!r} as an irreps entry")

    @classmethod
    def spherical_harmonics(cls, lmax: int, p: int = -1) -> "Irreps":
        """``1x0e+1x1o+1x2e+...`` up to ``lmax`` (parity ``p^l``)."""
        return cls([(1, l, p**l) for l in range(lmax + 1)])

    # ------------------------------------------------------------------ container protocol
    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Irreps(self._entries[i])
        return self._entries[i]

    def __contains__(self, ir) -> bool:
        ir = Irrep.parse(ir)
        return any(e.ir == ir for e in self._entries)

    def __eq__(self, other) -> bool:
        try:
            other = Irreps(other)
        except (ValueError, TypeError):
            return NotImplemented
        return self._entries == other._entries

    def __hash__(self) -> int:
        return hash(self._entries)

    def __add__(self, other) -> "Irreps":
        return Irreps(self._entries + Irreps(other)._entries)

    def __radd__(self, other) -> "Irreps":
        return Irreps(Irreps(other)._entries + self._entries)

    def __mul__(self, n: int) -> "Irreps":
        """Repeat the list ``n`` times (as e3nn)."""
        if not isinstance(n, int):
            raise TypeError("Irreps can only be multiplied by an int")
        return Irreps(self._entries * n)

    __rmul__ = __mul__

    def __str__(self) -> str:
        return "+".join(str(e) for e in self._entries)

    def __repr__(self) -> str:
        return str(self)

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Total number of components Σ mul·(2l+1)."""
        return sum(e.dim for e in self._entries)

    @property
    def num_irreps(self) -> int:
        return sum(e.mul for e in self._entries)

    @property
    def ls(self) -> list[int]:
        """The degree of every copy, in order (``[l]*mul`` per entry)."""
        return [e.l for e in self._entries for _ in range(e.mul)]

    @property
    def lmax(self) -> int:
        if not self._entries:
            raise ValueError("lmax of an empty Irreps")
        return max(e.l for e in self._entries)

    def slices(self) -> list[slice]:
        """Slice of each entry in a flat feature vector."""
        out, start = [], 0
        for e in self._entries:
            out.append(slice(start, start + e.dim))
            start += e.dim
        return out

    def count(self, ir) -> int:
        """Total multiplicity of irrep ``ir``."""
        ir = Irrep.parse(ir)
        return sum(e.mul for e in self._entries if e.ir == ir)

    # ------------------------------------------------------------------ transformations
    def simplify(self) -> "Irreps":
        """Drop zero multiplicities and merge *consecutive* equal irreps (does not sort), as e3nn."""
        out: list[list] = []
        for e in self._entries:
            if e.mul == 0:
                continue
            if out and out[-1][1] == e.ir:
                out[-1][0] += e.mul
            else:
                out.append([e.mul, e.ir])
        return Irreps([(m, ir) for m, ir in out])

    def sort(self):
        """Stable sort by ``(l, p)``; returns ``(irreps, p, inv)`` as e3nn.

        ``inv[new] = old`` lists the original indices in sorted order (``sorted[i] = self[inv[i]]``)
        and ``p`` is its inverse permutation (``p[old] = new``).
        """
        inv = tuple(sorted(range(len(self._entries)), key=lambda i: (self._entries[i].l, self._entries[i].p)))
        p = [0] * len(inv)
        for new, old in enumerate(inv):
            p[old] = new
        return Irreps([self._entries[i] for i in inv]), tuple(p), inv

    def regroup(self) -> "Irreps":
        """Sort then simplify: one entry per distinct irrep."""
        return self.sort()[0].simplify()

    def D_from_matrix(self, R: np.ndarray) -> np.ndarray:
        """Block-diagonal representation [dim, dim] of an orthogonal 3x3 matrix (mul copies per entry)."""
        from .wigner import D_from_matrix

        out = np.zeros((self.dim, self.dim))
        start = 0
        for e in self._entries:
            d = D_from_matrix(e.l, R, parity=e.p)
            for _ in range(e.mul):
                out[start : start + e.ir.dim, start : start + e.ir.dim] = d
                start += e.ir.dim
        return out
