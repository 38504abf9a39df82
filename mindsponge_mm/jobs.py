"""Jobs driven by a validated config (see :mod:`mindsponge_mm.config`).

* :func:`train` — data stage, model construction (E0, scale and shift from the training
  split's statistics), the :class:`~mindsponge_mm.train.Trainer`; ``resume`` continues a run.
* :func:`evaluate` — metrics table and parity plots of a checkpoint on a dataset (split).
* :func:`export` — the energy+forces graph of a run as MindIR.
* :func:`run` — every stage a config describes, in order: data, training, evaluation
  (and MD when the config has an ``md`` section).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import yaml
from ase.data import chemical_symbols

from .data import AtomsDataset, AtomsLoader, split, statistics
from .errors import ConfigError, UserError
from .io_utils import RunDirectory, ensure_writable_dir, run_directory, write_text_atomic

Log = Callable[[str], None]


def prepare_data(config: dict, out_dir: Path, log: Log = print):
    """Open the dataset, split it (reusing the run's ``split.npz``) and compute training statistics."""
    data, seed = config["data"], config["run"]["seed"]
    files = RunDirectory(out_dir)
    ds = AtomsDataset.open(data["path"], data["units"] or None)
    log(ds.summary())
    parts = split(ds, data["split"], seed=seed, file=files.split)
    log(f"split     train {len(parts[0])}, val {len(parts[1])}, test {len(parts[2])}  ({files.split})")
    stats = statistics(ds, parts[0]) if "energy" in ds.properties else None
    if stats is not None:
        write_text_atomic(files.statistics, stats.to_json())
        refs = ", ".join(f"{chemical_symbols[z]} {e:.4f}" for z, e in stats.atomrefs.items())
        log(f"atomrefs  {refs} eV  (least squares over the training split)")
        log(
            f"energy    mean {stats.mean_energy_per_atom:.5f} eV/atom, std {stats.std_energy_per_atom:.5f} eV/atom "
            f"after atomrefs"
        )
        if stats.force_rms is not None:
            log(f"forces    RMS {stats.force_rms:.4f} eV/Ang")
    return ds, parts, stats


def make_loader(ds, config: dict, indices, shuffle: bool) -> AtomsLoader:
    data = config["data"]
    return AtomsLoader(
        ds, data["batch_size"], data["cutoff"], shuffle=shuffle, seed=config["run"]["seed"], indices=indices,
        atom_multiple=data["atom_multiple"], pair_multiple=data["pair_multiple"],
        steps_per_octave=data["steps_per_octave"], dtype=data["dtype"],
    )


def build_potential(config: dict, ds, stats, log: Log = print):
    """The config's model for this dataset, with E0 atomrefs, scale (force RMS) and shift set.

    With ``training.init_from`` the model is the checkpoint's instead (see :func:`load_initial`).
    """
    from .models import MODELS, Potential, build
    from .models.base import parse_elements

    if config["training"]["init_from"]:
        return load_initial(config, ds, log)
    spec = dict(config["model"])
    name = spec.pop("name")
    elements = parse_elements(spec.pop("elements", None) or ds.elements)
    missing = sorted(set(ds.elements) - set(elements))
    if missing:
        raise ConfigError(f"model.elements lacks {', '.join(chemical_symbols[z] for z in missing)}, which the dataset "
                          f"{ds.source} contains; add them or remove model.elements to use the dataset's")
    cutoff = float(spec.pop("cutoff", config["data"]["cutoff"]))
    if cutoff > config["data"]["cutoff"] + 1e-12:
        raise ConfigError(f"model.cutoff = {cutoff} exceeds data.cutoff = {config['data']['cutoff']}; the neighbor "
                          f"list would miss pairs; raise data.cutoff")
    spec.setdefault("dtype", config["data"]["dtype"])
    spec.setdefault("seed", config["run"]["seed"])
    cls = MODELS.get(name)
    if cls is not None:  # an unknown name is build's one-line error
        for key, value in cls.defaults_from_data(ds, cutoff, spec).items():
            spec[key] = value
            log(f"model     {key} = {value:.2f} (from the training data)" if isinstance(value, float)
                else f"model     {key} = {value!r} (from the training data)")
    model = build(name, elements=elements, cutoff=cutoff, **spec)
    if stats is not None:
        model.set_energy_offsets(stats.atomrefs, scale=stats.force_rms or stats.std_energy_per_atom or 1.0,
                                 shift=stats.mean_energy_per_atom)
    n_params = sum(int(np.prod(p.shape)) for p in model.trainable_params())
    log(f"model     {name}: {n_params:,} weights, elements {', '.join(chemical_symbols[z] for z in elements)}, "
        f"cutoff {cutoff} Ang, {spec['dtype']}")
    return Potential(model)


def load_initial(config: dict, ds, log: Log = print):
    """Fine-tuning: the potential of ``training.init_from`` with frozen weights marked.

    The checkpoint fixes the model, its elements, cutoff and hyperparameters: a ``model`` section
    may repeat them but not contradict them (one-line ConfigError naming the key), the dataset's
    elements must be among the model's, and ``data.cutoff`` must reach the model's cutoff. The
    weights are cast to ``data.dtype``. ``training.freeze`` lists weight-name prefixes to keep
    fixed (``requires_grad=False``, so the optimizer never sees them).
    """
    from .models import Potential
    from .models.potential import read_checkpoint

    path = config["training"]["init_from"]
    meta, _ = read_checkpoint(path)
    hyper = meta["hyperparameters"]
    for key, value in (config.get("model") or {}).items():
        theirs = meta["model"] if key == "name" else hyper.get(key)
        if key == "elements":
            from .models.base import parse_elements

            value, theirs = sorted(parse_elements(value)), sorted(parse_elements(meta["elements"]))
        if key in ("seed", "dtype") or value == theirs or (isinstance(value, (int, float)) and
                                                           isinstance(theirs, (int, float)) and
                                                           float(value) == float(theirs)):
            continue
        raise ConfigError(f"model.{key} = {value!r} contradicts training.init_from ({path}: {theirs!r}); remove "
                          f"model.{key}: a fine-tuned model keeps the checkpoint's")
    missing = sorted(set(ds.elements) - set(meta["elements"]))
    if missing:
        raise ConfigError(f"training.init_from: {path} has no weights for {', '.join(chemical_symbols[z] for z in missing)}"
                          f", which {ds.source} contains; fine-tune a model that covers every element of the data")
    if config["data"]["cutoff"] < float(meta["cutoff"]) - 1e-12:
        raise ConfigError(f"data.cutoff = {config['data']['cutoff']} is shorter than the cutoff {meta['cutoff']} Ang "
                          f"of training.init_from ({path}); set data.cutoff: {meta['cutoff']}")
    potential = Potential.load(path, dtype=config["data"]["dtype"])
    names = [name for name, _ in potential.model.parameters_and_names()]
    for prefix in config["training"]["freeze"]:
        hits = [p for name, p in potential.model.parameters_and_names()
                if name == prefix or name.startswith(f"{prefix}.")]
        if not hits:
            tops = sorted({n.split(".")[0] for n in names} | {".".join(n.split(".")[:2]) for n in names if "." in n})
            raise ConfigError(f"training.freeze: no weights named {prefix!r} in {meta['model']}; choose among "
                              f"{', '.join(tops[:24])}")
        for param in hits:
            param.requires_grad = False
    n_train = sum(int(np.prod(p.shape)) for p in potential.model.trainable_params())
    n_all = sum(int(np.prod(p.shape)) for _, p in potential.model.parameters_and_names())
    log(f"model     {meta['model']} from {path}: {n_train:,} of {n_all:,} weights trained, elements "
        f"{', '.join(chemical_symbols[z] for z in meta['elements'])}, cutoff {meta['cutoff']} Ang, "
        f"{config['data']['dtype']}")
    return potential


def refit_e0(potential, loader, log: Log = print) -> dict:
    """Refit the per-element E0 of ``potential`` on ``loader``'s frames, in place; returns {Z: E0}.

    The E0 that minimise the squared error of the model's total energies on these frames, with
    everything else fixed (least squares over the composition). Elements absent from the frames
    keep their E0.
    """
    import mindspore as ms

    model = potential.model
    old = model.e0.asnumpy().astype(np.float64).copy()
    rows, residuals = [], []
    for batch in loader:
        predicted = potential.evaluate(batch)
        s = batch.structure_mask
        species = model.species(batch.atomic_numbers, batch.atom_mask)
        counts = np.zeros((len(s), model.n_elements))
        np.add.at(counts, (batch.structure_index[batch.atom_mask], species[batch.atom_mask]), 1.0)
        rows.append(counts[s])
        residuals.append(batch.targets["energy"][s] - predicted["energy"][s] + counts[s] @ old)
    counts, residual = np.concatenate(rows), np.concatenate(residuals)
    present = counts.sum(0) > 0
    new = old.copy()
    new[present] = np.linalg.lstsq(counts[:, present], residual, rcond=None)[0]
    model.e0.copy_(ms.Tensor(new.astype(model.dtype_name)))
    refs = {z: float(new[k]) for k, z in enumerate(model.elements)}
    text = ", ".join(f"{chemical_symbols[z]} {refs[z]:.4f}" for k, z in enumerate(model.elements) if present[k])
    log(f"refit E0  {text} eV  (least squares of the loaded model's residuals over the training split)")
    return refs


def _setup_device(config: dict) -> None:
    import mindspore as ms

    device = config["run"]["device"]
    target = {"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}.get(device)
    if target is not None:
        ms.set_device(target)


def train(config: dict, resume: str | os.PathLike | None = None, log: Log = print) -> dict:
    """Train the config's model; with ``resume`` (a run directory) continue it exactly."""
    _setup_device(config)
    rank, world = 0, 1
    if config["training"]["distributed"]:
        from .train import distributed

        rank, world = distributed.init()
    if config.get("model") is None and not config["training"]["init_from"]:
        raise ConfigError("the config has no model section; add e.g. model: {name: painn} to train, or "
                          "training.init_from: CHECKPOINT to fine-tune")
    out_dir = Path(resume) if resume is not None else Path(config["run"]["output"])
    files = RunDirectory(out_dir)
    last = files.last_checkpoint
    if resume is not None and not last.exists():
        raise UserError(f"{last}: nothing to resume (no checkpoint); start the run without --resume")
    if resume is None and last.exists():
        raise UserError(f"{out_dir} already holds a training run; resume it with --resume {out_dir} or choose "
                        f"another run.output")
    with run_directory(files, files.training_outputs, writer=rank == 0):
        return _train_in(config, out_dir, last, resume, rank, world, log)


def _train_in(config: dict, out_dir: Path, last: Path, resume, rank: int, world: int, log: Log) -> dict:
    from .train import Trainer

    quiet = log if rank == 0 else (lambda _text: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0 and resume is None:
        write_text_atomic(RunDirectory(out_dir).config, yaml.safe_dump(config, sort_keys=False))
    ds, parts, stats = prepare_data(config, out_dir, quiet)
    potential = build_potential(config, ds, stats, quiet)
    train_loader = make_loader(ds, config, parts[0], shuffle=config["data"]["shuffle"])
    val_loader = make_loader(ds, config, parts[1], shuffle=False)
    fine_tune = config["training"]["init_from"] and resume is None
    if fine_tune and config["training"]["refit_e0"] and "energy" in ds.properties:
        refit_e0(potential, make_loader(ds, config, parts[0], shuffle=False), quiet)
    if fine_tune:
        from .train import ErrorMetrics

        metrics = ErrorMetrics()
        for batch in val_loader:
            metrics.add(batch, potential.evaluate(batch))
        quiet("step 0    " + "  ".join(_metric_text(metrics.result())) + "  (validation, before fine-tuning)")
    trainer = Trainer(potential, train_loader, val_loader, config["training"], out_dir, rank, world, log)
    if resume is not None:
        trainer.resume(last)
        quiet(f"resumed   {last} after epoch {trainer.state['epoch']}")
    if world > 1:
        quiet(f"parallel  {world} data-parallel ranks, {config['data']['batch_size'] // world} structures per rank")
    result = trainer.fit()
    quiet(f"trained   {len(result['history'])} epochs; best epoch {result['best_epoch']}; "
          f"{result['compiled_shapes']} train-step graph shape(s) compiled in this process")
    return {"potential": potential, "dataset": ds, "split": parts, "statistics": stats, "output": out_dir,
            "rank": rank, **result}


def _metric_text(result: dict) -> list[str]:
    parts = []
    if "forces_mae" in result:
        parts.append(f"val F MAE {1000 * result['forces_mae']:.1f} meV/Ang")
    if "energy_per_atom_mae" in result:
        parts.append(f"E MAE {1000 * result['energy_per_atom_mae']:.2f} meV/atom")
    return parts


def _checkpoint_and_run(target: str | os.PathLike) -> tuple[Path, Path | None]:
    target = Path(target)
    if target.is_dir():
        ckpt = RunDirectory(target).best_checkpoint
        if not ckpt.exists():
            raise UserError(f"{target}: no {ckpt.relative_to(target).as_posix()}; is it a training run directory?")
        return ckpt, target
    if not target.exists():
        raise UserError(f"{target}: no such run directory or checkpoint; check the path")
    return target, None


def evaluate(target: str | os.PathLike, dataset: str, split_name: str | None = None, batch_size: int = 16,
             out_dir: str | os.PathLike | None = None, log: Log = print) -> dict:
    """Metrics and parity plots of a checkpoint (or a run's best checkpoint) on ``dataset``.

    ``split_name`` (train/val/test) selects frames through the run's ``split.npz``; ``None``
    or ``all`` uses every frame. Plots go to ``out_dir`` (default: the run directory, or the
    checkpoint's folder).
    """
    from .models import Potential
    from .train import ErrorMetrics, format_table, plots

    ckpt, run_dir = _checkpoint_and_run(target)
    out = Path(out_dir) if out_dir is not None else (run_dir or ckpt.parent)
    ensure_writable_dir(out, "--out" if out_dir is not None else "the evaluation folder (set it with --out)")
    files = RunDirectory(out)
    potential = Potential.load(ckpt)
    ds = AtomsDataset.open(dataset)
    indices = None
    if split_name not in (None, "all"):
        if run_dir is None or not RunDirectory(run_dir).split.exists():
            raise UserError(f"--split {split_name} needs a run directory with split.npz; pass the run directory, "
                            f"or leave out --split to use every frame")
        from .data.splits import load_split

        names = ("train", "val", "test")
        if split_name not in names:
            raise UserError(f"--split must be train, val, test or all, got {split_name!r}")
        indices = load_split(RunDirectory(run_dir).split, len(ds))[names.index(split_name)]
    dtype = potential.model.dtype_name
    loader = AtomsLoader(ds, batch_size, potential.cutoff, indices=indices, dtype=dtype)
    metrics = ErrorMetrics(keep=True)
    for batch in loader:
        metrics.add(batch, potential.evaluate(batch))
    result = metrics.result()
    where = f"{ds.source}" + (f" ({split_name} split, {len(loader.indices)} frames)" if indices is not None
                              else f" ({len(ds)} frames)")
    log(f"evaluate  {ckpt} on {where}")
    log(format_table(result))
    if "energy" in ds.properties:
        plots.parity(1000 * metrics.parity("energy"), files.parity_energy, "energy", "meV/atom")
    if "forces" in ds.properties:
        plots.parity(metrics.parity("forces"), files.parity_forces, "force component", "eV/Ang")
    write_text_atomic(files.evaluation, json.dumps({"checkpoint": str(ckpt), "dataset": ds.source,
                                                           "split": split_name, "metrics": result}, indent=1))
    return {"metrics": result, "output": out}


def export(run_dir: str | os.PathLike, fmt: str = "mindir", out: str | os.PathLike | None = None,
           log: Log = print) -> Path:
    """Export the energy+forces graph of a run's best checkpoint for one padded batch shape."""
    from .train.export import export_mindir

    if fmt.lower() != "mindir":
        raise UserError(f"--format {fmt!r} is not supported; use --format mindir")
    ckpt, run = _checkpoint_and_run(run_dir)
    path = Path(out) if out is not None else RunDirectory(run or ckpt.parent).export_mindir
    ensure_writable_dir(path.parent, "--out" if out is not None else "the export folder (set it with --out)")
    config = yaml.safe_load(RunDirectory(run).config.read_text()) if run is not None else None
    result = export_mindir(ckpt, path, config)
    log(f"exported  {result} (inputs: {', '.join(EXPORT_INPUT_NAMES)})")
    return result


from .batch import GRAPH_INPUTS as EXPORT_INPUT_NAMES  # noqa: E402  (the potential's inputs, named once)


def describe_data(config: dict, out_dir: Path, log: Log = print) -> dict:
    """The data stage alone: split, statistics and one padded batch (a config without a model)."""
    ds, parts, stats = prepare_data(config, out_dir, log)
    loader = make_loader(ds, config, parts[0], shuffle=config["data"]["shuffle"])
    batch = next(iter(loader))
    log(f"loader    {len(loader)} training batches of {loader.batch_size}, cutoff {loader.cutoff} Ang")
    log(batch.describe())
    pairs_per_atom = batch.n_real[2] / max(batch.n_real[0], 1)
    log(f"          {pairs_per_atom:.1f} neighbors per atom; padding {1 - np.mean(batch.pair_mask):.1%} of pairs")
    return {"dataset": ds, "split": parts, "statistics": stats, "batch": batch, "output": out_dir}


def run(config: dict, log: Log = print, source: str = "config") -> dict:
    """Run every stage of ``config``; return a dict of what was produced.

    Running a finished config again resumes it: training has nothing left to do, evaluation runs
    again, and MD continues from its restart file (nothing left when it reached ``md.steps``).
    """
    out_dir = Path(config["run"]["output"])
    files = RunDirectory(out_dir)
    trains = config.get("model") is not None or bool(config["training"]["init_from"])
    keep = files.training_outputs if trains else files.data_outputs
    with run_directory(files, keep):
        if not trains:
            write_text_atomic(files.config, yaml.safe_dump(config, sort_keys=False))
            return describe_data(config, out_dir, log)
        result = train(config, resume=out_dir if files.last_checkpoint.exists() else None, log=log)
        if result["rank"] == 0:
            split_name = config["evaluate"]["split"]
            result["evaluation"] = evaluate(out_dir, config["data"]["path"], split_name,
                                            config["data"]["batch_size"], log=log)
            if config.get("md") is not None:
                result["md"] = md(config, log=log, trained=files.best_checkpoint,
                                  existing="restart", source=source)
        return result


def md(config: dict, log: Log = print, trained: Path | None = None, existing: str = "refuse",
       source: str = "config") -> dict:
    """The ``md`` section of ``config``; ``potential: trained`` means the run's best checkpoint.

    ``existing`` says what to do when the trajectory already exists (see :func:`md.job.run_md`).
    """
    from .md.job import run_md

    section = dict(config["md"])
    if section["potential"] == "trained":
        if trained is None:
            raise ConfigError("md.potential: trained needs a training stage in the same config; give a checkpoint "
                              "path or a classical potential instead")
        section["potential"] = str(trained)
    return run_md({"run": config["run"], "md": section}, log=log, existing=existing, source=source)
