"""Jobs behind ``mindsponge-mm generate train|sample|optimize`` (config schema: :data:`GENERATE_SCHEMA`).

Every job writes into ``run.output``: the resolved ``config.yaml`` and its outputs, atomically.
Inputs (seed SMILES, checkpoints, the corpus) are checked before anything is written, so a bad
input is a one-line UserError and leaves no output behind.

* ``train``    -> ``model.safetensors``, ``checkpoints/last.safetensors`` (resumes exactly: ``generate
                  train --resume RUN``), ``metrics.csv``, ``steps.csv``, ``learning_curve.png``,
                  ``held_out.smi``, ``reconstruction.json`` (held-out reconstruction after training)
* ``sample``   -> ``samples.csv`` (seed, smiles, qed, logp, similarity), ``samples.png``, ``sample_config.yaml``
* ``optimize`` -> ``optimized.csv`` (every distinct molecule CMA-ES decoded, with scores), ``optimized.png``,
                  ``optimize_config.yaml``

``sample`` and ``optimize`` use ``{section}.checkpoint``; without one, the model of a training run
in ``run.output``, else the model that ships with the package (``pretrained``).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import yaml

from ..config import RUN_SCHEMA, Field
from ..errors import ConfigError, UserError
from ..io_utils import atomic_path, run_directory, write_text_atomic
from .corpus import DEFAULT_CORPUS
from .tokenizer import REPRESENTATIONS

GENERATE_SCHEMA = {
    "run": {**RUN_SCHEMA, "output": Field(str, "runs/generate", doc="run directory")},
    "corpus": {
        "path": Field(str, DEFAULT_CORPUS, doc="'rdkit:REL' (under RDKit's data dir), a .smi/.csv(.gz) file, or "
                                               "'moses' / 'moses:test' / 'moses:test_scaffolds' (pip install "
                                               "--no-deps molsets)"),
        "column": Field(str, "smiles", doc="SMILES column of a CSV corpus"),
        "largest_fragment": Field(bool, True, doc="keep only the largest fragment of salts and mixtures"),
        "standardize": Field(bool, None, nullable=True,
                             doc="canonicalise every SMILES with RDKit (default: yes for files, no for MOSES, "
                                 "which is canonical already)"),
        "skip": Field(int, 0, minimum=0, doc="leave out the first this many molecules (e.g. the ones an earlier "
                                             "training stage used)"),
        "limit": Field(int, None, minimum=1, nullable=True, doc="use at most this many molecules (after skip)"),
        "held_out": Field(int, 200, minimum=0, doc="molecules held out for reconstruction metrics"),
    },
    "model": {
        "representation": Field(str, "smiles", choices=REPRESENTATIONS,
                                doc="tokens: SMILES (with a syntax mask when decoding) or SELFIES (pip install "
                                    "selfies; every decoded string is a valid molecule)"),
        "d_model": Field(int, 64, minimum=8), "n_heads": Field(int, 4, minimum=1), "ff_dim": Field(int, 128, minimum=8),
        "n_latents": Field(int, 2, minimum=1, doc="latent queries K of the Perceiver encoder"),
        "latent_dim": Field(int, 32, minimum=1, doc="width z of each latent; the code has K*z numbers"),
        "encoder_layers": Field(int, 1, minimum=0), "latent_layers": Field(int, 1, minimum=0),
        "decoder_layers": Field(int, 2, minimum=1),
        "max_length": Field(int, 128, minimum=8, maximum=512, doc="tokens per SMILES with BOS and EOS"),
        "buckets": Field(list, [32, 64, 128], doc="padded lengths; one compiled training step per bucket"),
    },
    "train": {
        "epochs": Field(int, 60, minimum=1), "batch_size": Field(int, 64, minimum=1),
        "lr": Field(float, 2e-3, exclusive_minimum=0.0), "warmup": Field(int, 200, minimum=0),
        "noise_std": Field(float, 0.1, minimum=0.0, doc="posterior width of the MIM objective"),
        "prior_weight": Field(float, 0.1, minimum=0.0, doc="weight of -log P(z)"),
        "clip": Field(float, 1.0, exclusive_minimum=0.0, doc="global gradient-norm clip"),
        "token_dropout": Field(float, 0.1, minimum=0.0, maximum=0.9, doc="decoder inputs replaced by UNK (word dropout)"),
        "eval_every": Field(int, 10, minimum=1, doc="epochs between validation reconstructions"),
        "n_eval": Field(int, 100, minimum=0, doc="held-out molecules reconstructed for validation"),
        "checkpoint_every": Field(int, 0, minimum=0,
                                  doc="also write the resumable checkpoint every this many steps (0: epoch ends)"),
        "distributed": Field(bool, False, doc="data parallel over the ranks that msrun started (mccl on CPU)"),
        "init_from": Field(str, None, nullable=True,
                           doc="fine-tune: start from this checkpoint ('pretrained': the shipped model); its "
                               "tokenizer, representation and hyperparameters are used"),
    },
    "sample": {
        "checkpoint": Field(str, None, nullable=True,
                            doc="'pretrained' (the shipped model) or a path; default: run.output/model.safetensors "
                                "when it exists, else the shipped model"),
        "n_samples": Field(int, 100, minimum=1, doc="latent draws per seed"),
        "radius": Field(float, 0.25, minimum=0.0,
                        doc="std of the Gaussian noise added to the seed's code (shipped model: at 0.25 the "
                            "samples have ECFP4 similarity 0.35 to the seed on average, at 0.5 only 0.10)"),
        "beam_width": Field(int, 5, minimum=1, doc="beam search width (1 = greedy); the best RDKit-valid beam wins"),
        "grid": Field(int, 24, minimum=1, doc="molecules in the PNG"),
    },
    "optimize": {
        "checkpoint": Field(str, None, nullable=True,
                            doc="'pretrained' (the shipped model) or a path; default: run.output/model.safetensors "
                                "when it exists, else the shipped model"),
        "seeds": Field(list, [], doc="seed SMILES, one CMA-ES run each"),
        "weights": Field(dict, {"qed": 1.0}, doc="score weights: qed, logp, similarity, physics"),
        "similarity_min": Field(float, 0.4, minimum=0.0, maximum=1.0, doc="ECFP4 Tanimoto constraint to the seed"),
        "penalty": Field(float, 10.0, minimum=0.0, doc="score penalty per unit of similarity below the minimum"),
        "iterations": Field(int, 25, minimum=1),
        "popsize": Field(int, 64, minimum=2, doc="codes decoded per CMA-ES iteration (each gives beam_width "
                                                 "molecules with all_beams; DEVELOPING.md)"),
        "sigma": Field(float, 0.25, exclusive_minimum=0.0, doc="initial CMA-ES step in latent space"),
        "target": Field(float, None, nullable=True,
                        doc="stop a seed's search once its best score reaches this (e.g. 0.9 for QED)"),
        "beam_width": Field(int, 8, minimum=1, doc="beam search width per code (1 = greedy)"),
        "all_beams": Field(bool, True, doc="score every beam of each code: each code proposes beam_width "
                                           "molecules and takes its best beam's score (false: the most "
                                           "probable valid beam only)"),
        "patience": Field(int, 4, minimum=1, nullable=True,
                          doc="restart CMA-ES at the code of the best molecule so far after this many iterations "
                              "without a better score (null: only when CMA-ES stops by itself)"),
        "physics": {
            "potential": Field(str, None, nullable=True,
                               doc="'xtb' (GFN2-xTB via tblite; for drug-like molecules), 'gfn1-xtb', 'emt', "
                                   "or a potential checkpoint"),
            "metric": Field(str, "relaxation_per_heavy_atom",
                            choices=("strain", "relaxation_per_atom", "relaxation_per_heavy_atom", "energy_per_atom")),
            "optimizer": Field(str, "lbfgs", choices=("fire", "lbfgs"), doc="relaxation of each conformer"),
            "n_conformers": Field(int, 3, minimum=1), "fmax": Field(float, 0.05, exclusive_minimum=0.0),
            "steps": Field(int, 200, minimum=1),
        },
    },
}


def _device(config: dict) -> None:
    import mindspore as ms

    device = config["run"]["device"]
    if device != "auto":
        ms.set_device({"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}[device])
    ms.set_seed(config["run"]["seed"])


def _setup(config: dict, job: str = "train") -> Path:
    """The run directory with the resolved config (call once every input has been checked):
    ``config.yaml`` for ``train``, ``{job}_config.yaml`` for the others, so that sampling from a
    training run's directory keeps the config the run was trained with."""
    out = Path(config["run"]["output"])
    out.mkdir(parents=True, exist_ok=True)
    name = "config.yaml" if job == "train" else f"{job}_config.yaml"
    write_text_atomic(out / name, yaml.safe_dump(config, sort_keys=False))
    return out


