"""Units: parsing unit strings and converting to the package's internal units.

Internal (user-facing) units follow ASE: energy eV, length Å (written ``Ang``),
charge e, mass amu, time fs. Forces are eV/Ang, stress eV/Ang^3.

A unit string is a product of tokens, each optionally raised to an integer power,
joined by ``*`` (or a space) and ``/``. Division applies to the token right after it,
so ``kcal/mol/Ang`` means kcal · mol⁻¹ · Å⁻¹. Examples: ``eV``, ``Ha/Bohr``,
``kcal/mol``, ``eV/Ang^3``, ``GPa``, ``e*Ang``.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import ase.units as _u

from .errors import UnitError

#: order of the dimension vector used throughout this module
DIMENSIONS = ("energy", "length", "charge", "mass", "time")
_CANONICAL_SYMBOL = ("eV", "Ang", "e", "amu", "fs")
_DISPLAY_ORDER = (0, 2, 3, 1, 4)  # eV, e, amu, Ang, fs: gives "e*Ang" and "eV/Ang"


def _d(energy=0, length=0, charge=0, mass=0, time=0):
    return (energy, length, charge, mass, time)


#: token -> (factor in internal units, dimension vector)
_TOKENS: dict[str, tuple[float, tuple[int, ...]]] = {
    # energy
    "eV": (1.0, _d(energy=1)),
    "meV": (1e-3, _d(energy=1)),
    "Ha": (_u.Hartree, _d(energy=1)),
    "Hartree": (_u.Hartree, _d(energy=1)),
    "Ry": (_u.Ry, _d(energy=1)),
    "kcal": (_u.kcal, _d(energy=1)),
    "kJ": (_u.kJ, _d(energy=1)),
    "J": (_u.J, _d(energy=1)),
    # amount: a pure number (per mole = per 6.022e23 particles)
    "mol": (_u.mol, _d()),
    # length
    "Ang": (1.0, _d(length=1)),
    "Angstrom": (1.0, _d(length=1)),
    "Å": (1.0, _d(length=1)),
    "nm": (10.0, _d(length=1)),
    "pm": (0.01, _d(length=1)),
    "m": (1e10, _d(length=1)),
    "Bohr": (_u.Bohr, _d(length=1)),
    # pressure
    "Pa": (_u.Pascal, _d(energy=1, length=-3)),
    "GPa": (_u.GPa, _d(energy=1, length=-3)),
    "bar": (_u.bar, _d(energy=1, length=-3)),
    "kbar": (1e3 * _u.bar, _d(energy=1, length=-3)),
    # charge, mass, time
    "e": (1.0, _d(charge=1)),
    "amu": (1.0, _d(mass=1)),
    "Da": (1.0, _d(mass=1)),
    "fs": (1.0, _d(time=1)),
    "ps": (1e3, _d(time=1)),
    "s": (1e15, _d(time=1)),
    # dimensionless
    "1": (1.0, _d()),
}

#: internal unit of each well-known property
PROPERTY_UNITS = {
    "positions": "Ang",
    "cell": "Ang",
    "energy": "eV",
    "free_energy": "eV",
    "energies": "eV",
    "forces": "eV/Ang",
    "stress": "eV/Ang^3",
    "virial": "eV",
    "charges": "e",
    "dipole": "e*Ang",
    "masses": "amu",
}

_TERM = re.compile(r"^\s*([A-Za-zÅ]+|1)\s*(?:(?:\^|\*\*)\s*([+-]?\d+))?\s*$")


class Unit(NamedTuple):
    """A parsed unit: ``value_in_unit * factor`` is the value in internal units."""

    factor: float
    dims: tuple[int, ...]


def parse_unit(text: str) -> Unit:
    """Parse a unit string such as ``"kcal/mol/Ang"``. Raises :class:`UnitError` if unknown."""
    if not isinstance(text, str):
        raise UnitError(f"unit must be a string such as 'eV', got {text!r}")
    stripped = text.strip()
    if stripped == "":
        return Unit(1.0, _d())
    # split into (operator, term) pieces; '*' and whitespace multiply, '/' divides the next term
    pieces = re.split(r"(\*\*|\*|/)", stripped.replace(" ", "*"))
    factor, dims = 1.0, [0] * len(DIMENSIONS)
    sign, expect_term, i = 1, True, 0
    # re-join '**' exponents into their term
    merged: list[str] = []
    while i < len(pieces):
        if pieces[i] == "**" and merged:
            merged[-1] = merged[-1] + "**" + pieces[i + 1]
            i += 2
            continue
        merged.append(pieces[i])
        i += 1
    for piece in merged:
        if piece in ("*", "/"):
            if expect_term:
                raise UnitError(f"cannot parse unit {text!r}: misplaced {piece!r}; write e.g. 'kcal/mol/Ang'")
            sign = -1 if piece == "/" else 1
            expect_term = True
            continue
        if piece == "":
            continue
        match = _TERM.match(piece)
        if not match or match.group(1) not in _TOKENS:
            known = ", ".join(sorted(k for k in _TOKENS if k != "1"))
            raise UnitError(f"unknown unit {text!r} (token {piece.strip()!r}); known tokens: {known}")
        power = sign * int(match.group(2) or 1)
        token_factor, token_dims = _TOKENS[match.group(1)]
        factor *= token_factor**power
        dims = [a + power * b for a, b in zip(dims, token_dims)]
        sign, expect_term = 1, False
    if expect_term:
        raise UnitError(f"cannot parse unit {text!r}: it ends with an operator")
    return Unit(factor, tuple(dims))


def internal_unit(dims: tuple[int, ...]) -> str:
    """The internal unit string for a dimension vector, e.g. ``(1, -1, 0, 0, 0) -> 'eV/Ang'``."""
    num, den = [], []
    for k in _DISPLAY_ORDER:
        symbol, power = _CANONICAL_SYMBOL[k], dims[k]
        if power:
            text = symbol if abs(power) == 1 else f"{symbol}^{abs(power)}"
            (num if power > 0 else den).append(text)
    out = "*".join(num) if num else ("1" if den else "")
    return out + "".join("/" + d for d in den)


def to_internal(unit: str, prop: str | None = None) -> tuple[float, str]:
    """Factor and internal unit for values stored in ``unit``.

    If ``prop`` is a well-known property (see :data:`PROPERTY_UNITS`) the unit must
    have the matching dimension, otherwise :class:`UnitError` names the property.
    """
    parsed = parse_unit(unit)
    if prop in PROPERTY_UNITS:
        expected = parse_unit(PROPERTY_UNITS[prop])
        if parsed.dims != expected.dims:
            raise UnitError(
                f"unit {unit!r} does not fit property {prop!r}; "
                f"use a unit of the same kind as {PROPERTY_UNITS[prop]!r}"
            )
    return parsed.factor, internal_unit(parsed.dims)


def conversion_factor(from_unit: str, to_unit: str) -> float:
    """Factor f such that ``value_in_from_unit * f`` is the value in ``to_unit``."""
    a, b = parse_unit(from_unit), parse_unit(to_unit)
    if a.dims != b.dims:
        raise UnitError(f"cannot convert {from_unit!r} to {to_unit!r}: different kinds of quantity")
    return a.factor / b.factor
