"""The generative model that ships inside the package: present, small, self-describing, usable with
no config and no training, and still as good as the README says on a fixed slice of MOSES.

The quality checks are loose guards of the README's tables (measured with benchmarks/generative.py
on 200-1,000 molecules); here 50 fixed molecules of MOSES ``test_scaffolds`` (scaffolds absent from
training, tests/fixtures/generative/moses_test_scaffolds_50.smi) keep a broken or swapped model from
passing. Nothing is trained.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mindsponge_mm.generative.job import pretrained_path

SEEDS_FILE = Path(__file__).parent / "fixtures" / "generative" / "moses_test_scaffolds_50.smi"
# Loose floors under what the shipped model measured on these 50 molecules (README, generative model):
# greedy decoding (and beam 5 re-ranked), the seed's mean code, and 2 draws at radius 1.0 per seed.
MIN_VALIDITY_AROUND_SEEDS = 0.95
MIN_UNIQUENESS_AROUND_SEEDS = 0.9  # the two draws of a seed differ (README: 100 % with 10 draws)
MIN_RECONSTRUCTION_EXACT = 0.8  # README: 95.7 % of 1,000 MOSES test molecules
MIN_RERANKED_EXACT = 0.9  # beam 5, the beam nearest the code: README 99.0 % of 1,000


def seeds() -> list[str]:
    return [line for line in SEEDS_FILE.read_text().splitlines() if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def mim():
    from mindsponge_mm.generative.latent import MolMIM

    return MolMIM.load(pretrained_path())


def test_the_shipped_checkpoint_is_small_safetensors_with_its_tokenizer(mim):
    from safetensors import safe_open

    path = pretrained_path()
    assert path.stat().st_size <= 50 * 2**20
    with safe_open(str(path), "np") as f:
        meta = json.loads(f.metadata()["mindsponge_mm"])
    assert meta["model"] == "molmim" and meta["trained_on"] == "moses:train"
    assert meta["hyperparameters"] == mim.model.hyperparameters
    assert len(mim.tokenizer) > 20 and {"C", "N", "O", "S", "F", "Cl", "Br"} <= mim.tokenizer.elements()
    assert all(len(mim.tokenizer.split(s)) + 2 <= mim.tokenizer.max_length for s in seeds())


def test_incremental_decoding_equals_the_teacher_forced_decoder(mim):
    """decode_step with its key/value cache gives the teacher-forced decoder's log-probabilities at every
    position (float32 rounding only) while its cache grows block by block, and a row reordering (beam search)
    moves each row's cache with it."""
    import mindspore as ms

    from mindsponge_mm.generative.model import step_masks
    from mindsponge_mm.generative.tokenizer import PAD_ID

    smiles = seeds()[:4]
    ids = [mim.tokenizer.encode(s) for s in smiles]
    length = mim.bucket(max(len(x) for x in ids))
    buf = np.full((len(ids), length), PAD_ID, np.int32)
    for r, x in enumerate(ids):
        buf[r, : len(x)] = x
    codes = mim.encode(smiles)
    logits = mim.model.decode(ms.Tensor(codes), ms.Tensor(buf), mim.causal(length)).asnumpy()
    reference = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    cache = mim.model.empty_cache(len(ids), 4)  # grown in blocks of 4 positions, as decoding grows it
    order = np.arange(len(ids), dtype=np.int32)
    flip = order[::-1].copy()
    for t in range(max(len(x) for x in ids) - 1):
        # from step 3 on, the rows travel reversed: the cache is reordered by `order` at each step
        rows = flip if t >= 3 else order
        step_order = flip if t == 3 else order
        cache = mim.model.extend_cache(cache, min(length, 4 * (t // 4 + 1)))
        logp, cache = mim.model.decode_step(mim.model.memory(ms.Tensor(codes[rows])), ms.Tensor(buf[rows, t: t + 1]),
                                            ms.Tensor(np.array([t], np.int32)), ms.mutable(cache), ms.Tensor(step_order),
                                            *step_masks(t, cache[0].shape[2]))
        np.testing.assert_allclose(logp.asnumpy(), reference[rows, t], atol=2e-4)


@pytest.mark.slow
def test_reconstruction_and_sampling_around_fixed_seeds(mim):
    from mindsponge_mm.generative.metrics import reconstruction, sampling_metrics

    smiles = seeds()
    rec = reconstruction(smiles, mim.reconstruct(smiles))
    assert rec["exact"] >= MIN_RECONSTRUCTION_EXACT, rec
    reranked = reconstruction(smiles, mim.reconstruct(smiles, beam_width=5, rerank=True))
    assert reranked["exact"] >= max(MIN_RERANKED_EXACT, rec["exact"]), reranked
    codes = mim.encode(smiles)
    rng = np.random.default_rng(0)
    draws = np.repeat(codes, 2, axis=0) + 1.0 * rng.standard_normal((len(smiles) * 2, mim.code_size))
    decoded = mim.decode(draws.astype(np.float32), 1)
    per_seed = [sampling_metrics(decoded[2 * k:2 * (k + 1)], seed) for k, seed in enumerate(smiles)]
    validity = float(np.mean([m["validity"] for m in per_seed]))
    uniqueness = float(np.mean([m["uniqueness"] for m in per_seed if m["validity"] > 0]))
    assert validity >= MIN_VALIDITY_AROUND_SEEDS, validity
    assert uniqueness >= MIN_UNIQUENESS_AROUND_SEEDS, uniqueness


def test_generate_sample_needs_no_config_and_no_training(tmp_path, monkeypatch, capsys):
    """The README's first generative command, in an empty folder: the shipped model is used."""
    from mindsponge_mm import cli

    monkeypatch.chdir(tmp_path)
    code = cli.main(["generate", "sample", "--seed-smiles", "CC(=O)Nc1ccc(O)cc1", "sample.n_samples=20",
                     "sample.beam_width=1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "(shipped, trained on MOSES)" in out
    with open(tmp_path / "runs" / "generate" / "samples.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 3 and all(r["seed"] == "CC(=O)Nc1ccc(O)cc1" for r in rows)
    assert (tmp_path / "runs" / "generate" / "sample_config.yaml").exists()
    assert not (tmp_path / "runs" / "generate" / "config.yaml").exists()


def test_without_the_shipped_file_the_default_checkpoint_is_a_one_line_error(tmp_path, monkeypatch):
    from mindsponge_mm.config import validate
    from mindsponge_mm.errors import UserError
    from mindsponge_mm.generative import job

    monkeypatch.setattr(job, "pretrained_path", lambda: tmp_path / "missing.safetensors")
    cfg = validate({"run": {"output": str(tmp_path / "run")}}, job.GENERATE_SCHEMA)
    with pytest.raises(UserError, match="ships no pretrained generative model") as err:
        job.checkpoint_path(cfg, "sample")
    assert "\n" not in str(err.value)
    cfg["train"]["init_from"] = "pretrained"
    with pytest.raises(UserError, match=r"^train.init_from: this installation ships no pretrained"):
        job.train(cfg, log=lambda _: None)
    assert not (tmp_path / "run").exists()
