"""Molecular dynamics: state, integrators/thermostats/barostats, the compiled loop, H5MD output.

* :class:`MDState` — positions, momenta, masses, cells of one or more systems (host, numpy);
* :data:`INTEGRATORS` / :func:`build_integrator` — ``verlet``, ``langevin``, ``nose_hoover_chain``,
  ``bussi``, ``berendsen``, ``stochastic_cell_rescaling``, ``berendsen_npt``;
* :class:`Simulation` — k steps per compiled call with the neighbor list in the graph;
* :mod:`.h5md` — H5MD writer/reader; :mod:`.job` — ``run_md(config)`` for the CLI.

Units: Å, eV, amu, K, fs; pressure bar at the interface, stress eV/Å³.
"""
from .state import MDState, check_temperature, check_timestep
from .integrators import INTEGRATORS, Integrator, build_integrator
from . import barostats  # noqa: F401  (registers the NPT integrators)
from .simulation import Simulation, SimulationError

__all__ = ["MDState", "INTEGRATORS", "Integrator", "build_integrator", "Simulation", "SimulationError",
           "check_temperature", "check_timestep"]
