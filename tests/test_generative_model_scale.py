"""Generative model at scale: the MOSES corpus, SELFIES tokens, exact resume of ``generate train`` (in
process and through the CLI), data parallelism under msrun, and one-line errors for bad input."""
import gzip
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml

from mindsponge_mm.config import validate
from mindsponge_mm.errors import ConfigError, DataError, UserError
from mindsponge_mm.generative import corpus as corpus_mod
from mindsponge_mm.generative.corpus import load_corpus
from mindsponge_mm.generative.grammar import SelfiesMask
from mindsponge_mm.generative.tokenizer import BOS_ID, EOS_ID, Tokenizer, build_tokenizer

MOLS = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1", "O=C(O)CCl", "NCCc1ccc(O)cc1",
        "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "C1CCNCC1", "CCN(CC)CC", "OCC(O)CO", "CC(C)O", "c1ccncc1"]


# ---------------------------------------------------------------- MOSES
def fake_molsets(root, rows):
    """A ``moses`` package whose code fails on import: only its data files may be read."""
    data = root / "moses" / "dataset" / "data"
    data.mkdir(parents=True)
    (root / "moses" / "__init__.py").write_text("raise ImportError('the moses code must not be imported')\n")
    for split, smiles in rows.items():
        with gzip.open(data / f"{split}.csv.gz", "wt") as f:
            f.write("SMILES\n" + "".join(s + "\n" for s in smiles))


def test_moses_corpus_reads_the_data_files_without_importing_moses(tmp_path, monkeypatch):
    fake_molsets(tmp_path, {"train": ["CCO", "CCN", "CCO", "c1ccccc1"], "test": ["CCC"], "test_scaffolds": ["C1CC1"]})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_corpus("moses") == ["CCO", "CCN", "c1ccccc1"]  # de-duplicated, no RDKit pass
    assert load_corpus("moses:train", limit=2) == ["CCO", "CCN"]
    assert load_corpus("moses:train", skip=1, limit=1) == ["CCN"]  # a later training stage's molecules
    with pytest.raises(DataError, match="after the first 3 .corpus.skip."):
        load_corpus("moses", skip=3)
    assert load_corpus("moses:test") == ["CCC"] and load_corpus("moses:test_scaffolds") == ["C1CC1"]
    assert "moses" not in sys.modules
    with pytest.raises(DataError, match="moses:test_scaffolds"):
        load_corpus("moses:valid")


