"""Simulation: the compiled MD loop (k steps per ``ms.jit`` call, the neighbor list inside the graph).

Each call of the compiled block runs up to k steps in a graph-mode ``while`` loop (measured here:
it compiles faster than an unrolled Python ``for`` and runs ~15 % faster per step). The Verlet-skin
:class:`~mindsponge_mm.neighbors.NeighborList` lives in the graph and rebuilds itself when needed.
Python runs only between blocks: it checks the flags, updates the host state, logs and writes.

* Neighbor-list overflow: the block is discarded, the list is rebuilt with a larger capacity
  (``resized``) and the block is run again. Never silent; ``n_resizes`` counts it. The same holds
  for the packed pairs within the cutoff that the potential sees (``pair_capacity``).
* NaN / overlapping atoms (closer than ``min_distance`` Å) during a block: the block is discarded,
  the state stays at the last good block end (the last frame written) and :class:`SimulationError`
  says so.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import mindspore as ms
import numpy as np
from ase import units
from mindspore import Parameter, nn, ops

from ..errors import UserError
from ..io_utils import atomic_path
from ..neighbors import neighbor_list
from ..nn.geometry import pair_structure, pair_vectors
from ..potentials.base import PotentialBase, as_potential
from .integrators import INTEGRATORS, Integrator, build_integrator
from .state import KB, MDState

CHECKPOINT_FORMAT = "mindsponge_mm/md-checkpoint"
_NL_FIELDS = ("ref_positions", "ref_cells", "idx_i", "idx_j", "shifts", "count", "overflow", "max_shift", "n_builds")


class SimulationError(UserError):
    """The run became unphysical (NaN, overlapping atoms); the state is the last good one."""


class ForceField(nn.Cell):
    """Neighbor list + potential: ``(r [A,3], cell [S,3,3]) -> (energy [S] eV, forces [A,3] eV/Å,
    stress [S,3,3] eV/Å³, overflow [] bool, min pair distance² [] Å²)``."""

    def __init__(self, potential: PotentialBase, neighbor_list_cell, atomic_numbers, structure_index, pbc,
                 pair_capacity=None):
        super().__init__()
        self.potential = potential
        self.nl = neighbor_list_cell
        # pairs handed to the potential: the list's pairs within the cutoff, packed into the first
        # `pair_capacity` slots (the skin's pairs and the list's spare capacity are zero work for the model)
        self.pair_capacity = min(int(pair_capacity or neighbor_list_cell.capacity), neighbor_list_cell.capacity)
        self.compact = self.pair_capacity < neighbor_list_cell.capacity
        self.slots = ms.Tensor(np.arange(1, neighbor_list_cell.capacity + 1, dtype=np.int32))
        self.within_count = Parameter(ms.Tensor(0, ms.int32), requires_grad=False, name="ff_within_count")
        self.atomic_numbers = ms.Tensor(np.asarray(atomic_numbers, np.int32))
        self.structure_index = ms.Tensor(np.asarray(structure_index, np.int32))
        self.atom_mask = ms.Tensor(np.ones(len(atomic_numbers), bool))
        self.pbc = ms.Tensor(np.asarray(pbc, bool))
        self.n_structures = len(pbc)
        self.cutoff2 = float(potential.cutoff) ** 2
        # no periodic structure: the stress is zero, and the potential's energy_forces leaves it out of the graph
        self.stress = bool(np.asarray(pbc).any())

    def construct(self, r, cell):
        idx_i, idx_j, shifts, mask, count, overflow = self.nl(r, cell)
        # unused slots are zeroed here: the C++ kernel leaves them as they were (measured: stale pairs there made
        # runs depend on history in the last bit, which breaks bit-for-bit restarts)
        zero = ops.zeros_like(idx_i)
        idx_i, idx_j = ops.where(mask, idx_i, zero), ops.where(mask, idx_j, zero)
        shifts = ops.where(ops.expand_dims(mask, 1), shifts, ops.zeros_like(shifts)).astype(r.dtype)
        d = ops.stop_gradient(pair_vectors(r, cell, shifts, idx_i, idx_j, pair_structure(self.structure_index, idx_i)))
        d2 = (d * d).sum(-1)
        within = ops.logical_and(mask, d2 < self.cutoff2)
        min_d2 = ops.where(within, d2, ops.full_like(d2, 1e6)).min()
        if self.compact:
            idx_i, idx_j, shifts, within, n_within = self._pack(idx_i, idx_j, shifts, within)
            ops.assign(self.within_count, n_within)
            overflow = ops.logical_or(overflow, n_within > self.pair_capacity)
        if self.stress:
            energy, _, forces, stress = self.potential(r, cell, self.pbc, self.atomic_numbers, shifts, idx_i, idx_j,
                                                       within, self.atom_mask, self.structure_index)
        else:
            energy, _, forces = self.potential.energy_forces(r, cell, self.pbc, self.atomic_numbers, shifts, idx_i,
                                                             idx_j, within, self.atom_mask, self.structure_index)
            stress = ops.zeros_like(cell)
        return energy, forces, stress, overflow, min_d2

    def _pack(self, idx_i, idx_j, shifts, within):
        """The pairs with ``within`` moved, in order, to the first ``pair_capacity`` slots.

        Slot of a kept pair = the number of kept pairs before it (an exclusive prefix sum); every other
        pair goes to a spare slot that is dropped. Returns the packed ``idx_i, idx_j, shifts, mask``
        ([pair_capacity]; empty slots are i = j = 0 with a zero shift and mask False) and the number of
        kept pairs (more than ``pair_capacity`` means overflow).
        """
        keep = within.astype(ms.int32)
        n_within = keep.sum().astype(ms.int32)
        slot = ops.where(within, ops.cumsum(keep, 0) - keep, ops.full_like(keep, self.pair_capacity))
        slot = ops.minimum(slot, self.pair_capacity)
        # 1 + the list slot of the pair packed into each slot, 0 for an empty one (integer sums are exact)
        source = ops.unsorted_segment_sum(self.slots * keep, slot, self.pair_capacity + 1)[: self.pair_capacity]
        mask = source > 0
        source = ops.maximum(source - 1, 0)
        zero = ops.zeros_like(source)
        idx_i = ops.where(mask, ops.gather(idx_i, source, 0), zero)
        idx_j = ops.where(mask, ops.gather(idx_j, source, 0), zero)
        shifts = ops.where(ops.expand_dims(mask, 1), ops.gather(shifts, source, 0),
                           ops.zeros((self.pair_capacity, 3), shifts.dtype))
        return idx_i, idx_j, shifts, mask, n_within


class Block(nn.Cell):
    """Up to ``n_steps`` integration steps in one graph; stops early on overflow or a bad state."""

    def __init__(self, integrator: Integrator, min_distance: float):
        super().__init__()
        self.integrator = integrator
        self.min_d2 = float(min_distance) ** 2

    def construct(self, n_steps, r, p, cell, aux, f, energy, stress, noise_a, noise_s):
        t = ops.zeros((), ms.int32)
        overflow = ops.zeros((), ms.bool_)
        bad = ops.zeros((), ms.bool_)
        min_d2 = ops.full_like(r.sum(), 1e6)
        while ops.logical_and(t < n_steps, ops.logical_not(ops.logical_or(overflow, bad))):
            na = ops.gather(noise_a, t, 0)
            ns = ops.gather(noise_s, t, 0)
            r, p, cell, aux, f, energy, stress, ovf, d2 = self.integrator(r, p, cell, aux, f, stress, na, ns)
            overflow = ops.logical_or(overflow, ovf)
            finite = ops.logical_and(ops.isfinite(energy).all(), ops.isfinite(p).all())
            bad = ops.logical_or(ops.logical_not(finite), d2 < self.min_d2)
            min_d2 = ops.minimum(min_d2, d2)
            t = t + 1
        return t, r, p, cell, aux, f, energy, stress, overflow, bad, min_d2


class Simulation:
    """Run MD on an :class:`MDState` with any potential (see ``potentials.base.PotentialBase``).

    Args:
        state: the systems (positions Å, momenta, masses amu, cells); momenta are used as given.
        potential: a :class:`~mindsponge_mm.potentials.base.PotentialBase` (a plain Cell with its
            ``construct`` and a ``cutoff`` in Å is adapted by ``potentials.as_potential``).
        integrator: an :class:`Integrator` or its config dict ``{"name": ..., params}``.
        skin: Verlet skin of the neighbor list, Å.
        capacity: initial pair capacity of the neighbor list (default: pairs of the first frame within
            cutoff + skin, +30 %).
        pair_capacity: pairs handed to the potential (default: pairs of the first frame within the
            cutoff, +20 %, at most ``capacity``). When it is below ``capacity``, each step packs the
            pairs within the cutoff into that many slots, so the model does no work for the skin's pairs
            or the list's spare slots (864-atom Cu, SchNet: 61k list slots, 44k model pairs, 2.3 -> 3.0
            steps/s). Not for potentials with ``cheap_pairs`` (LJ), where packing costs more than it saves.
        remove_com: remove each structure's centre-of-mass momentum every step (N_f = 3N - 3).
        wrap: wrap positions into the cell between blocks.
        min_distance: pairs closer than this (Å) stop the run as overlapping atoms.
        seed: random seed (noise of step s is drawn from ``default_rng([seed, s])``).
        dtype: float32 or float64 (the potential's).
    """

    def __init__(self, state: MDState, potential, integrator, *, skin: float = 1.0, capacity: int | None = None,
                 pair_capacity: int | None = None, remove_com: bool = True, wrap: bool = False,
                 min_distance: float = 0.5, seed: int = 0,
                 dtype: str = "float32", backend: str = "auto", _restore: dict | None = None):
        self.state = state.copy()
        self.potential = as_potential(potential)
        self.integrator_config = integrator.config() if isinstance(integrator, Integrator) else dict(integrator)
        self.skin, self.remove_com, self.wrap = float(skin), bool(remove_com), bool(wrap)
        self.min_distance, self.seed, self.dtype, self.backend = float(min_distance), int(seed), str(dtype), backend
        self.n_resizes = 0
        self.dof = self.state.degrees_of_freedom(self.remove_com)
        for name in ("positions", "momenta", "masses", "cell"):
            setattr(self.state, name, getattr(self.state, name).astype(self.dtype))
        self._check_elements()
        self._check_integrator(self._make_integrator())
        if _restore is None:
            self._check_overlap()
        self.capacity = int(capacity) if capacity else self._estimate_capacity()
        self.pair_capacity = int(pair_capacity) if pair_capacity else self._estimate_pair_capacity(self.capacity)
        self._build(self.capacity)
        if _restore is not None:
            self._restore(_restore)
        else:
            self.aux = ms.Tensor(self.integrator.initial_aux())
            self._initial_forces()

    # ------------------------------------------------------------------ setup
    def _make_integrator(self) -> Integrator:
        cfg = dict(self.integrator_config)
        return build_integrator(cfg.pop("name"), **cfg)

    def _check_integrator(self, integ):
        if integ.periodic_only and not self.state.pbc.all():
            raise UserError(f"integrator {integ.name!r} changes the volume and needs fully periodic systems; "
                            f"use an NVT integrator for molecules or set pbc and a cell")

    def _check_elements(self):
        z = self.state.atomic_numbers
        self.potential.check_elements(z, np.ones(len(z), bool))

    def _structure_pairs(self, cutoff):
        s = self.state
        out = []
        for k in range(s.n_structures):
            sel = s.structure_index == k
            out.append(neighbor_list(s.positions[sel].astype(np.float64), s.cell[k].astype(np.float64), s.pbc[k], cutoff))
        return out

    def _check_overlap(self):
        s = self.state
        if not np.isfinite(s.positions).all() or not np.isfinite(s.momenta).all():
            raise SimulationError("the starting positions or momenta contain NaN or inf; check the input structure")
        offsets = np.concatenate([[0], np.cumsum(s.n_atoms)])
        for k, (i, j, _) in enumerate(self._structure_pairs(self.min_distance)):
            if len(i):
                raise SimulationError(
                    f"atoms {offsets[k] + i[0]} and {offsets[k] + j[0]} (structure {k}) are closer than "
                    f"min_distance = {self.min_distance} Å at the start; fix the structure or lower min_distance")

    def _estimate_capacity(self) -> int:
        pairs = sum(len(i) for i, _, _ in self._structure_pairs(self.potential.cutoff + self.skin))
        return self._capped(int(pairs * 1.3) + 64)

    def _estimate_pair_capacity(self, capacity: int) -> int:
        """Pairs within the cutoff now, +20 %, at most ``capacity`` (then nothing is packed); ``capacity``
        for potentials whose pairs cost about what packing them does (``cheap_pairs``, e.g. LJ)."""
        if self.potential.cheap_pairs:
            return capacity
        pairs = sum(len(i) for i, _, _ in self._structure_pairs(self.potential.cutoff))
        return min(int(pairs * 1.2) + 64, capacity)

    def _capped(self, capacity: int) -> int:
        """``capacity`` limited to the most pairs there can be: Σ n_k (n_k - 1) when no structure is
        periodic (a molecule has no images). Every pair-sized kernel then does only real work, and
        overflow is impossible (ethanol: 72 pairs instead of 157, 1.2x more steps/s)."""
        s = self.state
        if s.pbc.any():
            return capacity
        n = np.asarray(s.n_atoms, np.int64)
        return int(min(capacity, max(int((n * (n - 1)).sum()), 1)))

    def _build(self, capacity):
        from ..neighbors import NeighborList

        s = self.state
        self.capacity = int(capacity)
        self.nl = NeighborList(self.potential.cutoff, self.capacity, s.cell, s.pbc, s.n_atoms, skin=self.skin,
                               backend=self.backend, dtype=self.dtype)
        self.forcefield = ForceField(self.potential, self.nl, s.atomic_numbers, s.structure_index, s.pbc,
                                     pair_capacity=self.pair_capacity)
        self.integrator = self._make_integrator().bind(self.forcefield, s.masses, s.structure_index, self.dof,
                                                       self.remove_com, self.dtype)
        self.block = Block(self.integrator, self.min_distance)
        self._block_fn = ms.jit(self.block.construct)
        self._force_fn = ms.jit(self.forcefield.construct)
        self._zero_noise = {}
        self._warm = set()

    def _initial_forces(self):
        for tries in range(100):
            r, c = ms.Tensor(self.state.positions), ms.Tensor(self.state.cell)
            energy, f, stress, overflow, _ = self._force_fn(r, c)
            if not bool(overflow.asnumpy()):
                break
            self._grow(tries)
        self.r, self.p, self.c = r, ms.Tensor(self.state.momenta), c
        self.f, self.energy, self.stress = f, energy, stress
        self._sync()
        if not (np.isfinite(self.potential_energy).all() and np.isfinite(self.forces).all()):
            raise SimulationError("the potential gives NaN or inf energy/forces for the starting structure; "
                                  "check the structure and the potential")

    def _grow(self, tries: int = 0):
        count = int(self.nl.count.asnumpy())
        if count < 0 or tries >= 6:  # a kernel error, or growing does not help: a clear error, never a loop
            self.nl.check(self.nl.count, ms.Tensor(True))
        self.n_resizes += 1
        within = int(self.forcefield.within_count.asnumpy())
        packed_overflow = self.forcefield.compact and within > self.pair_capacity
        if packed_overflow:  # more pairs within the cutoff than the model's slots
            self.pair_capacity = int(within * 1.2) + 64
        capacity = self.capacity
        if count > self.capacity or not packed_overflow:  # the list itself overflowed
            capacity = self._capped(max(int(count * 1.3) + 64, 2 * self.capacity))
            self.pair_capacity = max(self.pair_capacity, self._estimate_pair_capacity(capacity))
        self._build(capacity)

    # ------------------------------------------------------------------ running
    def _noise(self, start: int, n: int):
        integ, s = self.integrator, self.state
        a = len(s.positions) if integ.atom_noise else 1
        k = max(1, integ.n_structure_noise)
        if not integ.atom_noise and not integ.n_structure_noise:
            key = (n, a, k)
            if key not in self._zero_noise:
                self._zero_noise[key] = (ms.Tensor(np.zeros((n, a, 3), self.dtype)),
                                         ms.Tensor(np.zeros((n, s.n_structures, k), self.dtype)))
            return self._zero_noise[key]
        noise_a = np.zeros((n, a, 3), self.dtype)
        noise_s = np.zeros((n, s.n_structures, k), self.dtype)
        for t in range(n):
            rng = np.random.default_rng([self.seed, start + t])
            if integ.atom_noise:
                noise_a[t] = rng.standard_normal((a, 3))
            noise_s[t] = integ.structure_noise(rng)
        return ms.Tensor(noise_a), ms.Tensor(noise_s)

    def run_block(self, n_steps: int) -> None:
        """Advance by ``n_steps`` steps in one compiled call (re-run after a neighbor-list resize)."""
        n_steps = int(n_steps)
        if n_steps <= 0:
            return
        noise_a, noise_s = self._noise(self.state.step, n_steps)
        for tries in range(100):
            self._warm_up(noise_a, noise_s)
            out = self._block_fn(ms.Tensor(n_steps, ms.int32), self.r, self.p, self.c, self.aux, self.f,
                                 self.energy, self.stress, noise_a, noise_s)
            done, r, p, c, aux, f, energy, stress, overflow, bad, min_d2 = out
            if bool(overflow.asnumpy()):
                # discard the block, enlarge the list, rerun from the block start (same noise)
                self._grow(tries)
                continue
            if bool(bad.asnumpy()):
                self.nl.overflow.copy_(ms.Tensor(True))  # its state is from the discarded block: rebuild next time
                at = self.state.step + int(done.asnumpy())
                reason = ("atoms closer than min_distance = %g Å (closest %.3f Å)" % (self.min_distance, np.sqrt(float(min_d2.asnumpy())))
                          if np.isfinite(float(min_d2.asnumpy())) and float(min_d2.asnumpy()) < self.min_distance**2
                          else "NaN or inf in the energy or momenta")
                raise SimulationError(f"{reason} at step {at}; the run stopped and the state is the last good frame "
                                      f"(step {self.state.step}); lower dt or check the structure and potential")
            break
        self.r, self.p, self.c, self.aux, self.f, self.energy, self.stress = r, p, c, aux, f, energy, stress
        self.state.step += n_steps
        self.state.time += n_steps * self.integrator.dt_fs
        self._sync()
        if self.wrap:
            self.state.wrap()
            self.r = ms.Tensor(self.state.positions)

    def _warm_up(self, noise_a, noise_s):
        """Run a fresh compiled block once (two steps with a neighbor search, result discarded, neighbor list put back).

        Measured with MindSpore 2.10 and the C++ neighbor kernel: the first call of a freshly compiled
        block differs from later calls in the last bit. Warming every new graph up the same way makes a
        run independent of when its graph was compiled, so restarts continue bit for bit."""
        key = (noise_a.shape, noise_s.shape)
        if key in self._warm:
            return
        saved = {k: getattr(self.nl, k).asnumpy().copy() for k in _NL_FIELDS}
        self.nl.overflow.copy_(ms.Tensor(True))  # make the warm-up step run the neighbor search too
        out = self._block_fn(ms.Tensor(noise_s.shape[0], ms.int32), self.r, self.p, self.c, self.aux, self.f, self.energy, self.stress,
                             noise_a, noise_s)
        out[0].asnumpy()
        for k in _NL_FIELDS:
            getattr(self.nl, k).copy_(ms.Tensor(saved[k]))
        self._warm.add(key)

    def run(self, steps: int, block: int = 50, callback: Callable[["Simulation"], None] | None = None) -> None:
        """Run ``steps`` steps in blocks of ``block``; ``callback(sim)`` after every block."""
        if int(block) < 1:
            raise UserError(f"block = {block} must be >= 1 (steps per compiled call)")
        left = int(steps)
        while left > 0:
            n = min(int(block), left)
            self.run_block(n)
            left -= n
            if callback is not None:
                callback(self)

    def _sync(self):
        s = self.state
        s.positions = self.r.asnumpy().copy()
        s.momenta = self.p.asnumpy().copy()
        s.cell = self.c.asnumpy().copy()
        self.forces = self.f.asnumpy().copy()
        energy, stress, aux = self.energy.asnumpy().copy(), self.stress.asnumpy().copy(), self.aux.asnumpy().copy()
        self.potential_energy = energy.astype(np.float64)
        self.stress_np = stress.astype(np.float64)
        self.aux_np = aux
        # The next block starts from fresh tensors made from these host copies, exactly as a restart
        # does: measured here, feeding a block's output tensors straight back in gives last-bit
        # differences from feeding the same values from host memory, which would break bit-for-bit
        # restarts.
        self.r, self.p, self.c = ms.Tensor(s.positions), ms.Tensor(s.momenta), ms.Tensor(s.cell)
        self.f, self.energy, self.stress, self.aux = (ms.Tensor(self.forces), ms.Tensor(energy), ms.Tensor(stress),
                                                      ms.Tensor(aux))

    # ------------------------------------------------------------------ observables
    def observables(self) -> dict[str, np.ndarray]:
        """Per structure [S]: potential/kinetic/total/conserved energy (eV), temperature (K),
        pressure (bar; 0 for non-periodic) and volume (Å³)."""
        s = self.state
        kin = s.kinetic_energy()
        volume = s.volume()
        trace = np.trace(self.stress_np, axis1=1, axis2=2)
        periodic = s.pbc.any(-1)
        pressure = np.where(periodic, (2 * kin / (3 * np.where(periodic, volume, 1.0)) - trace / 3) / units.bar, 0.0)
        total = self.potential_energy + kin
        return {"potential_energy": self.potential_energy, "kinetic_energy": kin, "total_energy": total,
                "conserved_energy": total - self.aux_np[:, 0].astype(np.float64),
                "temperature": 2 * kin / (self.dof * KB), "pressure": pressure, "volume": volume}

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Full state (positions, momenta, forces, thermostat variables, neighbor list, seed, step) as a
        .npz (no pickle), written atomically; :meth:`restore` continues bit for bit."""
        s = self.state
        arrays = {f"state_{k}": np.asarray(getattr(s, k)) for k in
                  ("positions", "momenta", "masses", "atomic_numbers", "structure_index", "cell", "pbc")}
        arrays.update({f"nl_{k}": getattr(self.nl, k).asnumpy() for k in _NL_FIELDS})
        arrays.update(forces=self.f.asnumpy(), energy=self.energy.asnumpy(), stress=self.stress.asnumpy(),
                      aux=self.aux.asnumpy())
        meta = {"format": CHECKPOINT_FORMAT, "step": s.step, "time": s.time, "integrator": self.integrator_config,
                "skin": self.skin, "capacity": self.capacity,
                "pair_capacity": self.pair_capacity, "remove_com": self.remove_com, "wrap": self.wrap,
                "min_distance": self.min_distance, "seed": self.seed, "dtype": self.dtype, "n_resizes": self.n_resizes}
        arrays["meta"] = np.array(json.dumps(meta))
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        return path

    @classmethod
    def restore(cls, path: str | os.PathLike, potential, backend: str = "auto") -> "Simulation":
        """A Simulation continuing exactly where :meth:`save_checkpoint` left off."""
        path = Path(path)
        if not path.exists():
            raise UserError(f"{path}: MD checkpoint not found; check the path or start without restart")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            meta = json.loads(str(data["meta"]))
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"{path}: not a readable MD checkpoint ({err})") from None
        if meta.get("format") != CHECKPOINT_FORMAT or meta["integrator"].get("name") not in INTEGRATORS:
            raise UserError(f"{path}: not an MD checkpoint written by Simulation.save_checkpoint")
        state = MDState(**{k: data[f"state_{k}"] for k in
                           ("positions", "momenta", "masses", "atomic_numbers", "structure_index", "cell", "pbc")},
                        step=int(meta["step"]), time=float(meta["time"]))
        sim = cls(state, potential, meta["integrator"], skin=meta["skin"], capacity=meta["capacity"],
                  pair_capacity=meta.get("pair_capacity"),
                  remove_com=meta["remove_com"], wrap=meta["wrap"], min_distance=meta["min_distance"],
                  seed=meta["seed"], dtype=meta["dtype"], backend=backend, _restore=data)
        sim.n_resizes = int(meta["n_resizes"])
        return sim

    def _restore(self, data):
        for k in _NL_FIELDS:
            param: Parameter = getattr(self.nl, k)
            param.copy_(ms.Tensor(data[f"nl_{k}"]))
        self.r, self.p = ms.Tensor(self.state.positions), ms.Tensor(self.state.momenta)
        self.c = ms.Tensor(self.state.cell)
        self.f, self.energy = ms.Tensor(data["forces"]), ms.Tensor(data["energy"])
        self.stress, self.aux = ms.Tensor(data["stress"]), ms.Tensor(data["aux"])
        self._sync()
