"""Tutorial 4: train a potential from YAML and from Python, evaluate it, look at the plots.

Run it with ``python tutorials/04_training.py`` (about two minutes on 2 cores; the tests run a
shorter version with ``MINDSPONGE_MM_TUTORIAL_QUICK=1``). Everything is written under ./tutorial_runs.

The same run from the command line::

    mindsponge-mm train configs/quickstart.yaml run.output=tutorial_runs/yaml training.epochs=3
    mindsponge-mm evaluate tutorial_runs/yaml bundled:ethanol --split test
    mindsponge-mm export tutorial_runs/yaml --format mindir
"""
import os
from pathlib import Path

import numpy as np

from mindsponge_mm.config import load_config
from mindsponge_mm.data import AtomsDataset, AtomsLoader, split, statistics
from mindsponge_mm.jobs import evaluate, export, train
from mindsponge_mm.models import Potential, build
from mindsponge_mm.train import Trainer

QUICK = os.environ.get("MINDSPONGE_MM_TUTORIAL_QUICK") == "1"
ROOT = Path(__file__).resolve().parents[1]
OUT = Path("tutorial_runs")
EPOCHS = 1 if QUICK else 3
SPLIT = [40, 10, 10] if QUICK else [400, 50, 50]

# --- 1. From YAML: the quick-start config with dotted overrides, exactly like the command line.
config = load_config(ROOT / "configs" / "quickstart.yaml",
                     [f"run.output={OUT / 'yaml'}", f"training.epochs={EPOCHS}", f"data.split={SPLIT}",
                      "model.n_features=32"])
result = train(config)
print(f"YAML run: {result['compiled_shapes']} compiled train-step shape(s), best epoch {result['best_epoch']}")

# --- 2. From Python: the same pieces the job wires together.
ds = AtomsDataset.open("bundled:ethanol")
train_idx, val_idx, test_idx = split(ds, SPLIT, seed=1)
stats = statistics(ds, train_idx)  # atomrefs, mean energy per atom, force RMS over the training frames
model = build("schnet", elements=ds.elements, cutoff=5.0, n_features=32, n_interactions=2, seed=1)
model.set_energy_offsets(stats.atomrefs, scale=stats.force_rms, shift=stats.mean_energy_per_atom)
potential = Potential(model)
settings = load_config(ROOT / "configs" / "quickstart.yaml")["training"]  # defaults filled in by the schema
settings.update(epochs=EPOCHS, lr=3e-3)
run_dir = OUT / "python"
run_dir.mkdir(parents=True, exist_ok=True)
trainer = Trainer(potential,
                  AtomsLoader(ds, 10, 5.0, shuffle=True, seed=1, indices=train_idx),
                  AtomsLoader(ds, 10, 5.0, indices=val_idx), settings, run_dir)
history = trainer.fit()["history"]
print(f"Python run: validation force MAE {1000 * history[-1]['val_forces_mae']:.1f} meV/Å after {len(history)} epochs")

# --- 3. Evaluate on the held-out frames: a metrics table plus parity plots.
metrics = evaluate(OUT / "yaml", "bundled:ethanol", "test")["metrics"]
for name in ("learning_curve.png", "parity_energy.png", "parity_forces.png"):
    print(f"plot: {OUT / 'yaml' / name}  exists={(OUT / 'yaml' / name).exists()}")

# --- 4. The best checkpoint is self-describing: load it with nothing else, or export it.
best = Potential.load(OUT / "yaml" / "checkpoints" / "best.safetensors")
print(f"reloaded: {best.model.name}, elements {best.elements}, cutoff {best.cutoff} Å")
print(f"MindIR: {export(OUT / 'yaml')}")
assert np.isfinite(metrics["forces_mae"])
