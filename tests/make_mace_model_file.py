"""Write small random mace-torch ``.model`` files for tests/test_mace_convert.py (run in the peers environment).

    /work/peers-venv/bin/python tests/make_mace_model_file.py [OUT_DIR]

Two float64 ``ScaleShiftMACE`` models with random weights, saved the way ``mace_run_train`` saves
them (``torch.save`` of the whole module, a pickle):

* ``single``: one head (``Default``), a residual first block, 2 interactions;
* ``multihead``: heads ``pt_head`` and ``Default`` (a fine-tuned model's layout), a plain first block,
  2 interactions, different E0s, scale and shift per head.

OUT_DIR (default ``tests/fixtures/mace_files``) receives, per model NAME:

* ``NAME.model``: the pickled module (reading it runs code from it: only for the CLI's pickle path);
* ``NAME.npz``: the state dict (``state/<key>``, float64) and mace-torch's results per head and structure
  (``energy/<head>/<structure>`` [1] in eV, ``forces/<head>/<structure>`` [n, 3] in eV/Å);
* ``NAME.json``: the constructor arguments in the schema of ``mindsponge_mm.models.mace_convert``
  (with ``heads``, and per-head ``atomic_energies``/``atomic_inter_scale``/``atomic_inter_shift``);
* ``multihead_mace_config.json``: the same, as mace-torch's ``extract_config_mace_model`` and
  ``convert_to_json_format`` write it (numbers as strings, classes as reprs, extra default keys);

``soft.model`` (the Soft distance transform: refused by the converter), ``not_a_model.pt`` (a dict of tensors),
and ``structures.npz`` holds ``<structure>/numbers``, ``/positions`` (Å), ``/cell`` (Å), ``/pbc``.
The npz/JSON pair is the safe (no pickle) input of ``mindsponge-mm convert mace``.

Needs torch 2.13 (CPU) and mace-torch 0.3.16 (see PEERS.md); imports no MindSpore.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # e3nn 0.4.4 loads its constants with torch.load

ELEMENTS = [1, 6, 8, 29]
MODELS = {
    "single": dict(heads=["Default"], hidden_irreps="8x0e+8x1o", max_ell=2, correlation=2, num_interactions=2,
                   r_max=4.5, num_bessel=6, num_polynomial_cutoff=5, radial_MLP=[8, 8], MLP_irreps="4x0e",
                   interaction_cls_first="RealAgnosticResidualInteractionBlock"),
    "multihead": dict(heads=["pt_head", "Default"], hidden_irreps="8x0e+8x1o", max_ell=2, correlation=2,
                      num_interactions=2, r_max=4.5, num_bessel=6, num_polynomial_cutoff=5, radial_MLP=[8, 8],
                      MLP_irreps="4x0e", interaction_cls_first="RealAgnosticInteractionBlock"),
}


def structures():
    """name -> ase.Atoms: two molecules of H, C, O and a periodic cell with Cu."""
    from ase.build import bulk, molecule

    out = {}
    a = molecule("CH3CH2OH")
    a.rattle(0.05, seed=3)
    out["ethanol"] = a
    b = molecule("H2O")
    b.rattle(0.05, seed=4)
    out["water"] = b
    c = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    c.symbols[1] = "O"
    c.rattle(0.1, seed=2)
    out["cu_o"] = c
    return out


def build(spec: dict, seed: int):
    import torch
    from e3nn import o3
    from mace import modules

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    heads = spec["heads"]
    n_heads, n_el = len(heads), len(ELEMENTS)
    e0 = rng.normal(-5.0, 2.0, (n_heads, n_el))
    scale = [1.3 + 0.4 * k for k in range(n_heads)]
    shift = [-0.2 + 0.15 * k for k in range(n_heads)]
    model = modules.ScaleShiftMACE(
        r_max=spec["r_max"], num_bessel=spec["num_bessel"], num_polynomial_cutoff=spec["num_polynomial_cutoff"],
        max_ell=spec["max_ell"], interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes[spec["interaction_cls_first"]],
        num_interactions=spec["num_interactions"], num_elements=n_el,
        hidden_irreps=o3.Irreps(spec["hidden_irreps"]), MLP_irreps=o3.Irreps(spec["MLP_irreps"]),
        atomic_energies=e0 if n_heads > 1 else e0[0], avg_num_neighbors=6.1, atomic_numbers=ELEMENTS,
        correlation=spec["correlation"], gate=torch.nn.functional.silu, radial_MLP=spec["radial_MLP"],
        atomic_inter_scale=scale if n_heads > 1 else scale[0], atomic_inter_shift=shift if n_heads > 1 else shift[0],
        heads=heads, pair_repulsion=spec.get("pair_repulsion", False),
        distance_transform=spec.get("distance_transform", "None"))
    with torch.no_grad():  # every head's readout and the product weights visibly different from the initial ones
        for name, p in model.named_parameters():
            if "symmetric_contractions" in name or "readouts" in name:
                p.mul_(3.0)
    hparams = dict(spec, num_elements=n_el, atomic_numbers=ELEMENTS, avg_num_neighbors=6.1, gate="silu",
                   interaction_cls="RealAgnosticResidualInteractionBlock", model="ScaleShiftMACE",
                   atomic_energies=e0.tolist() if n_heads > 1 else e0[0].tolist(),
                   atomic_inter_scale=scale if n_heads > 1 else scale[0],
                   atomic_inter_shift=shift if n_heads > 1 else shift[0])
    return model.double().eval(), hparams


def evaluate(model, atoms, heads: list[str], head: str, r_max: float):
    from mace import data as mdata
    from mace.tools import AtomicNumberTable, torch_geometric

    config = mdata.config_from_atoms(atoms, head_name=head)
    data = mdata.AtomicData.from_config(config, z_table=AtomicNumberTable(ELEMENTS), cutoff=r_max, heads=heads)
    loader = torch_geometric.dataloader.DataLoader([data], batch_size=1, shuffle=False)
    out = model(next(iter(loader)).to_dict(), compute_force=True)
    return out["energy"].detach().numpy(), out["forces"].detach().numpy()


def main(out_dir: Path) -> None:
    import torch

    torch.set_default_dtype(torch.float64)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = structures()
    for k, (name, spec) in enumerate(MODELS.items()):
        model, hparams = build(spec, seed=11 + k)
        arrays = {f"state/{key}": v.detach().numpy() for key, v in model.state_dict().items()}
        for head in spec["heads"]:
            for sname, atoms in frames.items():
                e, f = evaluate(model, atoms, spec["heads"], head, spec["r_max"])
                arrays[f"energy/{head}/{sname}"] = e
                arrays[f"forces/{head}/{sname}"] = f
        torch.save(model, out_dir / f"{name}.model")
        np.savez_compressed(out_dir / f"{name}.npz", **arrays)
        (out_dir / f"{name}.json").write_text(json.dumps(hparams, indent=1) + "\n")
        if len(spec["heads"]) > 1:  # the same model described by mace-torch's own config export
            from mace.tools.scripts_utils import convert_to_json_format, extract_config_mace_model

            config = convert_to_json_format(extract_config_mace_model(model))
            config["gate"] = re.sub(r" at 0x[0-9a-f]+", "", config["gate"])  # no memory address in the file
            (out_dir / f"{name}_mace_config.json").write_text(json.dumps(config, indent=1) + "\n")
        print(name, sum(v.size for key, v in arrays.items() if key.startswith("state/")), "state numbers")
    saved = {}
    for sname, atoms in frames.items():
        saved.update({f"{sname}/numbers": atoms.numbers, f"{sname}/positions": atoms.positions,
                      f"{sname}/cell": atoms.cell[:], f"{sname}/pbc": atoms.pbc})
    np.savez_compressed(out_dir / "structures.npz", **saved)
    # for the error tests: a torch file that is not a MACE model, and a model with the Soft transform
    torch.save({"weights": torch.zeros(3)}, out_dir / "not_a_model.pt")
    write_soft_model(out_dir)


def write_soft_model(out_dir: Path) -> None:
    import torch

    torch.set_default_dtype(torch.float64)
    torch.save(build({**MODELS["single"], "num_interactions": 1, "distance_transform": "Soft"}, seed=20)[0],
               out_dir / "soft.model")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "fixtures" / "mace_files")
