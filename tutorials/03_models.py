"""Tutorial 3: SchNet, PaiNN and MACE — energy, forces and stress, and equivariance checked numerically.

Run it with ``python tutorials/03_models.py``. Energies in eV, forces in eV/Å, stress in eV/Å³.
The models are untrained (random weights): the point here is the machinery, not the numbers.
"""
import tempfile
from pathlib import Path

import numpy as np
from ase.build import bulk, molecule
from scipy.spatial.transform import Rotation

from mindsponge_mm.data import collate
from mindsponge_mm.models import Potential, build

CUTOFF = 4.5
SIZES = {
    "schnet": dict(n_features=32, n_interactions=2),
    "painn": dict(n_features=32, n_interactions=2),
    "mace": dict(n_channels=16, hidden_l=1, l_max=2, correlation=3, n_layers=2),
}

# A molecule and a crystal (periodic, with a sheared cell so the stress is not trivial).
ethanol = molecule("CH3CH2OH")
copper = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
copper.set_cell(copper.cell[:] @ [[1.0, 0.03, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.98]], scale_atoms=True)
copper.rattle(0.05, seed=0)


def frame(atoms):
    return {"atomic_numbers": atoms.numbers, "positions": atoms.positions, "cell": atoms.cell[:], "pbc": atoms.pbc}


def evaluate(potential, *systems):
    """Energy, forces and stress of several structures in one padded batch."""
    batch = collate([frame(a) for a in systems], CUTOFF, dtype=potential.model.dtype_name)
    out = potential.evaluate(batch)
    n = sum(len(a) for a in systems)
    return out["energy"][: len(systems)], out["forces"][:n], out["stress"][: len(systems)]


rotation = Rotation.random(random_state=1).as_matrix()
# float64 throughout: sums of a few hundred terms agree to ~1e-15 relative; allow 1e4 ulps.
TOL = 1e4 * np.finfo(np.float64).eps
for name, sizes in SIZES.items():
    # 1. Build from the registry (YAML uses the same names and keys) and wrap in a Potential:
    #    forces = -dE/dR and stress = (1/V) dE/dε come from automatic differentiation in one graph.
    model = build(name, elements=["H", "C", "O", "Cu"], cutoff=CUTOFF, dtype="float64", seed=0, **sizes)
    potential = Potential(model)
    energy, forces, stress = evaluate(potential, ethanol, copper)
    n_params = sum(p.size for p in model.trainable_params())
    print(f"\n{name}: {n_params} weights")
    print(f"  E(ethanol) = {energy[0]: .6f} eV   E(Cu32) = {energy[1]: .6f} eV")
    print(f"  |F| max = {np.abs(forces).max():.4f} eV/Å, net force = {np.abs(forces[:9].sum(0)).max():.1e} eV/Å")
    print(f"  stress(Cu) diagonal = {np.diag(stress[1])} eV/Å³; ethanol (not periodic) = {np.abs(stress[0]).max()}")
    f_scale = np.abs(forces).max()
    assert np.abs(forces[:9].sum(0)).max() < TOL * f_scale  # translation invariance: no net force
    assert np.abs(forces[9:].sum(0)).max() < TOL * f_scale * len(copper)
    assert np.all(stress[0] == 0) and np.abs(stress[1] - stress[1].T).max() < TOL * np.abs(stress[1]).max()

    # 2. Equivariance: rotate both structures (and the cell). Energies stay, forces rotate with them.
    turned = []
    for atoms in (ethanol, copper):
        t = atoms.copy()
        t.positions = atoms.positions @ rotation.T
        if atoms.pbc.any():
            t.set_cell(atoms.cell[:] @ rotation.T, scale_atoms=False)
        turned.append(t)
    energy_r, forces_r, stress_r = evaluate(potential, *turned)
    residuals = (np.abs(energy_r - energy).max(), np.abs(forces_r - forces @ rotation.T).max(),
                 np.abs(stress_r[1] - rotation @ stress[1] @ rotation.T).max())
    print(f"  after a random rotation: |ΔE| = {residuals[0]:.1e} eV, "
          f"|F(R x) - R F(x)| = {residuals[1]:.1e} eV/Å, |σ' - R σ Rᵀ| = {residuals[2]:.1e}")
    scales = (np.abs(energy).max(), f_scale, np.abs(stress[1]).max())
    assert all(r < TOL * s for r, s in zip(residuals, scales)), (residuals, scales)

    # 3. Forces agree with a finite difference of the energy.
    h = 1e-4
    plus, minus = ethanol.copy(), ethanol.copy()
    plus.positions[0, 0] += h
    minus.positions[0, 0] -= h
    fd = -(evaluate(potential, plus)[0][0] - evaluate(potential, minus)[0][0]) / (2 * h)
    print(f"  F_x(atom 0) = {forces[0, 0]: .8f}, finite difference = {fd: .8f}")
    # central difference: truncation h²/6 |d³E/dx³| ~ 1e-9 |d³E/dx³|, rounding 1e-16 |E| / h ~ 1e-12 eV/Å
    assert abs(fd - forces[0, 0]) < 1e-6, (fd, forces[0, 0])

    # 4. Checkpoints are self-describing: weights + hyperparameters + elements + cutoff + units.
    path = Path(tempfile.mkdtemp()) / f"{name}.safetensors"
    potential.save(path)
    again = Potential.load(path)
    same = np.array_equal(evaluate(again, ethanol)[0], energy[:1])
    print(f"  saved and reloaded: same energies = {same}")
    assert same
