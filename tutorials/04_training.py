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
from mindsponge_mm.job_schema import JOB_SCHEMA
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
                      "model.n_features=32"], schema=JOB_SCHEMA)
result = train(config)
print(f"YAML run: {result['compiled_shapes']} compiled train-step shape(s), best epoch {result['best_epoch']}")
assert result["compiled_shapes"] == 1  # every batch holds 10 ethanol molecules: 90 atoms, all pairs within 5 Å

# --- 2. From Python: the same pieces the job wires together.
ds = AtomsDataset.open("bundled:ethanol")
train_idx, val_idx, test_idx = split(ds, SPLIT, seed=1)
stats = statistics(ds, train_idx)  # atomrefs, mean energy per atom, force RMS over the training frames
model = build("schnet", elements=ds.elements, cutoff=5.0, n_features=32, n_interactions=2, seed=1)
model.set_energy_offsets(stats.atomrefs, scale=stats.force_rms, shift=stats.mean_energy_per_atom)
potential = Potential(model)
settings = load_config(ROOT / "configs" / "quickstart.yaml", schema=JOB_SCHEMA)["training"]  # defaults filled in by the schema
settings.update(epochs=EPOCHS, lr=3e-3)
run_dir = OUT / "python"
run_dir.mkdir(parents=True, exist_ok=True)
trainer = Trainer(potential,
                  AtomsLoader(ds, 10, 5.0, shuffle=True, seed=1, indices=train_idx),
                  AtomsLoader(ds, 10, 5.0, indices=val_idx), settings, run_dir)
history = trainer.fit()["history"]
print(f"Python run: validation force MAE {1000 * history[-1]['val_forces_mae']:.1f} meV/Å after {len(history)} epochs")
assert len(history) == EPOCHS and all(np.isfinite(row["val_forces_mae"]) for row in history)

# --- 3. Evaluate on the held-out frames: a metrics table plus parity plots.
metrics = evaluate(OUT / "yaml", "bundled:ethanol", "test")["metrics"]
for name in ("learning_curve.png", "parity_energy.png", "parity_forces.png"):
    print(f"plot: {OUT / 'yaml' / name}  exists={(OUT / 'yaml' / name).exists()}")
    assert (OUT / "yaml" / name).exists()
# Even one short epoch must beat the trivial model F = 0, whose force MAE is the mean |F| component.
test_frames = np.load(OUT / "yaml" / "split.npz")["test"]
zero_model_mae = np.mean([np.abs(ds[int(k)]["forces"]).mean() for k in test_frames])
print(f"test force MAE {1000 * metrics['forces_mae']:.0f} meV/Å; predicting F = 0 gives {1000 * zero_model_mae:.0f}")
assert metrics["forces_mae"] < 0.9 * zero_model_mae

# --- 4. The best checkpoint is self-describing: load it with nothing else, or export it.
best = Potential.load(OUT / "yaml" / "checkpoints" / "best.safetensors")
print(f"reloaded: {best.model.name}, elements {best.elements}, cutoff {best.cutoff} Å")
assert (best.model.name, best.elements, best.cutoff) == ("painn", [1, 6, 8], 5.0)
mindir = export(OUT / "yaml")
print(f"MindIR: {mindir}")
assert Path(mindir).stat().st_size > 0
