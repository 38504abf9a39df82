"""ASE's VelocityVerlet driving our ASE Calculator follows our own compiled NVE trajectory.

Both sides integrate the same equations with the same arithmetic: ASE's ``VelocityVerlet.step`` is
``p += dt/2 F; r += dt p / m; F = F(r); p += dt/2 F``, and our ``verlet`` integrator is the same
splitting. To make the two integrations identical we

* start both from the same float64 positions and momenta (momenta with zero total momentum);
* run ``Simulation`` with ``remove_com=False`` (ASE never touches the centre of mass; with
  ``remove_com=True`` ours would subtract the round-off part of the total momentum every step);
* run ``Simulation`` with ``wrap=False`` (ASE never wraps positions);
* evaluate the same potential object in float64 on both sides.

What remains are round-off differences: the Calculator evaluates a padded batch with a host-built
neighbor list, the simulation a compiled graph with its own neighbor list (a different pair order,
hence different summation order, ~1e-16 relative), and ``p / m`` against ``p * (1/m)``. These grow
with the system's Lyapunov exponent over the run. The tolerances below are a few orders of
magnitude above the measured differences (printed with ``-s``), and orders of magnitude below any
real discrepancy: a wrong half kick, dt in the wrong unit, a missing factor of the mass, or a
different force would show up as errors of order dt² |F|/m ~ 1e-3 Å per step.
"""
import time

import numpy as np
from ase import units
from ase.build import bulk
from ase.md.verlet import VelocityVerlet

from mindsponge_mm.interfaces.ase import Calculator
from mindsponge_mm.md import MDState, Simulation, build_integrator
from mindsponge_mm.potentials import LennardJones


def run_both(atoms, potential, dt, steps, block, min_distance=0.5):
    """Run ``steps`` NVE steps of ``dt`` fs from ``atoms`` (positions and momenta) both ways; returns a dict
    of the final positions, velocities and potential energies of each, and the wall times."""
    state = MDState.from_atoms(atoms, dtype="float64")
    sim = Simulation(state, potential, build_integrator("verlet", dt=dt), skin=1.0, remove_com=False,
                     wrap=False, min_distance=min_distance, dtype="float64")
    start = time.perf_counter()
    sim.run(steps, block=block)
    ours_s = time.perf_counter() - start
    assert sim.state.step == steps and np.isclose(sim.state.time, steps * dt)
    ours = sim.state.to_atoms()[0]

    driven = atoms.copy()
    driven.set_momenta(atoms.get_momenta())
    driven.calc = Calculator(potential)
    dyn = VelocityVerlet(driven, timestep=dt * units.fs)
    start = time.perf_counter()
    dyn.run(steps)
    ase_s = time.perf_counter() - start
    assert dyn.nsteps == steps
    return {"r_ase": driven.get_positions(), "v_ase": driven.get_velocities(), "e_ase": driven.get_potential_energy(),
            "r_ours": ours.get_positions(), "v_ours": ours.get_velocities(),
            "e_ours": float(sim.observables()["potential_energy"][0]), "ase_s": ase_s, "ours_s": ours_s,
            "free_flight": atoms.get_positions() + atoms.get_velocities() * steps * dt * units.fs}


def compare(name, out, pos_tol=1e-9, vel_tol=1e-8, energy_tol=1e-9):
    """Positions within ``pos_tol`` Å, velocities within ``vel_tol`` times the largest speed, potential
    energies within ``energy_tol`` eV; and the forces mattered (the path is far from free flight)."""
    dr = np.abs(out["r_ase"] - out["r_ours"]).max()
    v_scale = np.abs(out["v_ase"]).max()
    dv = np.abs(out["v_ase"] - out["v_ours"]).max()
    de = abs(out["e_ase"] - out["e_ours"])
    bent = np.abs(out["r_ase"] - out["free_flight"]).max()
    print(f"\n{name}: max |r - r_free_flight| = {bent:.3f} Å; max |Δr| = {dr:.1e} Å, max |Δv| = {dv / v_scale:.1e} "
          f"of max |v|, |ΔE_pot| = {de:.1e} eV; ASE VelocityVerlet {out['ase_s']:.1f} s, ours {out['ours_s']:.1f} s "
          f"(with compilation)")
    assert bent > 1e3 * pos_tol  # the forces bent the paths: the comparison is not one of free flight
    np.testing.assert_allclose(out["r_ours"], out["r_ase"], rtol=0, atol=pos_tol)
    np.testing.assert_allclose(out["v_ours"], out["v_ase"], rtol=0, atol=vel_tol * v_scale)
    assert de < energy_tol, de


