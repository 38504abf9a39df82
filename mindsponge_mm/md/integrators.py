"""Integrators and thermostats: one MD step as a MindSpore Cell, registered by name.

Every integrator is velocity Verlet with hooks (``first_half`` → half kick → ``middle`` → forces →
half kick → ``second_half``), so thermostats and barostats are splittings around it. The YAML word
is the registry key: ``verlet`` (NVE), ``langevin`` (BAOAB), ``nose_hoover_chain``, ``bussi``
(stochastic velocity rescaling), ``berendsen`` (equilibration only), and the NPT integrators in
:mod:`.barostats` (``stochastic_cell_rescaling``, ``berendsen_npt``).

Units: dt and relaxation times in fs, temperature K, pressure bar, compressibility 1/bar at the
interface; inside the graph everything is ASE units (eV, Å, amu, ASE time).

Randomness is counter based: the host draws the noise of step ``s`` from
``numpy.random.default_rng([seed, s])`` and feeds it to the compiled block, so a run's random
state is just (seed, step) and restarts continue bit for bit.

Thermostat state per structure lives in ``aux`` [S, n_aux]; column 0 always accumulates the energy
the thermostat (or barostat scaling of momenta) put into the kinetic energy (eV), so
``E_pot + E_kin - aux[:, 0]`` is a conserved quantity for the NVT integrators (up to discretisation).
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from ..errors import UserError
from ..registry import Registry
from .state import FS, KB, check_temperature, check_timestep

# YAML ``md.integrator`` -> integrator class; the constructor's arguments are the md keys it reads
INTEGRATORS = Registry("integrator", noun="parameter")


def register(name: str):
    """Class decorator: make an integrator buildable by its YAML name (also sets ``cls.name``)."""

    def wrap(cls):
        cls.name = name
        return INTEGRATORS.register(name)(cls)

    return wrap


def build_integrator(name: str, **params) -> "Integrator":
    """Construct a registered integrator; an unknown name or parameter is a one-line ConfigError."""
    return INTEGRATORS.build(name, **params)


class Integrator(nn.Cell):
    """Base class: velocity Verlet (NVE) with thermostat/barostat hooks.

    ``construct(r [A,3], p [A,3], cell [S,3,3], aux [S,n_aux], f [A,3], stress [S,3,3], noise_a [A|1,3],
    noise_s [S, m])`` → ``(r, p, cell, aux, f, energy [S], stress, overflow, min_distance² [])`` after one step.
    Call :meth:`bind` (done by :class:`~mindsponge_mm.md.simulation.Simulation`) before use.
    """

    name = "base"
    n_aux = 1
    atom_noise = False  # needs [A, 3] standard normals per step
    n_structure_noise = 0  # per-structure random numbers per step (drawn by structure_noise)
    ensemble = "NVE"
    periodic_only = False

    def __init__(self, dt: float = 0.5, **params):
        super().__init__()
        self.dt_fs = check_timestep(dt)
        self.params = {"dt": self.dt_fs, **params}
        self.temperature = None
        if "temperature" in params:
            self.temperature = check_temperature(params["temperature"])
        for key in ("tau", "barostat_tau"):
            if key in params and not float(params[key]) > 0:
                raise UserError(f"{key} = {params[key]} fs must be > 0 (a relaxation time, e.g. 100 fs)")
        self.bound = False

    def config(self) -> dict:
        """{'name': ..., parameters...}: enough to rebuild this integrator (stored in checkpoints)."""
        return {"name": self.name, **self.params}

    # ------------------------------------------------------------------ host side
    def bind(self, forcefield, masses, structure_index, dof, remove_com: bool, dtype: str):
        """Attach the force field and the per-system constants (numpy in; tensors of ``dtype`` out)."""
        self.np_dtype = np.dtype(dtype)
        self.forcefield = forcefield
        self.n_structures = int(len(dof))
        self.remove_com = bool(remove_com)
        self.dof_np = np.asarray(dof, np.float64)
        m = np.asarray(masses, np.float64)
        self.structure_index = ms.Tensor(np.asarray(structure_index, np.int32))
        self.masses = self.t(m[:, None])
        self.inv_masses = self.t(1.0 / m[:, None])
        self.total_mass = self.t(np.bincount(structure_index, m, minlength=self.n_structures)[:, None])
        self.dof = self.t(self.dof_np)
        self.dt = self.t(self.dt_fs * FS)
        self.half_dt = self.t(0.5 * self.dt_fs * FS)
        self.kt = self.t(KB * (self.temperature or 0.0))
        self.setup(m)
        self.bound = True
        return self

    def t(self, value):
        """A constant tensor of the simulation dtype (Python floats can round float64 graphs to float32)."""
        return ms.Tensor(np.asarray(value, self.np_dtype))

    def setup(self, masses: np.ndarray):
        """Integrator-specific constants (after bind has set the common ones)."""

    def initial_aux(self) -> np.ndarray:
        return np.zeros((self.n_structures, self.n_aux), self.np_dtype)

    def structure_noise(self, rng: np.random.Generator) -> np.ndarray:
        """[S, max(1, n_structure_noise)] random numbers of one step (zeros when none are needed)."""
        return np.zeros((self.n_structures, 1), self.np_dtype)

    # ------------------------------------------------------------------ graph helpers
    def kinetic(self, p):
        """[S] kinetic energy, eV."""
        return ops.unsorted_segment_sum(0.5 * (p * p * self.inv_masses).sum(-1), self.structure_index,
                                        self.n_structures)

    def per_atom(self, x):
        """[S] -> [A, 1]."""
        return ops.expand_dims(ops.gather(x, self.structure_index, 0), 1)

    def fix_com(self, p):
        if self.remove_com:
            total = ops.unsorted_segment_sum(p, self.structure_index, self.n_structures)  # [S, 3]
            p = p - self.masses * ops.gather(total / self.total_mass, self.structure_index, 0)
        return p

    def add_heat(self, aux, delta):
        """aux with ``delta`` [S] added to column 0 (the accumulated thermostat energy)."""
        if self.n_aux == 1:
            return aux + ops.expand_dims(delta, 1)
        head, tail = ops.split(aux, [1, self.n_aux - 1], 1)
        return ops.concat([head + ops.expand_dims(delta, 1), tail], 1)

    # ------------------------------------------------------------------ hooks (identity: NVE)
    def first_half(self, p, aux, noise_s):
        return p, aux

    def middle(self, r, p, cell, aux, stress, noise_a, noise_s):
        return r + self.dt * p * self.inv_masses, p, cell, aux

    def second_half(self, p, aux, noise_s):
        return p, aux

    def construct(self, r, p, cell, aux, f, stress, noise_a, noise_s):
        p, aux = self.first_half(p, aux, noise_s)
        p = p + self.half_dt * f
        r, p, cell, aux = self.middle(r, p, cell, aux, stress, noise_a, noise_s)
        energy, f, stress, overflow, min_d2 = self.forcefield(r, cell)
        p = p + self.half_dt * f
        p, aux = self.second_half(p, aux, noise_s)
        p = self.fix_com(p)
        return r, p, cell, aux, f, energy, stress, overflow, min_d2


@register("verlet")
class VelocityVerlet(Integrator):
    """Velocity Verlet, microcanonical (NVE). Parameters: dt (fs)."""

    def __init__(self, dt=0.5):
        super().__init__(dt)


@register("langevin")
class Langevin(Integrator):
    """Langevin dynamics with the BAOAB splitting (Leimkuhler & Matthews 2013), NVT.

    Parameters: dt (fs), temperature (K), tau = 1/friction (fs, default 100).
    """

    atom_noise = True
    ensemble = "NVT"

    def __init__(self, dt=0.5, temperature=300.0, tau=100.0):
        super().__init__(dt, temperature=temperature, tau=tau)

    def setup(self, masses):
        c1 = np.exp(-self.dt_fs / self.params["tau"])
        self.c1 = self.t(c1)
        self.sigma = self.t(np.sqrt((1.0 - c1 * c1) * masses * KB * self.temperature)[:, None])

    def middle(self, r, p, cell, aux, stress, noise_a, noise_s):
        r = r + self.half_dt * p * self.inv_masses
        before = self.kinetic(p)
        p = self.fix_com(self.c1 * p + self.sigma * noise_a)
        aux = self.add_heat(aux, self.kinetic(p) - before)
        r = r + self.half_dt * p * self.inv_masses
        return r, p, cell, aux


class _BussiMixin:
    """Stochastic velocity rescaling of the kinetic energy (Bussi, Donadio & Parrinello 2007)."""

    def bussi_noise(self, rng, out, col):
        out[:, col] = rng.standard_normal(self.n_structures)
        out[:, col + 1] = rng.chisquare(np.maximum(self.dof_np - 1.0, 1.0)) * (self.dof_np > 1)

    def bussi_setup(self, duration_fs):
        c = np.exp(-duration_fs / self.params["tau"])
        self.b_c = self.t(c)
        self.b_1mc = self.t(1.0 - c)
        self.b_target = self.t(0.5 * self.dof_np * KB * self.temperature)  # [S] mean kinetic energy

    def bussi(self, p, aux, r1, chi2):
        kin = self.kinetic(p)
        safe = ops.maximum(kin, ops.full_like(kin, 1e-30))
        per_dof = self.b_target / self.dof
        new = (kin * self.b_c + per_dof * self.b_1mc * (r1 * r1 + chi2)
               + 2.0 * r1 * ops.sqrt(self.b_c * self.b_1mc * per_dof * safe))
        alpha = ops.sqrt(ops.maximum(new, ops.zeros_like(new)) / safe)
        p = p * self.per_atom(alpha)
        return p, self.add_heat(aux, self.kinetic(p) - kin)

    def bussi_half_step(self, p, aux, noise_s, col):
        """The resampling for half a step with R and S from columns ``col`` and ``col + 1`` of ``noise_s``."""
        cols = ops.split(noise_s, 1, 1)
        return self.bussi(p, aux, ops.squeeze(cols[col], 1), ops.squeeze(cols[col + 1], 1))

    def first_half(self, p, aux, noise_s):  # columns 0, 1 (bussi_noise(rng, out, 0))
        return self.bussi_half_step(p, aux, noise_s, 0)

    def second_half(self, p, aux, noise_s):  # columns 2, 3 (bussi_noise(rng, out, 2))
        return self.bussi_half_step(p, aux, noise_s, 2)


@register("bussi")
class Bussi(_BussiMixin, Integrator):
    """Stochastic velocity rescaling (canonical sampling through velocity rescaling), NVT.

    Parameters: dt (fs), temperature (K), tau (fs, default 100). The kinetic energy is resampled for
    half a step before the first half kick and after the second one (symmetric Trotter splitting).
    Each resampling is exact: K' = c K + (1 - c) K̄/N_f (R² + S) + 2 R sqrt(c (1 - c) K K̄ / N_f) with
    c = exp(-dt / (2 tau)), R ~ N(0, 1), S ~ χ²(N_f - 1), K̄ = N_f k T / 2.
    """

    n_structure_noise = 4
    ensemble = "NVT"

    def __init__(self, dt=0.5, temperature=300.0, tau=100.0):
        super().__init__(dt, temperature=temperature, tau=tau)

    def setup(self, masses):
        self.bussi_setup(0.5 * self.dt_fs)

    def structure_noise(self, rng):
        out = np.zeros((self.n_structures, 4), self.np_dtype)
        self.bussi_noise(rng, out, 0)
        self.bussi_noise(rng, out, 2)
        return out


@register("berendsen")
class Berendsen(Integrator):
    """Berendsen weak-coupling thermostat. For equilibration only: it does NOT sample the canonical
    ensemble (kinetic-energy fluctuations are suppressed). Parameters: dt (fs), temperature (K), tau (fs)."""

    ensemble = "NVT (not canonical)"

    def __init__(self, dt=0.5, temperature=300.0, tau=100.0):
        super().__init__(dt, temperature=temperature, tau=tau)

    def setup(self, masses):
        self.ratio = self.t(self.dt_fs / self.params["tau"])
        self.b_target = self.t(0.5 * self.dof_np * KB * self.temperature)

    def berendsen(self, p, aux):
        kin = self.kinetic(p)
        safe = ops.maximum(kin, ops.full_like(kin, 1e-30))
        lam2 = 1.0 + self.ratio * (self.b_target / safe - 1.0)
        lam = ops.sqrt(ops.clip_by_value(lam2, self.t(0.64), self.t(1.5625)))
        p = p * self.per_atom(lam)
        return p, self.add_heat(aux, self.kinetic(p) - kin)

    def second_half(self, p, aux, noise_s):
        return self.berendsen(p, aux)


@register("nose_hoover_chain")
class NoseHooverChain(Integrator):
    """Nosé–Hoover chain thermostat (Martyna, Klein & Tuckerman 1992), NVT, one chain per structure.

    Parameters: dt (fs), temperature (K), tau (fs, default 100), chain_length (default 3).
    Thermostat masses Q1 = N_f k T tau², Q_j = k T tau². The chain is propagated by half steps
    before and after the velocity Verlet step (Trotter splitting). aux columns: heat, xi_1..M, v_1..M.
    """

    ensemble = "NVT"

    def __init__(self, dt=0.5, temperature=300.0, tau=100.0, chain_length=3):
        if int(chain_length) < 1:
            raise UserError(f"chain_length = {chain_length} must be >= 1")
        super().__init__(dt, temperature=temperature, tau=tau, chain_length=int(chain_length))
        self.m = int(chain_length)
        self.n_aux = 1 + 2 * self.m

    def setup(self, masses):
        tau = self.params["tau"] * FS
        kt = KB * self.temperature
        self.q1 = self.t(self.dof_np * kt * tau * tau)
        self.q = self.t(kt * tau * tau)
        self.nkt = self.t(self.dof_np * kt)
        self.quarter = self.t(0.25 * self.dt_fs * FS)
        self.eighth = self.t(0.125 * self.dt_fs * FS)

    def force_on(self, j, k2, v):
        if j == 0:
            return (k2 - self.nkt) / self.q1
        q_prev = self.q1 if j == 1 else self.q
        return (q_prev * v[j - 1] * v[j - 1] - self.kt) / self.q

    def chain(self, p, aux):
        m = self.m
        cols = ops.split(aux, 1, 1)
        heat = ops.squeeze(cols[0], 1)
        xi = [ops.squeeze(cols[1 + j], 1) for j in range(m)]
        v = [ops.squeeze(cols[1 + m + j], 1) for j in range(m)]
        kin = self.kinetic(p)
        k2 = 2.0 * kin
        v[m - 1] = v[m - 1] + self.quarter * self.force_on(m - 1, k2, v)
        for j in range(m - 2, -1, -1):
            s = ops.exp(-self.eighth * v[j + 1])
            v[j] = (v[j] * s + self.quarter * self.force_on(j, k2, v)) * s
        scale = ops.exp(-self.half_dt * v[0])
        p = p * self.per_atom(scale)
        k2 = k2 * scale * scale
        heat = heat + 0.5 * k2 - kin
        for j in range(m):
            xi[j] = xi[j] + self.half_dt * v[j]
        for j in range(m - 1):
            s = ops.exp(-self.eighth * v[j + 1])
            v[j] = (v[j] * s + self.quarter * self.force_on(j, k2, v)) * s
        v[m - 1] = v[m - 1] + self.quarter * self.force_on(m - 1, k2, v)
        aux = ops.stack([heat] + xi + v, 1)
        return p, aux

    def first_half(self, p, aux, noise_s):
        return self.chain(p, aux)

    def second_half(self, p, aux, noise_s):
        return self.chain(p, aux)

    def thermostat_energy(self, aux: np.ndarray) -> np.ndarray:
        """[S] energy of the chains (eV), in float64, from ``aux`` [S, 1 + 2M] (``Simulation.aux_np``):
        Σ_j Q_j v_j² / 2 + N_f k T ξ_1 + k T Σ_{j≥2} ξ_j (v_j in 1/ASE time, ξ_j dimensionless).

        E_kin + E_pot + this is the extended Hamiltonian the Nosé–Hoover chain equations conserve; its
        drift measures the integration error (``tests/test_md.py``). It differs from the observable
        ``conserved_energy`` (E_kin + E_pot minus the heat put in) only by the splitting error of the
        chain's half steps.
        """
        aux = np.asarray(aux, np.float64)
        m = self.m
        xi, v = aux[:, 1:1 + m], aux[:, 1 + m:1 + 2 * m]
        tau = self.params["tau"] * FS
        kt = KB * self.temperature
        q = np.full((len(aux), m), kt * tau * tau)
        q[:, 0] = self.dof_np * kt * tau * tau
        return 0.5 * (q * v * v).sum(1) + self.dof_np * kt * xi[:, 0] + kt * xi[:, 1:].sum(1)
