"""Every shipped config in configs/*.yaml validates against the schema its command uses, and each
one runs: the training configs for one short epoch, the generative one for one epoch on a few
molecules, md_lj for one block. Overrides shrink the data and the model's depth (the shipped size is
built in test_config_validates; compiling it would cost up to 40 s per config), never the data,
training, loss or MD settings.

Covered elsewhere, to keep this file near a minute: configs/quickstart.yaml runs end to end (train,
evaluate, MD) in tests/test_cli.py::test_main_job_quickstart, and md_ethanol.yaml's integrator and
system are those of the quick start's md section run there. schnet_ethanol.yaml has the data and
training sections of painn_ethanol.yaml (checked below) and SchNet trains in schnet_copper.yaml."""
import csv
from pathlib import Path

import numpy as np
import pytest

from mindsponge_mm.cli import main
from mindsponge_mm.config import RUN_SCHEMA, load_config, load_yaml
from mindsponge_mm.job_schema import JOB_SCHEMA, validate_md_section
from mindsponge_mm.generative.job import GENERATE_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
MD_ONLY = {"run": RUN_SCHEMA, "md": validate_md_section}  # as `mindsponge-mm md` validates a file without data
TRAINING = ["mace_ethanol", "painn_ethanol", "quickstart", "schnet_copper", "schnet_ethanol"]


def kind(path: Path) -> str:
    if path.stem.startswith("generate"):
        return "generate"
    return "md" if path.stem.startswith("md_") else "train"


def schema_of(path: Path) -> dict:
    return {"generate": GENERATE_SCHEMA, "md": MD_ONLY, "train": JOB_SCHEMA}[kind(path)]


def test_every_config_is_covered():
    assert sorted(p.stem for p in CONFIGS if kind(p) == "train") == TRAINING
    assert sorted(p.stem for p in CONFIGS if kind(p) != "train") == ["generate", "generate_moses", "generate_moses_stage2",
                                                                "generate_moses_stage3", "md_ethanol", "md_lj"]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_validates(path, monkeypatch):
    raw = load_yaml(path)
    config = load_config(path, schema=schema_of(path))
    assert set(raw) <= set(config)  # no section was dropped
    assert config["run"]["output"] == f"runs/{path.stem}"  # the comments name runs/<config name>
    monkeypatch.chdir(ROOT)  # paths in the configs are relative to the repository root
    if kind(path) == "train":
        from mindsponge_mm.data import AtomsDataset
        from mindsponge_mm.models import build

        ds = AtomsDataset.open(config["data"]["path"])
        model_hp = {k: v for k, v in config["model"].items() if k != "name"}
        model_hp.setdefault("cutoff", config["data"]["cutoff"])
        model = build(config["model"]["name"], elements=ds.elements, **model_hp)  # the shipped size builds
        assert model.cutoff == config["data"]["cutoff"]
        counts = [c for c in config["data"]["split"] if c is not None]
        assert sum(counts) <= len(ds)  # the split fits the dataset
        if config["training"]["loss"]["stress_weight"] > 0:
            assert "stress" in ds.properties
        for change in config["training"]["loss"]["schedule"]:
            assert 1 <= change["epoch"] <= config["training"]["epochs"]
    if path.stem == "generate_moses_stage2":  # continues the first stage, on molecules it did not use
        first = load_config(ROOT / "configs" / "generate_moses.yaml", schema=GENERATE_SCHEMA)
        assert config["train"]["init_from"] == f"{first['run']['output']}/model.safetensors"
        assert config["corpus"]["skip"] == first["corpus"]["limit"]
    if path.stem == "generate_moses_stage3":  # continues the second stage, on molecules neither stage used
        second = load_config(ROOT / "configs" / "generate_moses_stage2.yaml", schema=GENERATE_SCHEMA)
        assert config["train"]["init_from"] == f"{second['run']['output']}/model.safetensors"
        assert config["corpus"]["skip"] == second["corpus"]["skip"] + second["corpus"]["limit"]
    if kind(path) == "md":
        from mindsponge_mm.md.job import load_potential, load_system

        atoms = load_system(config["md"])
        assert len(atoms) > 0
        potential = config["md"]["potential"]
        if isinstance(potential, dict):
            assert load_potential(potential).cutoff == potential["cutoff"]
        else:  # a checkpoint written by the quick start, which must be run first
            quickstart = load_config(ROOT / "configs" / "quickstart.yaml", schema=JOB_SCHEMA)
            assert potential == f"{quickstart['run']['output']}/checkpoints/best.safetensors"


def rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


# One epoch of one batch, a tiny validation and test split, one interaction or layer.
SHORT = {
    "mace_ethanol": ["data.split=[10,2,2]", "model.n_layers=1", "model.l_max=1", "model.correlation=2"],
    "painn_ethanol": ["data.split=[10,2,2]", "model.n_interactions=1"],
    "schnet_copper": ["data.split=[8,2,2]", "model.n_interactions=1"],
}


def test_schnet_ethanol_trains_like_painn_ethanol():
    schnet, painn = (load_config(ROOT / "configs" / f"{name}_ethanol.yaml", schema=JOB_SCHEMA) for name in ("schnet", "painn"))
    for section in ("data", "training", "evaluate"):
        assert schnet[section] == painn[section], section


@pytest.mark.parametrize("name", sorted(SHORT))
def test_training_config_runs_one_short_epoch(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out = tmp_path / name
    rc = main(["train", str(ROOT / "configs" / f"{name}.yaml"), f"run.output={out}", "training.epochs=1",
               *SHORT[name]])
    assert rc == 0, capsys.readouterr().err
    history = rows(out / "metrics.csv")
    assert len(history) == 1 and np.isfinite(float(history[0]["train_loss"])), history
    assert (out / "checkpoints" / "best.safetensors").exists()


@pytest.mark.slow
def test_generate_config_trains_one_epoch(tmp_path, capsys):
    """One epoch on 40 molecules, in one padded length (one compiled training step instead of three)."""
    out = tmp_path / "generate"
    rc = main(["generate", "train", str(ROOT / "configs" / "generate.yaml"), f"run.output={out}",
               "corpus.limit=40", "corpus.held_out=2", "train.epochs=1", "train.eval_every=1", "train.n_eval=1",
               "model.buckets=[128]"])
    assert rc == 0, capsys.readouterr().err
    assert len(rows(out / "metrics.csv")) == 1 and (out / "model.safetensors").exists()


def test_md_lj_config_runs_one_block(tmp_path, monkeypatch, capsys):
    from mindsponge_mm.md.h5md import read_h5md

    monkeypatch.chdir(ROOT)  # md.system is relative to the repository root
    out = tmp_path / "md_lj"
    block = load_config(ROOT / "configs" / "md_lj.yaml", schema=MD_ONLY)["md"]["block"]
    rc = main(["md", str(ROOT / "configs" / "md_lj.yaml"), f"run.output={out}", f"md.steps={block}"])
    assert rc == 0, capsys.readouterr().err
    data = read_h5md(out / "trajectory.h5")
    assert list(data["groups"]["all"]["step"]) == [0, block]
