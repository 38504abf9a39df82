"""MD engine: NVE energy conservation and dt² scaling, canonical kinetic-energy statistics of the
thermostats, NPT volume against an NVT equation of state, neighbor-list overflow handling, bad input."""
import numpy as np
import pytest
from ase import Atoms, units
from mindspore import nn, ops

from md_helpers import SmoothLJ, argon
from mindsponge_mm.errors import ConfigError, UserError
from mindsponge_mm.md import MDState, Simulation, SimulationError, build_integrator
from mindsponge_mm.md.state import KB


def nve_energies(dt, steps, every, dtype="float64", seed=0):
    state = MDState.from_atoms(argon(1, a=5.4, rattle=0.05, seed=seed), dtype=dtype).maxwell_boltzmann(60, seed=seed)
    sim = Simulation(state, SmoothLJ(dtype=dtype), build_integrator("verlet", dt=dt), skin=1.0, dtype=dtype)
    out = [sim.observables()["total_energy"][0]]
    sim.run(steps, block=every, callback=lambda s: out.append(s.observables()["total_energy"][0]))
    return np.array(out), sim


@pytest.mark.slow
def test_nve_energy_drift_over_10k_steps():
    """32 Ar atoms (smooth switched LJ, float64), dt 5 fs, 10k steps (50 ps)."""
    energies, sim = nve_energies(5.0, 10_000, 500)
    n = len(sim.state.positions)
    kin = sim.observables()["kinetic_energy"][0]
    drift = np.abs(energies - energies[0]).max() / n
    print(f"NVE 10k steps: max |E - E0| = {drift:.2e} eV/atom")
    assert drift < 1e-5, drift  # eV/atom over 50 ps (measured 1.4e-6; kinetic energy is ~8e-3 eV/atom)
    assert kin > 0.1 * n * 1.5 * KB * 60  # it is moving
    assert sim.state.step == 10_000 and np.isclose(sim.state.time, 50_000.0)


@pytest.mark.slow
def test_nve_fluctuations_scale_as_dt_squared():
    """Verlet conserves a shadow Hamiltonian: the RMS fluctuation of E_total scales as dt²."""
    e1, _ = nve_energies(6.0, 1000, 5)
    e2, _ = nve_energies(3.0, 2000, 10)  # same times
    ratio = e1.std() / e2.std()
    print(f"std(E_total) dt 6 fs / dt 3 fs = {ratio:.2f}")
    assert 3.2 < ratio < 4.8, ratio


def test_nose_hoover_chain_conserves_its_extended_energy():
    """NHC, 2 × 32 Ar (smooth LJ, float64), dt 5 fs, 1000 steps (5 ps), heating from 30 K to 60 K: the extended
    energy E_kin + E_pot + chain energy (Σ Q_j v_j²/2 + N_f k T ξ_1 + k T Σ ξ_j) stays constant as NVE's E_total
    does, while E_kin + E_pot changes by ~1e-2 eV/atom through the thermostat."""
    state = MDState.from_atoms(argon(2, a=5.4, rattle=0.05, seed=0), dtype="float64").maxwell_boltzmann(30, seed=0)
    integ = build_integrator("nose_hoover_chain", dt=5.0, temperature=60.0, tau=100.0)
    sim = Simulation(state, SmoothLJ(dtype="float64"), integ, skin=1.0, dtype="float64")
    integ = sim.integrator  # the bound copy

    def record(s):
        obs = s.observables()
        return obs["total_energy"].copy(), obs["total_energy"] + integ.thermostat_energy(s.aux_np)

    out = [record(sim)]
    sim.run(1000, block=50, callback=lambda s: out.append(record(s)))
    total, extended = (np.array(x) for x in zip(*out))  # [T, S]
    n = 32
    drift = np.abs(extended - extended[0]).max() / n
    exchanged = np.ptp(total, 0).min() / n
    print(f"NHC 1000 steps: max |H - H0| = {drift:.2e} eV/atom, E_kin + E_pot range {exchanged:.2e} eV/atom")
    assert drift < 1e-5, drift  # eV/atom over 5 ps (measured 3.7e-6; the NVE test's bound)
    assert exchanged > 300 * drift, exchanged  # the thermostat does move energy
    assert integ.thermostat_energy(sim.aux_np).shape == (2,)