def test_moses_without_molsets_names_the_install_command(monkeypatch):
    monkeypatch.setattr(corpus_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps molsets") as err:
        load_corpus("moses")
    assert "\n" not in str(err.value)


@pytest.mark.skipif(importlib.util.find_spec("moses") is None, reason="molsets is not installed")
def test_real_moses_test_split():
    smiles = corpus_mod.read_moses("test")
    assert len(smiles) == 176074 and smiles[0] == "CC1C2CCC(C2)C1CN(CCO)C(=O)c1ccc(Cl)cc1"


# ---------------------------------------------------------------- SELFIES
def test_selfies_tokens_decode_to_valid_molecules_and_serialise():
    pytest.importorskip("selfies")
    from rdkit import Chem

    tok = build_tokenizer(MOLS, "selfies", max_length=48)
    assert tok.representation == "selfies" and "[C]" in tok.tokens and "[Ring1]" in tok.tokens
    for s in MOLS:  # SMILES in, SMILES out: the same molecule
        ids = tok.encode(s)
        assert ids[0] == BOS_ID and ids[-1] == EOS_ID
        assert Chem.CanonSmiles(tok.decode(ids)) == Chem.CanonSmiles(s)
    mask = SelfiesMask(tok, 200)
    rng = np.random.default_rng(0)
    for k in range(200):  # any token sequence with an atom symbol is a valid molecule; the mask ensures one
        ids = rng.integers(4, len(tok), rng.integers(1, 30))
        text = tok.decode(ids)
        if mask.is_atom[ids].any():
            assert text and Chem.MolFromSmiles(text) is not None, text
        else:
            assert text == ""
    first = mask.mask()  # only atoms first: no EOS, branch or ring symbol
    assert not first[:, EOS_ID].any() and not first[:, tok.index["[Ring1]"]].any() and first[:, tok.index["[C]"]].all()
    mask.update(np.full(200, tok.index["[C]"]), np.arange(200) < 3)
    assert mask.mask()[:, EOS_ID].tolist() == [True] * 3 + [False] * 197
    assert mask.mask()[:3, tok.index["[Ring1]"]].all()
    again = Tokenizer.from_json(tok.to_json())
    assert type(again) is type(tok) and again.tokens == tok.tokens
    assert Tokenizer.from_json(Tokenizer.build(MOLS).to_json()).representation == "smiles"
    with pytest.raises(UserError, match="element Se"):
        tok.check("CC[Se]C")


def test_an_untrained_selfies_model_decodes_only_valid_molecules(tmp_path):
    pytest.importorskip("selfies")
    from rdkit import Chem

    from mindsponge_mm.generative.latent import MolMIM

    tok = build_tokenizer(MOLS, "selfies", max_length=16)
    mim = MolMIM.create(tok, buckets=(16,), d_model=8, n_heads=2, ff_dim=8, n_latents=1, latent_dim=4,
                        encoder_layers=0, latent_layers=0, decoder_layers=1)
    codes = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32) * 3
    for text in mim.decode(codes):
        assert text and Chem.MolFromSmiles(text) is not None, text
    again = MolMIM.load(mim.save(tmp_path / "m.safetensors"))
    assert again.representation == "selfies" and again.tokenizer.tokens == tok.tokens


def test_selfies_without_the_package_is_one_line_with_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "selfies", None)
    with pytest.raises(UserError, match="pip install selfies") as err:
        build_tokenizer(MOLS, "selfies")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- training: resume and data parallel
def config(tmp_path, output="run", **train):
    smi = tmp_path / "mols.smi"
    smi.write_text("".join(s + "\n" for s in MOLS))
    return {
        "run": {"seed": 0, "output": str(tmp_path / output)},
        "corpus": {"path": str(smi), "held_out": 0},
        "model": {"d_model": 16, "n_heads": 2, "ff_dim": 32, "n_latents": 1, "latent_dim": 4, "encoder_layers": 1,
                  "latent_layers": 0, "decoder_layers": 1, "max_length": 32, "buckets": [32]},
        "train": {"epochs": 2, "batch_size": 4, "warmup": 2, "token_dropout": 0.2, "checkpoint_every": 2, **train},
    }


