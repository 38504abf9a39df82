import ase.units as u
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mindsponge_mm.errors import UnitError, UserError
from mindsponge_mm.units import conversion_factor, internal_unit, parse_unit, to_internal


@pytest.mark.parametrize(
    "unit, factor, internal",
    [
        ("eV", 1.0, "eV"),
        ("kcal/mol", u.kcal / u.mol, "eV"),
        ("kJ/mol", u.kJ / u.mol, "eV"),
        ("Ha", u.Hartree, "eV"),
        ("Ha/Bohr", u.Hartree / u.Bohr, "eV/Ang"),
        ("kcal/mol/Ang", u.kcal / u.mol, "eV/Ang"),
        ("kcal/mol/nm", u.kcal / u.mol / 10.0, "eV/Ang"),
        ("eV/Ang^3", 1.0, "eV/Ang^3"),
        ("eV/Ang**3", 1.0, "eV/Ang^3"),
        ("GPa", u.GPa, "eV/Ang^3"),
        ("nm", 10.0, "Ang"),
        ("Bohr", u.Bohr, "Ang"),
        ("e*Ang", 1.0, "e*Ang"),
        ("", 1.0, ""),
    ],
)
def test_unit_factors_match_ase_units(unit, factor, internal):
    got_factor, got_unit = to_internal(unit)
    assert got_factor == pytest.approx(factor, rel=1e-14)
    assert got_unit == internal


def test_conversion_between_units():
    assert conversion_factor("eV", "kcal/mol") == pytest.approx(u.mol / u.kcal, rel=1e-14)
    assert conversion_factor("GPa", "bar") == pytest.approx(1e4, rel=1e-12)


@pytest.mark.parametrize("bad", ["parsec", "eV//Ang", "eV/", "*eV", "eV^x", 3.0])
def test_bad_unit_strings_raise_user_error(bad):
    with pytest.raises(UnitError):
        parse_unit(bad)


def test_unit_of_wrong_kind_for_property():
    with pytest.raises(UserError, match="does not fit property 'forces'"):
        to_internal("eV", "forces")
    with pytest.raises(UserError, match="does not fit property 'energy'"):
        to_internal("Ang", "energy")


def test_internal_unit_names():
    assert internal_unit(parse_unit("kcal/mol/Ang^2").dims) == "eV/Ang^2"


# Round trips over random products of unit tokens (hypothesis, derandomized so CI is reproducible).

ENERGY = ["eV", "meV", "Ha", "Hartree", "Ry", "kcal/mol", "kJ/mol", "J"]
LENGTH = ["Ang", "Angstrom", "nm", "pm", "m", "Bohr"]
#: (unit string, factor to eV / Å / e / amu / fs from ase.units, independently of units.py)
TOKENS = {"eV": 1.0, "meV": 1e-3, "Ha": u.Hartree, "Hartree": u.Hartree, "Ry": u.Ry, "kcal/mol": u.kcal / u.mol,
          "kJ/mol": u.kJ / u.mol, "J": u.J, "Ang": 1.0, "Angstrom": 1.0, "nm": 10.0, "pm": 0.01, "m": 1e10,
          "Bohr": u.Bohr, "e": 1.0, "amu": 1.0, "Da": 1.0, "fs": 1.0, "ps": 1e3, "s": 1e15}
HYPOTHESIS = settings(max_examples=60, deadline=None, derandomize=True)


@HYPOTHESIS
@given(energy=st.sampled_from(ENERGY), length=st.sampled_from(LENGTH), power=st.integers(-3, 3),
       other_energy=st.sampled_from(ENERGY), other_length=st.sampled_from(LENGTH))
def test_energy_per_length_power_round_trips(energy, length, power, other_energy, other_length):
    unit = f"{energy}/{length}^{power}" if power else energy
    other = f"{other_energy}/{other_length}^{power}" if power else other_energy
    factor, internal = to_internal(unit)
    assert factor == pytest.approx(TOKENS[energy] / TOKENS[length] ** power, rel=1e-13)
    assert parse_unit(internal).dims == parse_unit(unit).dims and parse_unit(internal).factor == 1.0
    there, back = conversion_factor(unit, other), conversion_factor(other, unit)
    assert there * back == pytest.approx(1.0, rel=1e-13)
    assert there == pytest.approx(factor / to_internal(other)[0], rel=1e-13)


@HYPOTHESIS
@given(terms=st.lists(st.tuples(st.sampled_from(sorted(set(TOKENS) - {"kcal/mol", "kJ/mol"})),
                                st.integers(-3, 3).filter(bool), st.booleans()), min_size=1, max_size=4),
       value=st.floats(-1e6, 1e6))
def test_products_of_tokens_parse_and_round_trip(terms, value):
    """``a^p*b/c^q`` has the product of the token factors; converting a value to internal units and back
    gives the value again."""
    text = "".join((("/" if divide else "*") if k else ("1/" if divide else "")) + f"{name}^{p}"
                   for k, (name, p, divide) in enumerate(terms))
    expected = np.prod([TOKENS[name] ** (-p if divide else p) for name, p, divide in terms])
    factor, internal = to_internal(text)
    assert factor == pytest.approx(expected, rel=1e-12)
    assert value * factor * conversion_factor(internal, text) == pytest.approx(value, rel=1e-12, abs=1e-300)