def test_nve_bundled_ethanol_small_schnet():
    """A short NVE run of the bundled ethanol molecule with a small (random) SchNet, float32."""
    from mindsponge_mm.data import AtomsDataset
    from mindsponge_mm.models import Potential, build

    atoms = AtomsDataset.open("bundled:ethanol").to_atoms(0)
    model = build("schnet", elements=[1, 6, 8], cutoff=4.0, n_features=16, n_interactions=2, seed=1)
    model.set_energy_offsets(scale=0.05)  # a random model: keep its forces gentle so the molecule stays intact-ish
    pot = Potential(model)
    state = MDState.from_atoms(atoms).maxwell_boltzmann(300, seed=2)
    sim = Simulation(state, pot, build_integrator("verlet", dt=0.25), skin=1.0, min_distance=0.3)
    assert sim.capacity == 9 * 8  # a molecule's list holds at most n (n - 1) pairs: the capacity is capped there
    e = [sim.observables()["total_energy"][0]]
    sim.run(600, block=100, callback=lambda s: e.append(s.observables()["total_energy"][0]))
    e = np.array(e)
    kin = sim.observables()["kinetic_energy"][0]
    assert np.abs(e - e[0]).max() < 2e-3, (e - e[0])  # eV over 150 fs (kinetic energy ~0.3 eV)
    assert kin > 0
    assert sim.n_resizes == 0


def canonical_run(name, n_replicas=8, steps=3200, every=20, equilibrate=500, temperature=150.0, dt=5.0, **kw):
    frames = argon(n_replicas, a=5.8, rattle=0.2)
    state = MDState.from_atoms(frames).maxwell_boltzmann(temperature * 0.5, seed=5)  # start away from T
    integ = build_integrator(name, dt=dt, temperature=temperature, tau=kw.pop("tau", 200.0), **kw)
    sim = Simulation(state, SmoothLJ(cutoff=5.5, r_on=4.5), integ, skin=0.6, seed=11)
    sim.run(equilibrate, block=equilibrate)
    samples = []
    sim.run(steps, block=every, callback=lambda s: samples.append(s.observables()["kinetic_energy"]))
    return np.array(samples), sim  # [T, S]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["langevin", "bussi", "nose_hoover_chain"])
def test_thermostat_kinetic_energy_is_canonical(name):
    """Kinetic energy ~ Gamma(N_f/2, k T): mean N_f k T / 2 and variance N_f (k T)² / 2 with N_f = 3N − 3.
    Replicas are independent, so the spread of per-replica averages gives the statistical error."""
    temperature = 150.0
    kin, sim = canonical_run(name, temperature=temperature)
    nf = sim.dof[0]
    assert nf == 3 * 32 - 3
    kt = KB * temperature
    mean_ref, var_ref = nf * kt / 2, nf * kt * kt / 2
    means, variances = kin.mean(0), kin.var(0)
    n_rep = kin.shape[1]
    err_mean = means.std(ddof=1) / np.sqrt(n_rep)
    err_var = variances.std(ddof=1) / np.sqrt(n_rep)
    assert abs(means.mean() - mean_ref) < max(4 * err_mean, 0.004 * mean_ref), (means.mean(), mean_ref, err_mean)
    assert abs(variances.mean() / var_ref - 1) < 0.15, (variances.mean() / var_ref, err_var / var_ref)
    assert abs(variances.mean() - var_ref) < 4 * err_var + 0.03 * var_ref
    print(f"{name}: <K>/ref {means.mean() / mean_ref:.4f} ± {err_mean / mean_ref:.4f}, "
          f"var/ref {variances.mean() / var_ref:.3f} ± {err_var / var_ref:.3f}")
    temps = 2 * kin / (nf * KB)
    t_err = temps.mean(0).std(ddof=1) / np.sqrt(n_rep)
    print(f"{name}: <T> {temps.mean():.2f} ± {t_err:.2f} K (target {temperature} K)")
    assert abs(temps.mean() - temperature) < max(4 * t_err, 0.6), (temps.mean(), t_err)
    # the centre of mass stays at rest
    state = sim.state
    assert np.abs(np.bincount(state.structure_index, state.momenta[:, 0])).max() < 1e-3