def losses(run):
    from mindsponge_mm.generative.train import read_steps

    return [r["loss"] for r in read_steps(run / "steps.csv")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 2-epoch run (3 steps per epoch, a checkpoint every 2 steps)."""
    from mindsponge_mm.generative import job

    tmp = tmp_path_factory.mktemp("reference")
    cfg = validate(config(tmp), job.GENERATE_SCHEMA)
    out = job.train(cfg, log=lambda _: None)
    return tmp / "run", out, cfg


def stop_at(prefix):
    def log(line):
        if line.startswith(prefix):
            raise KeyboardInterrupt

    return log


def test_train_two_epochs_equals_one_epoch_resume_and_one_more(reference, tmp_path, capsys):
    """Stopped after epoch 1, resumed and stopped again inside epoch 2 (after the step-4 checkpoint), then
    resumed through the CLI: the step losses and the final weights equal the uninterrupted run's."""
    from safetensors.numpy import load_file

    from mindsponge_mm import cli
    from mindsponge_mm.generative import job

    ref_run, ref_out, _ = reference
    cfg = validate(config(tmp_path), job.GENERATE_SCHEMA)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        job.train(cfg, log=stop_at("epoch   1"))
    assert len(losses(run)) == 3
    with pytest.raises(UserError, match="--resume"):  # a second start over the run is refused
        job.train(cfg, log=lambda _: None)
    with pytest.raises(KeyboardInterrupt):
        job.train(cfg, resume=run, log=stop_at("checkpoint step 4"))
    assert len(losses(run)) == 4
    assert cli.main(["generate", "train", "--resume", str(run)]) == 0
    assert "resumed   after epoch 1, step 4 (1 steps into epoch 2)" in capsys.readouterr().out
    np.testing.assert_allclose(losses(run), losses(ref_run), rtol=1e-6)
    a, b = load_file(str(run / "model.safetensors")), load_file(str(ref_run / "model.safetensors"))
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7, err_msg=name)
    rows = [r for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert [r.split(",")[:3] for r in rows] == [r.split(",")[:3] for r in
                                                (ref_run / "metrics.csv").read_text().splitlines()[1:]]
    assert not list(run.rglob(".*.tmp"))


def test_an_interrupt_between_checkpoints_keeps_every_finished_step(reference, tmp_path, monkeypatch):
    """Ctrl-C (SIGINT, as the command line handles it) in the middle of epoch 2, with no periodic
    checkpoints: the step that was running finishes, a checkpoint holds it, and the resumed run ends
    where the uninterrupted one does."""
    from safetensors.numpy import load_file

    from mindsponge_mm import runtime
    from mindsponge_mm.generative import job
    from mindsponge_mm.generative import train as generative_train

    ref_run = reference[0]
    cfg = validate(config(tmp_path, checkpoint_every=0), job.GENERATE_SCHEMA)
    run = tmp_path / "run"
    original = generative_train.Trainer._step

    def step_then_signal(self, *args):
        loss = original(self, *args)
        if self.state["step"] == 5:
            os.kill(os.getpid(), signal.SIGINT)  # arrives while the step's bookkeeping is deferred
        return loss

    monkeypatch.setattr(generative_train.Trainer, "_step", step_then_signal)
    lines = []
    previous = runtime.install_interrupt_handlers()
    try:
        with pytest.raises(KeyboardInterrupt):
            job.train(cfg, log=lines.append)
    finally:
        runtime.restore_interrupt_handlers(previous)
    assert any(line.startswith("interrupted at step 5 (epoch 2, 2/3)") for line in lines), lines
    assert len(losses(run)) == 5
    monkeypatch.setattr(generative_train.Trainer, "_step", original)
    job.train(cfg, resume=run, log=lambda _: None)
    np.testing.assert_allclose(losses(run), losses(ref_run), rtol=1e-6)
    a, b = load_file(str(run / "model.safetensors")), load_file(str(ref_run / "model.safetensors"))
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7, err_msg=name)


def test_fine_tuning_starts_from_the_checkpoint_and_refuses_a_contradicting_model(reference, tmp_path):
    """train.init_from: the run starts from the checkpoint's weights (at a negligible learning rate it
    ends on them), takes its tokenizer, and a model key that contradicts the checkpoint is one line."""
    from safetensors.numpy import load_file

    from mindsponge_mm.generative import job

    ref_run = reference[0]
    start = str(ref_run / "model.safetensors")
    from mindsponge_mm.generative.latent import MolMIM

    first = MolMIM.load(start).trained_on  # the reference run's corpus file
    raw = config(tmp_path, output="ft", epochs=1, lr=1e-12, init_from=start)
    raw["corpus"]["path"] = first  # the same corpus again: trained_on keeps one name (novelty stays measurable)
    cfg = validate(raw, job.GENERATE_SCHEMA)
    lines = []
    job.train(cfg, log=lines.append)
    assert any(line.startswith(f"init      {start}: fine-tuning") for line in lines), lines
    a, b = load_file(str(tmp_path / "ft" / "model.safetensors")), load_file(start)
    for name in b:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7, err_msg=name)
    assert first and MolMIM.load(tmp_path / "ft" / "model.safetensors").trained_on == first
    bad = config(tmp_path, output="bad", init_from=start)
    bad["model"]["d_model"] = 32
    with pytest.raises(ConfigError, match=r"^model.d_model: 32 contradicts the checkpoint of train.init_from"):
        job.train(validate(bad, job.GENERATE_SCHEMA), log=lambda _: None)
    assert not (tmp_path / "bad").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("msrun") is None or shutil.which("mindsponge-mm") is None,
                    reason="msrun or mindsponge-mm is not on PATH")
