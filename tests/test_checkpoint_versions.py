"""Checkpoints written before MACE's format was versioned (no ``version`` key) still load, as the
version-1 architecture, and give the same energies as the model that wrote them."""
import json

import numpy as np
from ase.build import molecule
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from mindsponge_mm.interfaces.ase import Calculator
from mindsponge_mm.models import Potential, build


def test_an_unversioned_mace_checkpoint_loads_as_version_1(tmp_path):
    model = build("mace", elements=["H", "C", "O"], cutoff=4.0, n_channels=4, l_max=1, correlation=2, n_layers=2,
                  n_radial=4, radial_hidden=8, version=1, dtype="float64", seed=3)
    path = Potential(model).save(tmp_path / "v1.safetensors")
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["mindsponge_mm"])
    assert meta["hyperparameters"]["version"] == 1
    del meta["hyperparameters"]["version"]  # as written before the format was versioned
    old = tmp_path / "unversioned.safetensors"
    save_file(load_file(path), str(old), metadata={"mindsponge_mm": json.dumps(meta)})

    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    energies = []
    for ckpt in (path, old):
        loaded = Potential.load(ckpt)
        assert loaded.model.hyperparameters["version"] == 1
        atoms.calc = Calculator(loaded)
        energies.append(atoms.get_potential_energy())
    assert energies[0] == energies[1] and np.isfinite(energies[0])
