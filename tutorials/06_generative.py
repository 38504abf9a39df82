"""Tutorial 6: from SMILES to 3D, and MolMIM-style latent generative design with CMA-ES.

Run it with ``python tutorials/06_generative.py``. By default it is the short version (a tiny model
trained for a few epochs on 300 molecules, about a minute: the molecules it proposes are poor).
``MINDSPONGE_MM_TUTORIAL_FULL=1 python tutorials/06_generative.py`` trains the default model of
``configs/generate.yaml`` on RDKit's NCI set (minutes on a few CPU cores), which is the model the
numbers in the README come from. Energies in eV, lengths in Å.
"""
import os
import tempfile
from pathlib import Path

import numpy as np

from mindsponge_mm.config import load_yaml, validate
from mindsponge_mm.generative import job
from mindsponge_mm.generative.cmaes import optimize_molecule
from mindsponge_mm.generative.metrics import reconstruction, sampling_metrics
from mindsponge_mm.generative.scoring import Objective, PhysicsScore
from mindsponge_mm.interfaces.rdkit import atoms_to_mol, smiles_to_atoms

FULL = os.environ.get("MINDSPONGE_MM_TUTORIAL_FULL") == "1"
work = Path(tempfile.mkdtemp(prefix="tutorial06_"))

# 1. SMILES -> 3D. Hydrogens are added, ETKDG embeds conformers, MMFF94 relaxes them.
aspirin = smiles_to_atoms("CC(=O)Oc1ccccc1C(=O)O", n_conformers=3, seed=0)
print(f"aspirin: {len(aspirin)} conformers of {aspirin[0].get_chemical_formula()}")
assert len(aspirin) == 3 and aspirin[0].get_chemical_formula() == "C9H8O4"
from rdkit import Chem  # noqa: E402

back = Chem.MolToSmiles(Chem.RemoveHs(atoms_to_mol(aspirin[0])))
print(f"bonds perceived from the 3D geometry give back {back}")
assert back == Chem.MolToSmiles(Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O"))  # RDKit's canonical aspirin

# 2. Train the latent model (Perceiver encoder -> latent code -> Transformer decoder, MIM objective).
config_file = Path(__file__).resolve().parents[1] / "configs" / "generate.yaml"
raw = load_yaml(config_file) if config_file.exists() else {}
raw.setdefault("run", {})["output"] = str(work / "run")
if not FULL:
    raw["corpus"] = {**raw.get("corpus", {}), "limit": 300, "held_out": 20}
    raw["model"] = {**raw.get("model", {}), "d_model": 32, "n_heads": 2, "ff_dim": 64, "decoder_layers": 1,
                    "max_length": 64, "buckets": [64]}
    raw["train"] = {**raw.get("train", {}), "epochs": 3, "batch_size": 32, "eval_every": 3, "n_eval": 10}
config = validate(raw, job.GENERATE_SCHEMA, "tutorial")
trained = job.train(config)
mim = trained["model"]
held = (work / "run" / "held_out.smi").read_text().split()
rec = reconstruction(held, mim.reconstruct(held))
print("held-out reconstruction:", rec)
losses = [row["train_loss"] for row in trained["rows"]]
assert rec["n"] == len(held) == (200 if FULL else 20) and all(0 <= v <= 1 for k, v in rec.items() if k != "n")
assert losses[-1] < losses[0], losses  # the training loss fell

# 3. Sample around a seed: encode, add Gaussian noise of radius r, decode, canonicalise, de-duplicate.
seed = "CC(=O)Nc1ccc(O)cc1"  # paracetamol
train_set = set((work / "run" / "train.smi").read_text().split())
rng = np.random.default_rng(0)
for radius in (0.25, 0.5, 1.0):
    codes = mim.encode([seed]) + radius * rng.standard_normal((32, mim.code_size)).astype(np.float32)
    metrics = sampling_metrics(mim.decode(codes), seed, train_set)
    print(f"radius {radius:4.2f}: " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items() if k != "n"))
    assert all(0 <= v <= 1 for k, v in metrics.items() if k != "n"), metrics
neighbours = mim.sample(seed, n=16, radius=0.5)
print("unique valid neighbours:", neighbours[:8])
assert len(set(neighbours)) == len(neighbours) and all(Chem.MolFromSmiles(s) is not None for s in neighbours)

# 4. Optimise QED with CMA-ES in latent space, keeping ECFP4 similarity to the seed >= 0.4.
low_qed = "CCCCCCCCCCCCCCCCOC(=O)c1ccccc1"
objective = Objective({"qed": 1.0}, seed=low_qed, similarity_min=0.4)
result = optimize_molecule(mim, low_qed, objective, sigma0=0.5, iterations=10 if FULL else 3, popsize=16)
before, after = objective.details(result["seed"]), objective.details(result["best"])
print(f"QED {before['qed']:.3f} -> {after['qed']:.3f} at similarity {after['similarity']:.2f}: {result['best']}")
assert after["qed"] >= before["qed"] and after["similarity"] >= 0.4  # the seed itself is kept if nothing beats it

# 5. A physics score: embed with RDKit, relax with GFN2-xTB (tblite), score by the energy released on
#    relaxation per heavy atom (the strain of the chemistry-derived geometry). Any ASE calculator or a
#    trained mindsponge_mm Potential works too.
physics = PhysicsScore("xtb", n_conformers=2, steps=50, fmax=0.1, metric="relaxation_per_heavy_atom",
                       optimizer="lbfgs")
for smiles in ("CCO", "CC(=O)Nc1ccc(O)cc1", "CCS"):
    r = physics(smiles)
    print(smiles, f"relaxation {r['relaxation_per_heavy_atom']:.4f} eV per heavy atom")
    # relaxing never raises the energy (the lowest energy reached is kept), and xTB covers sulfur
    assert r["scorable"] and r["relaxation_per_heavy_atom"] >= 0.0, r