def test_two_msrun_workers_reproduce_the_single_process_loss_history(reference, tmp_path):
    ref_run = reference[0]
    cfg = tmp_path / "cfg.yaml"
    raw = config(tmp_path, "parallel", distributed=True)
    cfg.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "GLOG_v": "3"}
    out = subprocess.run(["msrun", "--worker_num=2", "--local_worker_num=2", f"--master_port={free_port()}",
                          f"--log_dir={tmp_path / 'logs'}", "--join=True", shutil.which("mindsponge-mm"),
                          "generate", "train", str(cfg)], capture_output=True, text=True, env=env, timeout=300)
    log0 = tmp_path / "logs" / "worker_0.log"
    log0 = log0.read_text() if log0.exists() else ""
    assert out.returncode == 0, out.stdout[-2000:] + log0[-2000:]
    assert "parallel  2 data-parallel ranks, 2 molecules per rank" in log0
    parallel, single = losses(tmp_path / "parallel"), losses(ref_run)
    assert len(parallel) == len(single) == 6
    # the ranks' gradient sum rounds differently from one batch's: measured at most 1 ulp apart, bound 4
    ulps = [abs(a - b) / np.spacing(np.float32(b)) for a, b in zip(parallel, single)]
    assert max(ulps) <= 4, ulps


# ---------------------------------------------------------------- bad input through the CLI
def run_cli(capsys, *args):
    from mindsponge_mm import cli

    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def test_bad_input_is_one_line_exit_2_and_writes_nothing(reference, tmp_path, capsys, monkeypatch):
    ref_run, _, cfg = reference
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    ckpt = ref_run / "model.safetensors"
    sample = ["generate", "sample", cfg_file, f"run.output={out}", f"sample.checkpoint={ckpt}", "--seed-smiles"]
    cases = [
        (sample + ["C1CC"], "invalid seed SMILES 'C1CC'"),
        (sample + ["C" * 40], "has 40 SMILES tokens; this model takes at most 30"),
        (sample + ["CC[Se]C"], "has element Se, which this model's vocabulary lacks"),
        (["generate", "sample", cfg_file, f"run.output={out}", f"sample.checkpoint={tmp_path / 'no.safetensors'}",
          "--seed-smiles", "CCO"], "generative checkpoint not found"),
        (["generate", "optimize", cfg_file, f"run.output={out}", f"optimize.checkpoint={ckpt}",
          "optimize.seeds=[CCO]", "optimize.similarity_min=1.5"], "similarity_min"),
        (["generate", "optimize", cfg_file, f"run.output={out}", f"optimize.checkpoint={ckpt}",
          "optimize.seeds=[CCO]", "optimize.weights={qedd: 1.0}"], "qedd"),
        (["generate", "optimize", cfg_file, f"run.output={out}", f"optimize.checkpoint={ckpt}",
          "optimize.seeds=[CCO, C1CC]"], "optimize.seeds[1]"),
    ]
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    cases.append((["generate", "sample", cfg_file, f"run.output={out}", f"sample.checkpoint={corrupt}",
                   "--seed-smiles", "CCO"], "not a readable checkpoint"))
    for args, message in cases:
        code, err = run_cli(capsys, *args)
        assert code == 2 and err.startswith("error: ") and message in err, (args, err)
        assert err.count("\n") == 1 and "Traceback" not in err
        assert not out.exists(), args  # nothing written
    monkeypatch.setitem(sys.modules, "selfies", None)
    code, err = run_cli(capsys, "generate", "train", cfg_file, f"run.output={out}", "model.representation=selfies")
    assert code == 2 and "pip install selfies" in err and err.count("\n") == 1
    assert not out.exists()
    code, err = run_cli(capsys, "generate", "train", "--resume", tmp_path / "nowhere")
    assert code == 2 and "not a generate run directory" in err
