"""Write the mace-torch parity fixtures of tests/test_mace_parity.py (run in the peers environment).

    /work/peers-venv/bin/python tests/make_mace_fixtures.py [OUT_DIR] [--full]

For each architecture below a ``ScaleShiftMACE`` with random weights (float64, small widths) is built
and evaluated on a fixed set of structures; OUT_DIR (default ``tests/fixtures/mace``) receives

* ``<arch>.npz``: the model's state dict (``state/<name>``) and mace-torch's results
  (``energy/<k>`` [1], ``node_energy/<k>`` [n], ``forces/<k>`` [n, 3], ``stress/<k>`` [3, 3]);
* ``<arch>.json``: the hyperparameters (the schema of ``mindsponge_mm.models.mace_convert``);
* ``structures.npz``: ``<k>/numbers``, ``<k>/positions`` (Å), ``<k>/cell`` (Å), ``<k>/pbc``.

An architecture with ``pair_repulsion`` (MACE-MP-0b style: ZBL and the Agnesi transform) is also
evaluated on ``close`` (a molecule with pairs at 0.7-1.0 Å, where ZBL matters) and ``close_cell`` (a
small periodic cell with close pairs). ``--only NAME ...`` regenerates those architectures and keeps
the other entries of an existing ``structures.npz``.

Needs torch 2.13 (CPU) and mace-torch 0.3.16 (see PEERS.md); imports no MindSpore.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # e3nn 0.4.4 loads its constants with torch.load

ARCHITECTURES = {
    # MACE-MP-0 "medium" structure at 16 channels: residual blocks everywhere
    "mp_medium": dict(hidden_irreps="16x0e+16x1o", max_ell=3, correlation=3, num_interactions=2, r_max=6.0,
                      num_bessel=10, num_polynomial_cutoff=5, radial_MLP=[16, 16, 16], MLP_irreps="16x0e",
                      interaction_cls_first="RealAgnosticResidualInteractionBlock"),
    # MACE-OFF23 style: a plain first block (element-dependent mixing of A, no skip), then residual
    "off23": dict(hidden_irreps="16x0e+16x1o", max_ell=3, correlation=3, num_interactions=2, r_max=5.0,
                  num_bessel=8, num_polynomial_cutoff=5, radial_MLP=[16, 16, 16], MLP_irreps="16x0e",
                  interaction_cls_first="RealAgnosticInteractionBlock"),
    "hidden_l0": dict(hidden_irreps="8x0e", max_ell=2, correlation=2, num_interactions=3, r_max=4.5,
                      num_bessel=6, num_polynomial_cutoff=6, radial_MLP=[8, 8], MLP_irreps="4x0e",
                      interaction_cls_first="RealAgnosticResidualInteractionBlock"),
    "hidden_l2": dict(hidden_irreps="8x0e+8x1o+8x2e", max_ell=2, correlation=3, num_interactions=3, r_max=4.5,
                      num_bessel=6, num_polynomial_cutoff=5, radial_MLP=[8, 8, 8], MLP_irreps="8x0e",
                      interaction_cls_first="RealAgnosticInteractionBlock"),
    "single": dict(hidden_irreps="8x0e+8x1o", max_ell=2, correlation=3, num_interactions=1, r_max=5.0,
                   num_bessel=8, num_polynomial_cutoff=5, radial_MLP=[8, 8, 8], MLP_irreps="16x0e",
                   interaction_cls_first="RealAgnosticResidualInteractionBlock"),
    # MACE-MP-0b's additions: ZBL pair repulsion and the Agnesi distance transform
    "mp0b": dict(hidden_irreps="8x0e+8x1o", max_ell=2, correlation=2, num_interactions=2, r_max=5.0,
                 num_bessel=6, num_polynomial_cutoff=5, radial_MLP=[8, 8], MLP_irreps="8x0e",
                 interaction_cls_first="RealAgnosticResidualInteractionBlock", pair_repulsion=True,
                 distance_transform="Agnesi"),
}
ELEMENTS = [1, 6, 8, 29]
# The full MACE-MP-0 "medium" size (``--full``; not in the committed fixtures): 89 elements as MACE-MP-0
FULL = {
    "mp0_medium_full": dict(hidden_irreps="128x0e+128x1o", max_ell=3, correlation=3, num_interactions=2, r_max=6.0,
                            num_bessel=10, num_polynomial_cutoff=5, radial_MLP=[64, 64, 64], MLP_irreps="16x0e",
                            interaction_cls_first="RealAgnosticResidualInteractionBlock",
                            elements=list(range(1, 84)) + list(range(89, 95))),
}


def structures(r_max: float, close: bool = False):
    """name -> ase.Atoms; the pair is placed just inside the architecture's r_max; ``close`` adds
    structures with pairs well inside the ZBL range (sums of covalent radii)."""
    from ase import Atoms
    from ase.build import bulk, molecule

    out = {}
    a = molecule("CH3CH2OH")
    a.rattle(0.05, seed=3)
    out["ethanol"] = a
    b = molecule("H2O")
    b.positions += [0.3, -0.2, 0.1]
    out["water"] = b
    c = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    c.set_cell(c.cell[:] @ (np.eye(3) + 0.05 * np.array([[0, 1, -1], [0.5, 0, 1], [-1, 0.3, 0]])), scale_atoms=True)
    c.symbols[1] = "O"
    c.rattle(0.1, seed=2)
    out["triclinic"] = c
    s = Atoms("CuH", positions=[[0.1, 0.2, 0.0], [1.2, 0.9, 1.1]],
              cell=[[2.6, 0.0, 0.0], [0.4, 2.5, 0.0], [0.3, -0.2, 2.7]], pbc=True)
    out["small_cell"] = s  # every atom sees its own images
    out["isolated"] = Atoms("O", positions=[[0.0, 0.0, 0.0]])
    out["pair"] = Atoms("CO", positions=[[0.0, 0.0, 0.0], [0.3, -0.4, 0.0]])
    direction = np.array([0.3, -0.4, 0.5]) / np.linalg.norm([0.3, -0.4, 0.5])
    out["pair"].positions[1] = direction * (r_max - 0.01)
    if close:  # C-C 0.96, C-O 0.84, O-H 0.73, C-H 0.84, Cu-C 1.47 Å
        out["close"] = Atoms("CCOHHCu", positions=[[0.0, 0.0, 0.0], [0.95, 0.1, 0.0], [-0.6, 0.5, 0.3],
                                                   [-0.2, 1.1, 0.4], [1.5, -0.5, 0.2], [2.0, 1.0, -0.5]])
        out["close_cell"] = Atoms("CuOH", positions=[[0.1, 0.2, 0.0], [1.0, 0.6, 0.5], [1.5, 0.3, 0.9]],
                                  cell=[[3.0, 0.0, 0.0], [0.3, 2.9, 0.0], [-0.2, 0.4, 3.1]], pbc=True)
    return out


def build(arch: dict, seed: int):
    import torch
    from e3nn import o3
    from mace import modules

    torch.manual_seed(seed)
    arch = dict(arch)
    elements = arch.pop("elements", ELEMENTS)
    n_el = len(elements)
    rng = np.random.default_rng(seed)
    e0 = rng.normal(-5.0, 2.0, n_el)
    model = modules.ScaleShiftMACE(
        r_max=arch["r_max"], num_bessel=arch["num_bessel"], num_polynomial_cutoff=arch["num_polynomial_cutoff"],
        max_ell=arch["max_ell"], interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes[arch["interaction_cls_first"]],
        num_interactions=arch["num_interactions"], num_elements=n_el, hidden_irreps=o3.Irreps(arch["hidden_irreps"]),
        MLP_irreps=o3.Irreps(arch["MLP_irreps"]), atomic_energies=e0, avg_num_neighbors=7.3,
        atomic_numbers=elements, correlation=arch["correlation"], gate=torch.nn.functional.silu,
        radial_MLP=arch["radial_MLP"], atomic_inter_scale=1.3, atomic_inter_shift=-0.2,
        pair_repulsion=arch.get("pair_repulsion", False), distance_transform=arch.get("distance_transform", "None"))
    with torch.no_grad():  # larger product weights than the initial 1/K, so every path matters
        for name, p in model.named_parameters():
            if "symmetric_contractions" in name:
                p.mul_(3.0)
        if arch.get("pair_repulsion"):  # buffers away from mace-torch's defaults: the converter must read them
            model.pair_repulsion_fn.a_prefactor.mul_(1.05)
            model.pair_repulsion_fn.covalent_radii.mul_(1.1)
        if arch.get("distance_transform") == "Agnesi":
            transform = model.radial_embedding.distance_transform
            transform.q.add_(0.05)
            transform.a.mul_(0.9)
            transform.covalent_radii.mul_(0.97)
    hparams = dict(arch, num_elements=n_el, atomic_numbers=elements, atomic_energies=e0.tolist(),
                   avg_num_neighbors=7.3, atomic_inter_scale=1.3, atomic_inter_shift=-0.2, gate="silu",
                   interaction_cls="RealAgnosticResidualInteractionBlock", model="ScaleShiftMACE")
    return model.double().eval(), hparams


def evaluate(model, atoms, r_max: float, elements=ELEMENTS):
    import torch
    from mace import data as mdata
    from mace.tools import AtomicNumberTable, torch_geometric

    config = mdata.config_from_atoms(atoms)
    z_table = AtomicNumberTable(list(elements))
    loader = torch_geometric.dataloader.DataLoader(
        [mdata.AtomicData.from_config(config, z_table=z_table, cutoff=r_max)], batch_size=1, shuffle=False)
    batch = next(iter(loader)).to_dict()
    out = model(batch, compute_force=True, compute_stress=True)
    stress = out["stress"][0].detach().numpy() if atoms.pbc.any() else np.zeros((3, 3))
    return (out["energy"].detach().numpy(), out["node_energy"].detach().numpy(), out["forces"].detach().numpy(),
            stress)


def main(out_dir: Path, architectures: dict = ARCHITECTURES, only=None) -> None:
    import torch

    torch.set_default_dtype(torch.float64)
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = {}
    if only and (out_dir / "structures.npz").is_file():
        with np.load(out_dir / "structures.npz") as old:
            saved = {key: old[key] for key in old.files if key.split("/", 1)[0] not in only}
    for k, (name, arch) in enumerate(architectures.items()):
        if only and name not in only:
            continue
        model, hparams = build(arch, seed=k + 1)  # the seed is the position in the table
        arrays = {f"state/{key}": v.detach().numpy() for key, v in model.state_dict().items()}
        for sname, atoms in structures(arch["r_max"], close=bool(arch.get("pair_repulsion"))).items():
            e, ne, f, s = evaluate(model, atoms, arch["r_max"], hparams["atomic_numbers"])
            arrays.update({f"energy/{sname}": e, f"node_energy/{sname}": ne, f"forces/{sname}": f,
                           f"stress/{sname}": s})
            saved[f"{name}/{sname}/numbers"] = atoms.numbers
            saved[f"{name}/{sname}/positions"] = atoms.positions
            saved[f"{name}/{sname}/cell"] = atoms.cell[:]
            saved[f"{name}/{sname}/pbc"] = atoms.pbc
        np.savez_compressed(out_dir / f"{name}.npz", **arrays)
        (out_dir / f"{name}.json").write_text(json.dumps(hparams, indent=1) + "\n")
        print(name, sum(v.size for key, v in arrays.items() if key.startswith("state/")), "state numbers")
    np.savez_compressed(out_dir / "structures.npz", **saved)


if __name__ == "__main__":
    argv = sys.argv[1:]
    only = argv[argv.index("--only") + 1:] if "--only" in argv else None
    args = [a for a in (argv[:argv.index("--only")] if only is not None else argv) if a != "--full"]
    main(Path(args[0]) if args else Path(__file__).resolve().parent / "fixtures" / "mace",
         FULL if "--full" in sys.argv else ARCHITECTURES, only)