def test_bussi_step_matches_the_reference_kinetic_energy_chain():
    """Without forces only the thermostat changes K: the compiled run must follow, number for number, the
    Bussi–Donadio–Parrinello resampling chain computed here in float64 from the same (seed, step) noise."""
    state = MDState.from_atoms(argon(1, rattle=0.2)).maxwell_boltzmann(75, seed=5)
    sim = Simulation(state, SmoothLJ(epsilon=0.0, cutoff=5.5, r_on=4.5),
                     build_integrator("bussi", dt=5.0, temperature=150.0, tau=200.0), seed=11, min_distance=0.01)
    k = sim.observables()["kinetic_energy"][0]
    got = []
    sim.run(30, block=10, callback=lambda s: got.append(s.observables()["kinetic_energy"][0]))
    nf, c = sim.dof[0], np.exp(-2.5 / 200.0)
    mean_per_dof = 0.5 * KB * 150.0
    ref = []
    for step in range(30):
        z = sim.integrator.structure_noise(np.random.default_rng([11, step]))[0].astype(np.float64)
        for r, s in ((z[0], z[1]), (z[2], z[3])):
            k = c * k + (1 - c) * mean_per_dof * (r * r + s) + 2 * r * np.sqrt(c * (1 - c) * mean_per_dof * k)
        if step % 10 == 9:
            ref.append(k)
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_berendsen_reaches_temperature_but_suppresses_fluctuations():
    kin, sim = canonical_run("berendsen", n_replicas=2, steps=600, every=20, tau=100.0)
    nf, kt = sim.dof[0], KB * 150.0
    assert abs(kin.mean() / (nf * kt / 2) - 1) < 0.05
    assert kin.var(0).mean() < 0.5 * nf * kt * kt / 2  # not canonical: documented


def test_remove_com_and_wrap_options():
    state = MDState.from_atoms(argon(2, rattle=0.2)).maxwell_boltzmann(150, seed=3, remove_com=False)
    state.momenta[:] += 0.5 * state.masses[:, None]  # a drifting centre of mass
    sim = Simulation(state, SmoothLJ(cutoff=5.5, r_on=4.5), build_integrator("langevin", dt=5, temperature=150),
                     remove_com=False, wrap=True)
    sim.run(200, block=100)
    frac = np.linalg.solve(sim.state.cell[0].T, sim.state.positions[sim.state.structure_index == 0].T).T
    assert (frac >= -1e-5).all() and (frac < 1 + 1e-5).all()
    assert sim.dof[0] == 96
    sim2 = Simulation(MDState.from_atoms(argon(1)).maxwell_boltzmann(150, seed=3), SmoothLJ(cutoff=5.5, r_on=4.5),
                      build_integrator("langevin", dt=5, temperature=150), remove_com=True)
    sim2.run(100, block=100)
    assert np.abs(sim2.state.momenta.sum(0)).max() < 1e-3


def test_overflow_is_detected_and_handled():
    """A capacity far too small: the block is discarded, the list enlarged and the block rerun, with the same
    result as a run that had enough capacity from the start."""
    frames = argon(1, rattle=0.1)
    ref = Simulation(MDState.from_atoms(frames).maxwell_boltzmann(100, seed=1), SmoothLJ(cutoff=5.5, r_on=4.5),
                     build_integrator("verlet", dt=5.0), skin=0.5)
    ref.run(100, block=50)
    small = Simulation(MDState.from_atoms(frames).maxwell_boltzmann(100, seed=1), SmoothLJ(cutoff=5.5, r_on=4.5),
                       build_integrator("verlet", dt=5.0), skin=0.5, capacity=20)
    small.run(100, block=50)
    assert small.n_resizes >= 1 and small.capacity > 20
    np.testing.assert_allclose(small.state.positions, ref.state.positions, atol=1e-4)


def _argon_run(steps=200, **kwargs):
    sim = Simulation(MDState.from_atoms(argon(2, rattle=0.1)).maxwell_boltzmann(120, seed=1),
                     SmoothLJ(cutoff=5.5, r_on=4.5, dtype="float64"), build_integrator("verlet", dt=5.0), skin=0.5,
                     dtype="float64", **kwargs)
    sim.run(steps, block=50)
    return sim


def test_pairs_within_the_cutoff_are_packed_for_the_potential():
    """Periodic systems: the potential sees only the list's pairs within the cutoff, packed into fewer slots;
    the trajectory is that of an unpacked run (pair_capacity = capacity) through several list rebuilds."""
    packed = _argon_run()
    assert packed.forcefield.compact and packed.pair_capacity < 0.8 * packed.capacity
    assert int(packed.nl.n_builds.asnumpy()) > 1 and packed.n_resizes == 0
    within = int(packed.forcefield.within_count.asnumpy())
    assert 0.7 * packed.pair_capacity < within <= packed.pair_capacity
    full = _argon_run(capacity=packed.capacity, pair_capacity=packed.capacity)
    assert not full.forcefield.compact
    np.testing.assert_allclose(packed.state.positions, full.state.positions, rtol=0, atol=1e-10)
    np.testing.assert_allclose(packed.potential_energy, full.potential_energy, rtol=1e-12)


