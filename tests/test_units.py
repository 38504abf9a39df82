import ase.units as u
import pytest

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
