"""NPT integrators: isotropic barostats that use the potential's stress (eV/Å³, ASE sign).

Instantaneous pressure: ``P = 2 K / (3 V) - tr(stress) / 3`` (eV/Å³): ASE's stress is
(1/V) ∂E/∂ε, so the virial pressure is minus its trace over three.

* ``stochastic_cell_rescaling``: stochastic cell rescaling (Bernetti & Bussi, J. Chem. Phys. 153,
  114107, 2020), isotropic, with the Bussi thermostat on the particles. Samples NPT. The volume
  follows ``dε = -(β_T/τ_p)(P0 - P - δ k T / V) dt + sqrt(2 k T β_T dt / (V τ_p)) R`` with ε = ln V,
  positions and cell scaled by exp(dε/3) and momenta by exp(-dε/3); δ = (3N - N_f)/3 makes the
  kinetic estimate of the ideal-gas pressure N k T / V when the centre of mass is fixed (δ = 1).
* ``berendsen_npt``: Berendsen barostat + Berendsen thermostat, for equilibration only (does not
  sample NPT).

Parameters: dt (fs), temperature (K), tau (thermostat, fs), pressure (bar), barostat_tau (fs),
compressibility (1/bar, default 4.5e-5, water).
"""
from __future__ import annotations

import numpy as np
from ase import units
from mindspore import ops

from ..nn.geometry import cell_volume
from .integrators import Berendsen, Integrator, _BussiMixin, register
from .state import KB


class _BarostatMixin:
    def barostat_setup(self):
        self.p0 = self.t(self.params["pressure"] * units.bar)
        self.beta_dt_tau = self.t(self.params["compressibility"] / units.bar * self.dt_fs / self.params["barostat_tau"])
        n_atoms = np.bincount(np.asarray(self.structure_index.asnumpy()), minlength=self.n_structures)
        self.ideal_correction = self.t((3.0 * n_atoms - self.dof_np) / 3.0 * KB * self.temperature)

    def pressure(self, p, cell, stress):
        """[S] instantaneous pressure (eV/Å³) and [S] volume (Å³)."""
        volume = cell_volume(cell)
        trace = stress[:, 0, 0] + stress[:, 1, 1] + stress[:, 2, 2]
        return 2.0 * self.kinetic(p) / (3.0 * volume) - trace / 3.0, volume

    def scale_system(self, r, p, cell, aux, mu):
        """Scale positions and cells by mu [S] and momenta by 1/mu; kinetic change goes to the heat."""
        before = self.kinetic(p)
        r = r * self.per_atom(mu)
        p = p / self.per_atom(mu)
        cell = cell * ops.reshape(mu, (-1, 1, 1))
        return r, p, cell, self.add_heat(aux, self.kinetic(p) - before)


def _npt_params(dt, temperature, tau, pressure, barostat_tau, compressibility):
    if not float(compressibility) > 0:
        from ..errors import UserError

        raise UserError(f"compressibility = {compressibility} 1/bar must be > 0 (e.g. 4.5e-5 for water)")
    return dict(temperature=temperature, tau=tau, pressure=float(pressure), barostat_tau=float(barostat_tau),
                compressibility=float(compressibility))


@register("stochastic_cell_rescaling")
class StochasticCellRescaling(_BarostatMixin, _BussiMixin, Integrator):
    """Isotropic stochastic cell rescaling + Bussi thermostat: samples the NPT ensemble.

    Step: thermostat(dt/2) · kick(dt/2) · barostat(dt) · drift(dt) · forces · kick(dt/2) · thermostat(dt/2).
    """

    n_structure_noise = 5
    ensemble = "NPT"
    periodic_only = True

    def __init__(self, dt=1.0, temperature=300.0, tau=100.0, pressure=1.0, barostat_tau=1000.0,
                 compressibility=4.5e-5):
        super().__init__(dt, **_npt_params(dt, temperature, tau, pressure, barostat_tau, compressibility))

    def setup(self, masses):
        self.bussi_setup(0.5 * self.dt_fs)
        self.barostat_setup()
        self.noise_scale = self.t(2.0 * KB * self.temperature
                                  * self.params["compressibility"] / units.bar * self.dt_fs / self.params["barostat_tau"])
        self.third = self.t(1.0 / 3.0)

    def structure_noise(self, rng):
        out = np.zeros((self.n_structures, 5), self.np_dtype)
        self.bussi_noise(rng, out, 0)
        self.bussi_noise(rng, out, 2)
        out[:, 4] = rng.standard_normal(self.n_structures)
        return out

    # first_half and second_half: the thermostat's (_BussiMixin, columns 0-3); column 4 is the barostat's

    def middle(self, r, p, cell, aux, stress, noise_a, noise_s):
        cols = ops.split(noise_s, 1, 1)
        pressure, volume = self.pressure(p, cell, stress)
        drift = -self.beta_dt_tau * (self.p0 - pressure - self.ideal_correction / volume)
        d_eps = drift + ops.sqrt(self.noise_scale / volume) * ops.squeeze(cols[4], 1)
        r, p, cell, aux = self.scale_system(r, p, cell, aux, ops.exp(d_eps * self.third))
        return r + self.dt * p * self.inv_masses, p, cell, aux


@register("berendsen_npt")
class BerendsenNPT(_BarostatMixin, Berendsen):
    """Berendsen barostat (isotropic) + Berendsen thermostat. Equilibration only: it does NOT sample
    the isothermal–isobaric ensemble (volume fluctuations are suppressed)."""

    ensemble = "NPT (not isobaric-isothermal)"
    periodic_only = True

    def __init__(self, dt=1.0, temperature=300.0, tau=100.0, pressure=1.0, barostat_tau=1000.0,
                 compressibility=4.5e-5):
        Integrator.__init__(self, dt, **_npt_params(dt, temperature, tau, pressure, barostat_tau, compressibility))

    def setup(self, masses):
        Berendsen.setup(self, masses)
        self.barostat_setup()
        self.third = self.t(1.0 / 3.0)

    def middle(self, r, p, cell, aux, stress, noise_a, noise_s):
        pressure, _ = self.pressure(p, cell, stress)
        factor = 1.0 - self.beta_dt_tau * (self.p0 - pressure)
        mu = ops.pow(ops.clip_by_value(factor, self.t(0.9), self.t(1.1)), self.third)
        r = r * self.per_atom(mu)  # Berendsen scales coordinates and cell only
        cell = cell * ops.reshape(mu, (-1, 1, 1))
        return r + self.dt * p * self.inv_masses, p, cell, aux