def test_packed_pair_overflow_is_detected_and_handled():
    """Too few packed slots for the pairs within the cutoff: the block is rerun with more, same trajectory."""
    ref = _argon_run(steps=100)
    small = _argon_run(steps=100, pair_capacity=50)
    assert small.n_resizes >= 1 and small.pair_capacity > 50 and small.capacity == ref.capacity
    np.testing.assert_allclose(small.state.positions, ref.state.positions, rtol=0, atol=1e-10)


class LogWall(nn.Cell):
    """E = Σ log(x_i), pulling atoms to x = 0: finite for x > 0, NaN once an atom crosses x = 0."""

    cutoff = 3.0
    dtype_name = "float32"

    def construct(self, positions, cell, pbc, atomic_numbers, shifts, idx_i, idx_j, pair_mask, atom_mask,
                  structure_index):
        x, _, _ = ops.split(positions, 1, 1)
        energies = ops.log(ops.squeeze(x, 1))
        forces = ops.concat([-1.0 / x, x * 0.0, x * 0.0], 1)
        energy = ops.unsorted_segment_sum(energies, structure_index, cell.shape[0])
        return energy, energies, forces, cell * 0.0


def test_nan_during_run_stops_and_keeps_last_good_frame():
    atoms = Atoms("Ar", positions=[[2.0, 0.0, 0.0]])
    state = MDState.from_atoms(atoms)
    state.momenta[:] = [[-0.05 / units.fs * state.masses[0], 0, 0]]  # 0.05 Å/fs toward the wall
    sim = Simulation(state, LogWall(), build_integrator("verlet", dt=1.0), remove_com=False)
    frames = []
    with pytest.raises(SimulationError, match=r"NaN or inf .* at step 3\d; .*last good frame \(step 30\)"):
        sim.run(100, block=10, callback=lambda s: frames.append(s.state.positions.copy()))
    assert sim.state.step == 30 and len(frames) == 3 and np.array_equal(sim.state.positions, frames[-1])
    assert 0 < sim.state.positions[0, 0] < 2.0 and np.isfinite(sim.observables()["total_energy"]).all()


def test_overlapping_atoms_stop_the_run():
    atoms = Atoms("Ar2", positions=[[0, 0, 0], [3.0, 0, 0]])
    state = MDState.from_atoms(atoms)
    v = 0.1 / units.fs * state.masses[0]  # 0.1 Å/fs each, head on; no forces (ε = 0)
    state.momenta[:] = [[v, 0, 0], [-v, 0, 0]]
    sim = Simulation(state, SmoothLJ(epsilon=0.0, cutoff=5.0, r_on=4.0), build_integrator("verlet", dt=1.0))
    with pytest.raises(SimulationError, match="closer than min_distance"):
        sim.run(100, block=5)
    assert sim.state.step in (5, 10)
    with pytest.raises(SimulationError, match="atoms 0 and 1 .* closer than min_distance"):
        Simulation(MDState.from_atoms(Atoms("Ar2", positions=[[0, 0, 0], [0.3, 0, 0]])), SmoothLJ(),
                   build_integrator("verlet", dt=1.0))


def test_unknown_element_for_the_model():
    from mindsponge_mm.models import Potential, build

    pot = Potential(build("schnet", elements=["H", "C", "O"], cutoff=4.0, n_features=8, n_interactions=1))
    atoms = Atoms("NH3", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(UserError, match="atom 0 is N"):
        Simulation(MDState.from_atoms(atoms), pot, build_integrator("verlet", dt=0.5))


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="verlet", dt=50.0), "time step dt = 50.0 fs is out of range"),
    (dict(name="langevin", dt=0.0), "time step dt = 0.0 fs is out of range"),
    (dict(name="langevin", temperature=-5.0), "temperature = -5.0 K is out of range"),
    (dict(name="bussi", temperature=1e7), "temperature = 10000000.0 K is out of range"),
    (dict(name="langevin", tau=0.0), "tau = 0.0 fs must be > 0"),
    (dict(name="langevn"), "unknown integrator 'langevn'; did you mean 'langevin'"),
    (dict(name="verlet", temperature=300), "integrator 'verlet' has no parameter 'temperature'; it takes dt"),
])
def test_integrator_parameters_out_of_range(kwargs, match):
    kwargs = dict(kwargs)
    with pytest.raises(UserError, match=match):
        build_integrator(kwargs.pop("name"), **kwargs)


