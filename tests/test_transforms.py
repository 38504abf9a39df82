import numpy as np
import pytest
from ase.data import atomic_masses
from ase.geometry import get_distances
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindsponge_mm.data import (
    AddOffsets, AtomsDataset, CastDtype, Compose, RemoveOffsets, ScaleProperty, SubtractCenterOfMass, WrapPositions,
)


@pytest.fixture
def frame(molecule_frames):
    return AtomsDataset.from_atoms(molecule_frames)[7]  # ethanol


def test_remove_offsets_and_inverse(frame):
    t = RemoveOffsets({1: -0.5, 6: -2.0, 8: -3.0}, mean_per_atom=0.1)
    out = t(frame)
    expected = frame["energy"] - (6 * -0.5 + 2 * -2.0 + 1 * -3.0 + 9 * 0.1)
    assert out["energy"] == pytest.approx(expected, abs=1e-12)
    assert t.inverse(out)["energy"] == pytest.approx(frame["energy"], abs=1e-12)
    assert AddOffsets({1: -0.5, 6: -2.0, 8: -3.0}, 0.1)(out)["energy"] == pytest.approx(frame["energy"], abs=1e-12)
    assert frame["energy"] != out["energy"]  # input untouched


def test_compose_inverse_restores_in_reverse_order(frame):
    t = Compose([RemoveOffsets({1: 1.0}), ScaleProperty(["energy", "forces"], 10.0)])
    assert t.invertible
    out = t(frame)
    assert out["energy"] == pytest.approx((frame["energy"] - 6.0) * 10.0)
    back = t.inverse(out)
    assert back["energy"] == pytest.approx(frame["energy"])
    np.testing.assert_allclose(back["forces"], frame["forces"])
    assert not Compose([t, CastDtype("float32")]).invertible
    with pytest.raises(NotImplementedError):
        Compose([CastDtype()]).inverse(out)


def test_cast_dtype(frame):
    out = CastDtype("float32")(frame)
    assert out["positions"].dtype == np.float32 and out["forces"].dtype == np.float32
    assert out["atomic_numbers"].dtype == frame["atomic_numbers"].dtype
    assert set(out) == set(frame)
    for key, value in frame.items():
        if np.asarray(value).dtype.kind == "f":  # rounded to the nearest float32: within half an ulp
            np.testing.assert_array_equal(out[key], np.asarray(value).astype(np.float32))
            np.testing.assert_allclose(out[key], value, rtol=2.0**-24, atol=0)
        else:
            np.testing.assert_array_equal(out[key], value)
    back = CastDtype("float64")(out)
    assert back["energy"].dtype == np.float64 and float(back["energy"]) == float(np.float32(frame["energy"]))


def test_wrap_positions_keeps_periodic_distances(copper_frames):
    frame = AtomsDataset.from_atoms(copper_frames)[5]  # triclinic
    frame["positions"] = frame["positions"] + np.array([7.3, -11.2, 4.4])
    out = WrapPositions()(frame)
    frac = np.linalg.solve(out["cell"].T, out["positions"].T).T
    assert (frac >= 0).all() and (frac < 1).all()
    d0 = get_distances(frame["positions"], cell=frame["cell"], pbc=True)[1]
    d1 = get_distances(out["positions"], cell=out["cell"], pbc=True)[1]
    np.testing.assert_allclose(d0, d1, atol=1e-10)


def test_subtract_center_of_mass(frame):
    out = SubtractCenterOfMass()(frame)
    m = atomic_masses[frame["atomic_numbers"]]
    np.testing.assert_allclose(m @ out["positions"], 0.0, atol=1e-10)


HYPOTHESIS = settings(max_examples=40, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])
finite = st.floats(-1e3, 1e3)


@HYPOTHESIS
@given(atomrefs=st.dictionaries(st.sampled_from([1, 6, 8, 29]), finite, max_size=4), mean=finite,
       factor=st.floats(1e-3, 1e3).flatmap(lambda f: st.sampled_from([f, -f])),
       order=st.permutations(range(3)))
def test_every_invertible_transform_and_their_compositions_invert(frame, atomrefs, mean, factor, order):
    """inverse(t(frame)) == frame for each invertible transform and for compositions of them, to float64
    rounding of the shifted and scaled values (a few ulps of the largest term)."""
    parts = [RemoveOffsets(atomrefs, mean), AddOffsets(atomrefs, -mean / 2), ScaleProperty(["energy", "forces"], factor)]
    scale = max(1.0, abs(float(frame["energy"]))) + 9 * (abs(mean) + max(map(abs, atomrefs.values()), default=0.0))
    for t in [*parts, Compose([parts[k] for k in order])]:
        assert t.invertible
        out = t(frame)
        back = t.inverse(out)
        assert float(back["energy"]) == pytest.approx(float(frame["energy"]), rel=0, abs=64 * np.spacing(scale))
        np.testing.assert_allclose(back["forces"], frame["forces"], rtol=4 * np.finfo(float).eps, atol=0)
        np.testing.assert_array_equal(back["positions"], frame["positions"])