def _write_csv(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, text.getvalue())


def _write_grid(path: Path, smiles: Sequence[str], legends: Sequence[str]) -> None:
    from rdkit import Chem
    from rdkit.Chem import Draw

    mols = [Chem.MolFromSmiles(s) for s in smiles]
    keep = [(m, lg) for m, lg in zip(mols, legends) if m is not None]
    if not keep:
        return
    image = Draw.MolsToGridImage([m for m, _ in keep], molsPerRow=4, subImgSize=(250, 200),
                                 legends=[lg for _, lg in keep])
    data = image.data if hasattr(image, "data") else None
    with atomic_path(path) as tmp:
        if data is not None:
            tmp.write_bytes(data)
        else:
            image.save(str(tmp), format="PNG")


PRETRAINED = "pretrained"


def pretrained_path() -> Path:
    """The MolMIM checkpoint that ships inside the package (trained on MOSES; README: generative model)."""
    return Path(__file__).resolve().parents[1] / "data" / "pretrained" / "molmim_moses.safetensors"


def _shipped(what: str) -> Path:
    """The shipped model's path; a one-line UserError naming ``what`` asked for it when it is missing."""
    path = pretrained_path()
    if not path.exists():
        raise UserError(f"{what}: this installation ships no pretrained generative model ({path} is missing); "
                        f"train one with 'mindsponge-mm generate train' or name a checkpoint")
    return path


