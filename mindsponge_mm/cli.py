"""The ``mindsponge-mm`` command.

A user mistake prints one line ``error: ...`` and exits with code 2, without a traceback.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys

os.environ.setdefault("GLOG_v", "3")  # before anything imports MindSpore

from . import __version__  # noqa: E402
from .errors import UserError  # noqa: E402


def _units(pairs) -> dict:
    units = {}
    for text in pairs or []:
        if "=" not in text:
            raise UserError(f"--units takes NAME=UNIT pairs such as energy=kcal/mol, got {text!r}")
        key, value = text.split("=", 1)
        units[key.strip()] = value.strip()
    return units


def cmd_run(args) -> None:
    from .config import load_config, load_yaml
    from .errors import ConfigError
    from .job_schema import JOB_SCHEMA
    from .jobs import run

    raw = load_yaml(args.config)
    if "data" not in raw and "md" in raw:
        raise ConfigError(f"{args.config} is an MD-only config (no data section); run it with "
                          f"mindsponge-mm md {args.config}")
    run(load_config(args.config, args.overrides, schema=JOB_SCHEMA), source=str(args.config))


def cmd_train(args) -> None:
    from .config import load_config
    from .errors import ConfigError
    from .io_utils import RunDirectory
    from .job_schema import JOB_SCHEMA
    from .jobs import train

    path = args.config
    if path is None and args.resume is not None:
        path = RunDirectory(args.resume).config  # the resolved config the run was started with
        if not path.exists():
            raise ConfigError(f"{args.resume}: not a run directory (no config.yaml); pass the run.output folder")
    if path is None:
        raise ConfigError("train needs a CONFIG.yaml (or --resume RUN_DIR)")
    train(load_config(path, args.overrides, schema=JOB_SCHEMA), resume=args.resume)


def cmd_evaluate(args) -> None:
    from .jobs import evaluate

    evaluate(args.target, args.dataset, args.split, args.batch_size, args.out)


def cmd_export(args) -> None:
    from .jobs import export

    export(args.run_dir, args.format, args.out)


def cmd_md(args) -> None:
    from .config import load_config, load_yaml
    from .job_schema import JOB_SCHEMA, MD_JOB_SCHEMA
    from .errors import ConfigError
    from .io_utils import RunDirectory
    from .jobs import md

    raw = load_yaml(args.config)
    # an MD-only file has run + md; a full job (like the quick start) is validated as a whole
    schema = JOB_SCHEMA if "data" in raw else MD_JOB_SCHEMA
    config = load_config(args.config, args.overrides, schema=schema)
    if config.get("md") is None:
        raise ConfigError(f"{args.config}: no md section; see configs/md_lj.yaml for an example")
    trains = config.get("model") or (config.get("training") or {}).get("init_from")
    trained = RunDirectory(config["run"]["output"]).best_checkpoint if trains else None
    existing = "restart" if args.restart else "overwrite" if args.overwrite else "refuse"
    md(config, trained=trained, existing=existing, source=str(args.config))


def _generate_config(args) -> dict:
    """The config file with its overrides; without a file, the defaults (the shipped model) and overrides."""
    from .config import apply_overrides, load_config, validate
    from .generative.job import GENERATE_SCHEMA

    path = args.config
    if path is not None and "=" in path and not os.path.exists(path):  # no file, only overrides
        args.overrides, path = [path, *args.overrides], None
    if path is None:
        return validate(apply_overrides({}, args.overrides), GENERATE_SCHEMA, "command line")
    return load_config(path, args.overrides, schema=GENERATE_SCHEMA)


def cmd_generate_train(args) -> None:
    from .config import load_config
    from .errors import ConfigError
    from .generative.job import GENERATE_SCHEMA, train

    path = args.config
    if path is not None and "=" in path and not os.path.exists(path):  # --resume RUN key=value: an override
        args.overrides, path = [path, *args.overrides], None
    if path is None and args.resume is not None:
        path = os.path.join(args.resume, "config.yaml")  # the resolved config the run was started with
        if not os.path.exists(path):
            raise ConfigError(f"{args.resume}: not a generate run directory (no config.yaml); pass the "
                              f"run.output folder")
    if path is None:
        raise ConfigError("generate train needs a CONFIG.yaml (or --resume RUN_DIR)")
    train(load_config(path, args.overrides, schema=GENERATE_SCHEMA), resume=args.resume)


def _split_seed_overrides(args) -> None:
    """Move ``key.sub=value`` overrides that argparse took as seed SMILES back to the overrides.

    An override's first key is a section of the generate schema (``sample.radius=0.5``); no
    SMILES starts with one (``C=O``, ``CC.O=C`` do not), so both may come in any order.
    """
    from .generative.job import GENERATE_SCHEMA

    seeds, overrides = [], list(args.overrides)
    for text in args.seed_smiles:
        key = text.split("=", 1)[0]
        if "=" in text and "." in key and key.split(".", 1)[0] in GENERATE_SCHEMA:
            overrides.append(text)
        else:
            seeds.append(text)
    if not seeds:
        from .errors import UserError

        raise UserError("--seed-smiles needs at least one SMILES, e.g. --seed-smiles 'CC(=O)Nc1ccc(O)cc1'")
    args.seed_smiles, args.overrides = seeds, overrides


def cmd_generate_sample(args) -> None:
    from .generative.job import sample

    _split_seed_overrides(args)
    sample(_generate_config(args), args.seed_smiles)


def cmd_generate_optimize(args) -> None:
    from .generative.job import optimize

    optimize(_generate_config(args))


def cmd_data_info(args) -> None:
    from .data import AtomsDataset

    print(AtomsDataset.open(args.path, _units(args.units)).summary())


def cmd_data_convert(args) -> None:
    from .data import AtomsDataset

    out = AtomsDataset.open(args.input, _units(args.units)).save(args.output)
    print(f"wrote {args.output}: {len(out)} frames, properties {', '.join(out.properties)}")


def cmd_data_generate(args) -> None:
    from .data.generate import generate_dataset

    generate_dataset(args.name, args.out, seed=args.seed, n_frames=args.frames)


def cmd_convert_mace(args) -> None:
    from .interfaces.mace_torch import convert_mace

    convert_mace(args.model, args.output, head=args.head, elements=args.elements, dtype=args.dtype,
                 hparams=args.hparams)


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error style: one line, exit code 2."""

    def error(self, message):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mindsponge-mm", description="MindSpore-native molecular modeling")
    parser.add_argument("--version", action="version", version=f"mindsponge_mm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run every stage of a YAML job config")
    p.add_argument("config", help="YAML file, e.g. configs/quickstart.yaml")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("train", help="train a potential from a YAML config")
    p.add_argument("config", nargs="?", help="YAML file, e.g. configs/painn_ethanol.yaml")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. training.epochs=5")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics table and parity plots of a trained potential")
    p.add_argument("target", help="run directory (uses checkpoints/best) or checkpoint file")
    p.add_argument("dataset", help="dataset file or bundled:NAME")
    p.add_argument("--split", choices=("train", "val", "test", "all"), default=None,
                   help="frames of the run's split.npz (default: every frame)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--out", help="folder for the plots (default: the run directory)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="export the energy+forces graph for deployment")
    p.add_argument("run_dir", help="run directory or checkpoint file")
    p.add_argument("--format", default="mindir", help="mindir")
    p.add_argument("--out", help="output .mindir (default: RUN_DIR/export/potential.mindir)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("md", help="molecular dynamics from a YAML config (md section)")
    p.add_argument("config", help="YAML file, e.g. configs/md_lj.yaml")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. md.steps=2000")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--restart", action="store_true",
                          help="continue the trajectory in run.output from its restart file (md.steps is the total)")
    existing.add_argument("--overwrite", action="store_true", help="write over an existing trajectory in run.output")
    p.set_defaults(func=cmd_md)

    gen = sub.add_parser("generate", help="latent generative model of SMILES: train, sample, optimize")
    gsub = gen.add_subparsers(dest="generate_command", required=True)
    p = gsub.add_parser("train", help="train the latent model on a SMILES corpus")
    p.add_argument("config", nargs="?", help="YAML file, e.g. configs/generate.yaml")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly from its last checkpoint")
    p.set_defaults(func=cmd_generate_train)
    p = gsub.add_parser("sample", help="decode molecules around seed molecules (default: the shipped model)")
    p.add_argument("config", nargs="?", help="YAML file (default: every default, the shipped model)")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--seed-smiles", nargs="+", required=True, metavar="SMILES", help="seed molecule(s)")
    p.set_defaults(func=cmd_generate_sample)
    p = gsub.add_parser("optimize", help="CMA-ES in latent space on a score (QED, logP, similarity, physics)")
    p.add_argument("config", nargs="?", help="YAML file (default: every default, the shipped model; give "
                                             "optimize.seeds=[SMILES,...])")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_generate_optimize)

    convert = sub.add_parser("convert", help="convert models of other packages into our checkpoints")
    csub = convert.add_subparsers(dest="convert_command", required=True)
    p = csub.add_parser("mace", help="a mace-torch model (MACE-MP-0, MACE-OFF23, your own) -> .safetensors")
    p.add_argument("model", help="mace-torch .model file (a pickle: needs pip install -e '.[mace]'), or a state "
                                 "dict (.npz / .safetensors) together with --hparams")
    p.add_argument("output", help="our checkpoint, .safetensors")
    p.add_argument("--head", help="the head to keep, for multi-head models")
    p.add_argument("--elements", nargs="+", metavar="EL", help="keep only these elements (exact: e.g. H C N O)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--hparams", metavar="JSON", help="hyperparameters of a state-dict MODEL (no pickle involved)")
    p.set_defaults(func=cmd_convert_mace)

    data = sub.add_parser("data", help="inspect, convert and generate datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("info", help="counts, elements, property shapes and ranges, units")
    p.add_argument("path", help="dataset file or bundled:NAME")
    p.add_argument("--units", nargs="*", metavar="NAME=UNIT", help="units of a file that does not declare them")
    p.set_defaults(func=cmd_data_info)
    p = dsub.add_parser("convert", help="convert between .h5, .db and any ase.io format (read only)")
    p.add_argument("input")
    p.add_argument("output", help=".h5 or .db")
    p.add_argument("--units", nargs="*", metavar="NAME=UNIT", help="units of the input when it does not declare them")
    p.set_defaults(func=cmd_data_convert)
    p = dsub.add_parser("generate", help="regenerate a bundled reference dataset")
    p.add_argument("name", help="ethanol or copper")
    p.add_argument("--out", help="output .h5 (default: the package's bundled file)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=None, help="number of frames (default: the bundled size)")
    p.set_defaults(func=cmd_data_generate)
    return parser


def main(argv=None) -> int:
    """Run the command; 0 on success, 2 for a user mistake, 130 when interrupted (Ctrl-C, SIGTERM).

    MindSpore's runtime installs its own SIGINT handler before each graph run, and that handler
    sends the process SIGTERM; so SIGTERM is turned into KeyboardInterrupt here
    (:func:`runtime.install_interrupt_handlers`), and Ctrl-C during a compiled train step or MD
    block ends like one anywhere else: the block in flight is finished or dropped, the message is
    printed, and the last checkpoint resumes the run.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may follow options (md CONFIG --restart md.steps=40): argparse leaves them over
    stray = [a for a in extra if a.startswith("-") or "=" not in a or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    from . import runtime

    previous = runtime.install_interrupt_handlers()
    try:
        args.func(args)
        runtime.check_interrupt()  # an interrupt whose KeyboardInterrupt was dropped where it landed
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; outputs written so far are complete, partial files were discarded; "
              "continue with the same command (train: --resume RUN_DIR, md: --restart)", file=sys.stderr)
        return 130
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror}; choose a writable location with free space", file=sys.stderr)
        return 2
    finally:
        runtime.restore_interrupt_handlers(previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