def test_maxwell_boltzmann_and_state_round_trip():
    frames = argon(3)
    state = MDState.from_atoms(frames).maxwell_boltzmann(300, seed=4)
    np.testing.assert_allclose(state.temperature(remove_com=True), 300, rtol=1e-5)
    assert np.abs(np.bincount(state.structure_index, state.momenta[:, 1])).max() < 1e-3
    again = MDState.from_atoms(frames).maxwell_boltzmann(300, seed=4)
    assert np.array_equal(state.momenta, again.momenta)
    back = state.to_atoms()
    assert len(back) == 3 and np.allclose(back[1].get_momenta(), state.momenta[32:64], atol=1e-6)
    with pytest.raises(UserError, match="temperature = -1 K"):
        state.maxwell_boltzmann(-1)
    with pytest.raises(UserError, match="needs fully periodic"):
        Simulation(MDState.from_atoms(Atoms("Ar2", positions=[[0, 0, 0], [3.5, 0, 0]])), SmoothLJ(),
                   build_integrator("stochastic_cell_rescaling", dt=2.0, temperature=100, pressure=1))


def test_missing_checkpoints():
    with pytest.raises(UserError, match="MD checkpoint not found"):
        Simulation.restore("/nonexistent/md.npz", SmoothLJ())
    from mindsponge_mm.md.job import load_potential

    with pytest.raises(UserError, match="checkpoint not found"):
        load_potential("/nonexistent/model.safetensors")
    with pytest.raises(ConfigError):
        load_potential({"type": "lenard_jones"})


def _lj():
    from mindsponge_mm.potentials import LennardJones

    return LennardJones(0.0104, 3.4, 6.0, shift=True)  # Ar, shifted (continuous energy: virial = strain derivative)


@pytest.fixture(scope="module")
def argon_eos():
    """NVT equation of state of fcc argon at 60 K (a solid: no phase change over the range): mean pressures at five
    volumes (4 replicas each, Langevin), their quadratic fit P(V), the middle volume v0 and P0 = P(v0). Pressures in
    eV/Å³, P = N k T / V − tr(σ)/3 (ideal term N k T / V: positions of N atoms range over V)."""
    temperature, n_rep, a = 60.0, 4, 5.45
    kt = KB * temperature
    factors = np.array([0.92, 0.96, 1.0, 1.04, 1.08])
    frames = []
    for f in factors:
        for atoms in argon(n_rep, a=a * f ** (1 / 3), rattle=0.05, seed=20):
            frames.append(atoms)
    nvt = Simulation(MDState.from_atoms(frames).maxwell_boltzmann(temperature, seed=1), _lj(),
                     build_integrator("langevin", dt=8.0, temperature=temperature, tau=200.0), skin=0.6, seed=2)
    nvt.run(200, block=200)
    trace = []
    nvt.run(1000, block=10, callback=lambda s: trace.append(np.trace(s.stress_np, axis1=1, axis2=2)))
    n_atoms = 32
    volumes = nvt.state.volume().reshape(5, n_rep)[:, 0]
    virial = -np.array(trace).mean(0).reshape(5, n_rep) / 3  # eV/Å³, [volume, replica]
    pressure = n_atoms * kt / volumes + virial.mean(1)
    p_err = virial.std(1, ddof=1) / np.sqrt(n_rep)
    fit = np.polyfit(volumes, pressure, 2)
    v0 = volumes[2]
    return {"temperature": temperature, "a": a, "kt": kt, "volumes": volumes, "pressure": pressure, "p_err": p_err,
            "fit": fit, "v0": v0, "p0": np.polyval(fit, v0)}