def checkpoint_path(config: dict, section: str) -> Path:
    """``{section}.checkpoint``; ``pretrained`` is the shipped model; unset: ``run.output/model.safetensors``
    when a training run is there, else the shipped model."""
    named = config[section]["checkpoint"]
    if named and named != PRETRAINED:
        return Path(named)
    own = Path(config["run"]["output"]) / "model.safetensors"
    if not named and own.exists():
        return own
    return _shipped(f"{section}.checkpoint" if named else f"no {section}.checkpoint and no {own}")


def _checkpoint(config: dict, section: str, log: Callable[[str], None] = print):
    from .latent import MolMIM

    path = checkpoint_path(config, section)
    log(f"model     {path}" + ("  (shipped, trained on MOSES)" if path == pretrained_path() else ""))
    return MolMIM.load(path), path


def split_corpus(config: dict, tokenizer=None):
    """(train, held_out) canonical SMILES that fit the tokenizer, shuffled with run.seed; and the tokenizer
    (built over the corpus in ``model.representation`` unless one is given, e.g. a resumed run's)."""
    from .corpus import load_corpus
    from .tokenizer import tokenizer_class

    c = config["corpus"]
    smiles = load_corpus(c["path"], c["column"], c["largest_fragment"], c["limit"], c["standardize"],
                         c["skip"])
    kind = type(tokenizer) if tokenizer is not None else tokenizer_class(config["model"]["representation"])
    splits = [kind.split(s) for s in smiles]  # one pass (SELFIES translation costs about 0.25 ms a molecule)
    if tokenizer is None:
        tokenizer = kind.from_splits(splits, config["model"]["max_length"])
    smiles = [s for s, tokens in zip(smiles, splits) if tokenizer.fits_tokens(tokens)]
    del splits
    order = np.random.default_rng(config["run"]["seed"]).permutation(len(smiles))
    n_held = min(c["held_out"], len(smiles) // 5)
    held = [smiles[i] for i in order[:n_held]]
    train_set = [smiles[i] for i in order[n_held:]]
    if not train_set:
        raise ConfigError(f"corpus {c['path']}: no molecules left to train on; use a larger corpus")
    return train_set, held, tokenizer


def train(config: dict, resume: str | Path | None = None, log: Callable[[str], None] = print) -> dict:
    """Train the latent model on the corpus; returns {"model", "rows", "reconstruction", "output", "rank"}.

    ``resume``: a run directory whose ``checkpoints/last.safetensors`` the run continues from, exactly.
    ``train.distributed``: join the data-parallel ranks that ``msrun`` started (rank 0 writes).
    """
    from .latent import MolMIM
    from .train import LAST_CHECKPOINT

    _device(config)
    rank, world = 0, 1
    if config["train"]["distributed"]:
        from ..train import distributed

        rank, world = distributed.init()
    if config["train"]["batch_size"] % world:
        raise ConfigError(f"train.batch_size {config['train']['batch_size']} is not a multiple of the {world} "
                          f"data-parallel ranks; choose a batch size that divides evenly")
    out = Path(resume) if resume is not None else Path(config["run"]["output"])
    last = out / LAST_CHECKPOINT
    tokenizer = None
    if resume is not None:
        if not last.exists():
            raise UserError(f"{last}: nothing to resume (no training checkpoint); start the run without --resume")
        tokenizer = MolMIM.load(last).tokenizer  # the vocabulary the run was started with
    elif last.exists():
        raise UserError(f"{out} already holds a training run; resume it with --resume {out} or choose another "
                        f"run.output")
    initial = None
    if resume is None and config["train"]["init_from"]:
        initial = _initial_model(config, log if rank == 0 else (lambda _text: None))
        tokenizer = initial.tokenizer
    if config["model"]["representation"] == "selfies":
        from .tokenizer import require_selfies

        require_selfies()
    with run_directory(out, (LAST_CHECKPOINT, "model.safetensors"), writer=rank == 0):
        return _train_in(config, out, resume is not None, tokenizer, rank, world, log, initial)


def _initial_model(config: dict, log: Callable[[str], None]):
    """The model ``train.init_from`` names, with the config's model section made to agree with it: a key
    that the config sets to a value other than the default and the checkpoint's is a ConfigError."""
    from .latent import MolMIM

    name = config["train"]["init_from"]
    path = _shipped("train.init_from") if name == PRETRAINED else Path(name)
    mim = MolMIM.load(path)
    have = dict(mim.model.hyperparameters, representation=mim.representation,
                max_length=mim.tokenizer.max_length)
    defaults = GENERATE_SCHEMA["model"]
    for key, value in config["model"].items():
        if key in have and value != have[key] and value != defaults[key].default:
            raise ConfigError(f"model.{key}: {value} contradicts the checkpoint of train.init_from ({path}: "
                              f"{have[key]}); remove model.{key} to fine-tune that model")
        if key in have:
            config["model"][key] = have[key]
    log(f"init      {path}: fine-tuning its weights with its {len(mim.tokenizer)} "
        f"{mim.representation.upper()} tokens")
    return mim


def _train_in(config: dict, out: Path, resume: bool, tokenizer, rank: int, world: int, log, initial=None) -> dict:
    from .latent import MolMIM
    from .metrics import reconstruction
    from .train import fit

    quiet = log if rank == 0 else (lambda _text: None)
    train_set, held, tokenizer = split_corpus(config, tokenizer)
    quiet(f"corpus    {config['corpus']['path']}: {len(train_set)} training, {len(held)} held-out molecules, "
          f"{len(tokenizer)} {tokenizer.representation.upper()} tokens")
    if rank == 0 and not resume:
        _setup(config)
        write_text_atomic(out / "held_out.smi", "".join(s + "\n" for s in held))
        write_text_atomic(out / "train.smi", "".join(s + "\n" for s in train_set))
    if world > 1:
        quiet(f"parallel  {world} data-parallel ranks, {config['train']['batch_size'] // world} molecules per rank")
    hp = dict(config["model"])
    buckets = hp.pop("buckets")
    hp.pop("max_length")
    hp.pop("representation")
    mim = MolMIM.create(tokenizer, buckets, **hp)
    corpus = config["corpus"]["path"]
    mim.trained_on = "moses:train" if corpus == "moses" else corpus
    if initial is not None:
        if initial.trained_on != mim.trained_on:  # the same corpus again keeps its one name
            mim.trained_on = f"{initial.trained_on or 'unknown'}, then {mim.trained_on}"
        weights = dict(initial.model.parameters_and_names())
        for name, p in mim.model.parameters_and_names():
            p.copy_(weights[name])
    t = config["train"]
    rows = fit(mim, train_set, held, epochs=t["epochs"], batch_size=t["batch_size"], lr=t["lr"], warmup=t["warmup"],
               noise_std=t["noise_std"], prior_weight=t["prior_weight"], clip=t["clip"],
               token_dropout=t["token_dropout"], eval_every=t["eval_every"], n_eval=t["n_eval"],
               seed=config["run"]["seed"], out_dir=out, checkpoint_every=t["checkpoint_every"], resume=resume,
               rank=rank, world_size=world, log=log)
    rec = {}
    if rank == 0:
        rec = reconstruction(held, mim.reconstruct(held)) if held else {}
        write_text_atomic(out / "reconstruction.json", json.dumps(rec, indent=1))
        if rec:
            quiet("held-out  " + ", ".join(f"{k} {v:.3f}" for k, v in rec.items() if k != "n") + f"  (n={rec['n']})")
        quiet(f"wrote     {out / 'model.safetensors'}")
    return {"model": mim, "rows": rows, "reconstruction": rec, "output": out, "rank": rank}


def _training_set(checkpoint: Path, trained_on: str | None) -> set | None:
    """Canonical SMILES the model was trained on (for novelty): the run's ``train.smi``, MOSES ``train``
    for a model trained on it such as the shipped one (when ``molsets`` is installed), else None
    (novelty is not measured)."""
    path = checkpoint.parent / "train.smi"
    if path.exists():
        return set(path.read_text().split())
    if trained_on == "moses:train":
        from .corpus import load_corpus

        try:
            return set(load_corpus("moses:train"))
        except UserError:
            return None
    return None


def sample(config: dict, seed_smiles: Sequence[str], log: Callable[[str], None] = print) -> dict:
    """Sample ``sample.n_samples`` codes around each seed; write samples.csv / samples.png."""
    from ..interfaces.rdkit import canonical_smiles
    from .metrics import sampling_metrics, tanimoto
    from .scoring import logp, qed

    if not seed_smiles:
        raise UserError("no seed molecules; pass --seed-smiles SMILES [SMILES ...]")
    _device(config)
    mim, checkpoint = _checkpoint(config, "sample", log)
    seeds = [mim.check_smiles(seed) for seed in seed_smiles]
    out = _setup(config, "sample")
    s = config["sample"]
    training = _training_set(checkpoint, mim.trained_on)
    if training is None:
        log("novelty   not measured: the training set of this model is unknown (for the shipped model: "
            "pip install --no-deps molsets)")
    rows, summary = [], {}
    for k, seed_c in enumerate(seeds):
        rng = np.random.default_rng(config["run"]["seed"] + k)
        codes = mim.encode([seed_c]) + s["radius"] * rng.standard_normal((s["n_samples"], mim.code_size))
        raw = mim.decode(codes.astype(np.float32), s["beam_width"])
        summary[seed_c] = sampling_metrics(raw, seed_c, training or ())
        if training is None:
            summary[seed_c] = {k: v for k, v in summary[seed_c].items() if k not in ("novelty", "effective_novelty")}
        log(f"seed {seed_c}: " + ", ".join(f"{key} {v:.2f}" for key, v in summary[seed_c].items() if key != "n"))
        for c in dict.fromkeys(x for x in map(canonical_smiles, raw) if x is not None):
            rows.append({"seed": seed_c, "smiles": c, "qed": round(qed(c), 4), "logp": round(logp(c), 3),
                         "similarity": round(tanimoto(c, seed_c), 4),
                         "novel": "" if training is None else c not in training})
    _write_csv(out / "samples.csv", rows)
    best = sorted((r for r in rows if r["smiles"] != r["seed"]), key=lambda r: -r["similarity"])[: s["grid"]]
    _write_grid(out / "samples.png", [r["smiles"] for r in best], [f"sim {r['similarity']:.2f}" for r in best])
    log(f"wrote     {out / 'samples.csv'} ({len(rows)} molecules), {out / 'samples.png'}")
    return {"rows": rows, "metrics": summary, "output": out}


def optimize(config: dict, log: Callable[[str], None] = print) -> dict:
    """CMA-ES in latent space for every seed in ``optimize.seeds``; write optimized.csv / optimized.png."""
    from .cmaes import optimize_molecule
    from .scoring import Objective, PhysicsScore

    o = config["optimize"]
    if not o["seeds"]:
        raise ConfigError("optimize.seeds is empty; list seed SMILES, e.g. optimize.seeds=[CCO]")
    _device(config)
    mim, _ = _checkpoint(config, "optimize", log)
    seeds = [mim.check_smiles(str(seed), f"optimize.seeds[{k}]") for k, seed in enumerate(o["seeds"])]
    physics = None
    if o["physics"]["potential"]:
        p = o["physics"]  # a name (xtb, emt) or a checkpoint path: scoring.physics_calculator resolves it
        physics = PhysicsScore(p["potential"], p["n_conformers"], p["fmax"], p["steps"], config["run"]["seed"],
                               p["metric"], optimizer=p["optimizer"])
    objectives = [Objective(dict(o["weights"]), seed_c, o["similarity_min"], o["penalty"], physics=physics)
                  for seed_c in seeds]  # an unknown objective name fails here, before anything is written
    out = _setup(config, "optimize")
    rows, results = [], []
    for k, (seed_c, objective) in enumerate(zip(seeds, objectives)):
        res = optimize_molecule(mim, seed_c, objective, o["sigma"], o["iterations"], o["popsize"],
                                config["run"]["seed"] + k, o["beam_width"], o["target"], o["all_beams"],
                                o["patience"])
        before, after = objective.details(seed_c), objective.details(res["best"])
        results.append({"seed": seed_c, "before": before, "after": after})
        log(f"seed {k:3d}  score {before['score']:.3f} -> {after['score']:.3f}  qed {before['qed']:.3f} -> "
            f"{after['qed']:.3f}  similarity {after.get('similarity', 1.0):.2f}  {res['best']}")
        for smi, score in sorted(res["molecules"].items(), key=lambda kv: -kv[1]):
            rows.append({"seed": seed_c, "smiles": smi, "score": round(score, 4), "best": smi == res["best"]})
        if res["best"] == seed_c:
            rows.append({"seed": seed_c, "smiles": seed_c, "score": round(before["score"], 4), "best": True})
    for r in rows:  # property columns for every molecule
        d = Objective({"qed": 1.0}, r["seed"]).details(r["smiles"])
        r.update(qed=round(d["qed"], 4), logp=round(d["logp"], 3), similarity=round(d["similarity"], 4))
    _write_csv(out / "optimized.csv", rows)
    _write_grid(out / "optimized.png", [r["after"]["smiles"] for r in results],
                [f"QED {r['before']['qed']:.2f}->{r['after']['qed']:.2f} sim {r['after'].get('similarity', 1):.2f}"
                 for r in results])
    mean_before = float(np.mean([r["before"]["qed"] for r in results]))
    mean_after = float(np.mean([r["after"]["qed"] for r in results]))
    log(f"mean QED  {mean_before:.3f} -> {mean_after:.3f} over {len(results)} seeds; wrote {out / 'optimized.csv'}")
    return {"results": results, "rows": rows, "mean_qed_before": mean_before, "mean_qed_after": mean_after,
            "output": out}