def argon_with_momenta(seed):
    """32 Ar atoms in a periodic fcc cell (a = 5.4 Å), rattled, with ~80 K momenta of zero total momentum."""
    atoms = bulk("Ar", "fcc", a=5.4, cubic=True) * (2, 2, 2)
    atoms.rattle(0.05, seed=seed)
    atoms.set_momenta(MDState.from_atoms(atoms, dtype="float64").maxwell_boltzmann(80.0, seed=seed + 1).momenta)
    return atoms


def test_ase_velocity_verlet_matches_ours_lennard_jones_argon():
    """Shifted LJ (rc = 6 Å) on 32 periodic Ar atoms, 200 steps of 5 fs (1 ps).
    Measured: |Δr| 4e-15 Å, |Δv| 1e-14 of max |v|; tolerances 1e-9 Å, 1e-8, 1e-9 eV."""
    atoms = argon_with_momenta(3)
    lj = LennardJones(epsilon=0.0104, sigma=3.4, cutoff=6.0, shift=True, dtype="float64")
    compare("LJ argon", run_both(atoms, lj, dt=5.0, steps=200, block=100))


def test_ase_velocity_verlet_matches_ours_small_schnet_molecule():
    """A tiny random float64 SchNet (8 features, 1 interaction) on ethanol (9 atoms, no cell), 200 steps of
    0.25 fs (50 fs) at about 300 K. Measured: |Δr| ~1e-15 Å; tolerances 1e-9 Å, 1e-8, 1e-9 eV."""
    from ase.build import molecule

    from mindsponge_mm.models import Potential, build

    atoms = molecule("CH3CH2OH")
    atoms.set_momenta(MDState.from_atoms(atoms, dtype="float64").maxwell_boltzmann(300.0, seed=5).momenta)
    model = build("schnet", elements=[1, 6, 8], cutoff=4.0, n_features=8, n_interactions=1, dtype="float64", seed=1)
    model.set_energy_offsets(scale=1.0)  # forces up to ~0.2 eV/Å: they bend the paths by ~1 Å in 50 fs
    # a random model does not hold the molecule together; hydrogens pass within ~0.5 Å of each other
    compare("SchNet ethanol", run_both(atoms, Potential(model), dt=0.25, steps=200, block=100, min_distance=0.3))


def test_remove_com_does_not_change_a_zero_momentum_trajectory():
    """With remove_com=True our run differs from ASE's only by removing round-off from a zero total
    momentum each step: it stays within the same tolerance (remove_com=False above is for exactness)."""
    atoms = argon_with_momenta(7)
    lj = LennardJones(epsilon=0.0104, sigma=3.4, cutoff=6.0, shift=True, dtype="float64")
    sim = Simulation(MDState.from_atoms(atoms, dtype="float64"), lj, build_integrator("verlet", dt=5.0), skin=1.0,
                     remove_com=True, dtype="float64")
    sim.run(100, block=100)
    driven = atoms.copy()
    driven.set_momenta(atoms.get_momenta())
    driven.calc = Calculator(lj)
    VelocityVerlet(driven, timestep=5.0 * units.fs).run(100)
    dr = np.abs(sim.state.positions - driven.positions).max()
    print(f"\nremove_com=True: max |Δr| = {dr:.1e} Å after 100 steps")
    assert dr < 1e-9