@pytest.mark.slow
def test_stochastic_cell_rescaling_volume_matches_nvt_equation_of_state(argon_eos):
    """NPT ⟨V⟩ at P0 against an independent estimate: NVT pressures at five volumes give P(V) (quadratic fit),
    hence F(V) = −∫P dV and the isobaric distribution p(V) ∝ exp(−β (F(V) + P0 V)), whose mean is ⟨V⟩."""
    temperature, a, kt, fit, p0 = (argon_eos[k] for k in ("temperature", "a", "kt", "fit", "p0"))
    volumes = argon_eos["volumes"]
    grid = np.linspace(volumes[0], volumes[-1], 2001)
    free = -np.array([np.polyval(np.polyint(fit), v) for v in grid])  # F(V) up to a constant
    weight = np.exp(-(free + p0 * grid - (free + p0 * grid).min()) / kt)
    v_ref = (grid * weight).sum() / weight.sum()
    assert weight[0] < 1e-2 * weight.max() and weight[-1] < 1e-2 * weight.max()  # the range covers p(V)

    npt = Simulation(MDState.from_atoms(argon(8, a=a, rattle=0.05, seed=40)).maxwell_boltzmann(temperature, seed=3),
                     _lj(), build_integrator("stochastic_cell_rescaling", dt=8.0, temperature=temperature, tau=200.0,
                                             pressure=p0 / units.bar, barostat_tau=400.0, compressibility=1e-4),
                     skin=0.6, seed=4)
    npt.run(400, block=400)
    vols = []
    npt.run(2000, block=10, callback=lambda s: vols.append(s.state.volume()))
    vols = np.array(vols)
    per_replica = vols.mean(0)
    err = per_replica.std(ddof=1) / np.sqrt(len(per_replica))
    print(f"P0 {p0 / units.bar:.1f} bar, <V>_NPT {vols.mean():.2f} ± {err:.2f} Å³, reference {v_ref:.2f} Å³, "
          f"std V NPT {vols.std():.2f} ref {np.sqrt((grid**2 * weight).sum() / weight.sum() - v_ref**2):.2f}")
    assert abs(vols.mean() - v_ref) < max(4 * err, 0.005 * v_ref), (vols.mean(), v_ref, err)
    ref_std = np.sqrt((grid**2 * weight).sum() / weight.sum() - v_ref**2)
    assert abs(vols.std() / ref_std - 1) < 0.25, (vols.std(), ref_std)  # the fluctuations are isobaric too


def test_berendsen_barostat_mean_volume_matches_nvt_equation_of_state(argon_eos):
    """Berendsen NPT does not sample the isobaric ensemble, but it drives the mean pressure to P0, so its mean volume
    must be the root of the NVT equation of state P(V) = P0, i.e. v0. Started 4 % too large; 4 replicas."""
    temperature, a, fit, p0, v0 = (argon_eos[k] for k in ("temperature", "a", "fit", "p0", "v0"))
    npt = Simulation(MDState.from_atoms(argon(4, a=a * 1.04 ** (1 / 3), rattle=0.05, seed=50))
                     .maxwell_boltzmann(temperature, seed=3), _lj(),
                     build_integrator("berendsen_npt", dt=8.0, temperature=temperature, tau=100.0,
                                      pressure=p0 / units.bar, barostat_tau=400.0, compressibility=1e-4),
                     skin=0.6, seed=4)
    npt.run(400, block=400)
    vols = []
    npt.run(600, block=10, callback=lambda s: vols.append(s.state.volume()))
    vols = np.array(vols)
    per_replica = vols.mean(0)
    err_mean = per_replica.std(ddof=1) / np.sqrt(len(per_replica))
    slope = np.polyval(np.polyder(fit), v0)  # dP/dV < 0
    # the fit is linear in the five mean pressures: P0 = c · pressure, so var(P0) = Σ c_i² err_i²; an error in P0
    # moves the root by dP/|dP/dV|
    vols5 = argon_eos["volumes"]
    c = np.array([v0 ** 2, v0, 1.0]) @ np.linalg.pinv(np.vander(vols5, 3))
    err_eos = np.sqrt((c ** 2 * argon_eos["p_err"] ** 2).sum()) / abs(slope)
    err = np.hypot(err_mean, err_eos)
    print(f"Berendsen P0 {p0 / units.bar:.1f} bar: <V> {vols.mean():.2f} ± {err_mean:.2f} Å³, EOS root v0 {v0:.2f} "
          f"± {err_eos:.2f} Å³ (bulk modulus {-v0 * slope / units.bar:.0f} bar), std V {vols.std():.2f}")
    # floor 0.4 % of V (≈ 65 bar at this bulk modulus) for systematic shifts the statistics do not cover: the
    # barostat's kinetic pressure counts N − 1 degrees of freedom (≈ 6 bar), Berendsen's thermostat biases ⟨K⟩
    # slightly (measured: ⟨V⟩ 1291.8 vs v0 1295.0 ± 1.1 Å³; leaving out the kinetic pressure gives 1276)
    assert abs(vols.mean() - v0) < max(4 * err, 0.004 * v0), (vols.mean(), v0, err)
