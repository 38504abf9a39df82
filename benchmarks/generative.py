"""Quality of a trained generative model (MolMIM metrics), as reported in the README.

    python benchmarks/generative.py RUN_DIR [--seeds 200] [--samples 5] [--beams 1 5] [--cma-seeds 20]

RUN_DIR is the output of ``mindsponge-mm generate train`` (model.safetensors, held_out.smi,
train.smi). Prints reconstruction of the held-out molecules (greedy, beam 3 and 5, greedy without
syntax constraints), sampling metrics per radius and beam width around held-out seeds, and
CMA-ES QED optimisation (greedy decoding) of the
lowest-QED held-out molecules (organic, 10-35 heavy atoms) under ECFP4 similarity >= 0.4;
writes RUN_DIR/benchmark.json.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402

from mindsponge_mm.generative.cmaes import optimize_molecule  # noqa: E402
from mindsponge_mm.generative.latent import MolMIM  # noqa: E402
from mindsponge_mm.generative.metrics import reconstruction, sampling_metrics  # noqa: E402
from mindsponge_mm.generative.scoring import Objective, qed  # noqa: E402
from mindsponge_mm.io_utils import write_text_atomic  # noqa: E402


ORGANIC = {"C", "N", "O", "S", "F", "Cl", "Br", "I", "P", "H"}


def _drug_like_elements(smiles: str) -> bool:
    """Neutral organic molecules of 10-35 heavy atoms: the CMA-ES seeds (the NCI set also holds metal complexes)."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    return (mol is not None and 10 <= mol.GetNumHeavyAtoms() <= 35 and Chem.GetFormalCharge(mol) == 0
            and all(a.GetSymbol() in ORGANIC for a in mol.GetAtoms()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--seeds", type=int, default=200, help="held-out molecules used as seeds")
    ap.add_argument("--samples", type=int, default=10, help="samples per seed and radius")
    ap.add_argument("--radii", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    ap.add_argument("--beams", type=int, nargs="*", default=[1, 5], help="beam widths for sampling (none: skip)")
    ap.add_argument("--out", default="benchmark.json", help="report file name inside RUN_DIR")
    ap.add_argument("--sample-seeds", type=int, default=100, help="held-out molecules used as sampling seeds")
    ap.add_argument("--skip-reconstruction", action="store_true")
    ap.add_argument("--cma-seeds", type=int, default=20)
    ap.add_argument("--cma-start", type=int, default=0, help="skip this many of the CMA-ES seeds (to split a run)")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--popsize", type=int, default=16)
    ap.add_argument("--sigma", type=float, default=0.5)
    args = ap.parse_args(argv)
    run = Path(args.run_dir)
    mim = MolMIM.load(run / "model.safetensors")
    held = [s for s in (run / "held_out.smi").read_text().split() if mim.tokenizer.fits(s)][: args.seeds]
    train = set((run / "train.smi").read_text().split())
    report = {"n_held_out": len(held)}
    t = time.perf_counter()
    settings = {"greedy": dict(), "beam3": dict(beam_width=3), "beam5": dict(beam_width=5),
                "greedy_unconstrained": dict(constrained=False)}
    if not args.skip_reconstruction:
        for name, kw in settings.items():
            report[f"reconstruction_{name}"] = reconstruction(held, mim.reconstruct(held, **kw))
        print(f"reconstruction ({len(held)} held-out, {time.perf_counter() - t:.0f} s)", flush=True)
        for name in settings:
            rec = report[f"reconstruction_{name}"]
            print(f"  {name:20s} " + "  ".join(f"{k} {v:.3f}" for k, v in rec.items() if k != "n"))
    mu = mim.encode(held[: args.sample_seeds])
    report["sampling"] = {}
    for beam in args.beams:
        rng = np.random.default_rng(0)
        n_seeds = len(mu)
        print(f"sampling (beam {beam}, {args.samples} per seed, {n_seeds} seeds; fractions averaged over seeds)")
        for r in args.radii:
            codes = np.repeat(mu, args.samples, 0) + r * rng.standard_normal((n_seeds * args.samples, mim.code_size))
            raw = mim.decode(codes.astype(np.float32), beam)
            per = [sampling_metrics(raw[i * args.samples: (i + 1) * args.samples], s, train)
                   for i, s in enumerate(held[:n_seeds])]
            mean = {k: float(np.mean([m[k] for m in per])) for k in per[0] if k != "n"}
            report["sampling"][f"beam{beam}_radius{r}"] = mean
            print(f"  radius {r:4.2f}  " + "  ".join(f"{k} {v:.3f}" for k, v in mean.items()), flush=True)
    seeds = sorted((s for s in held if _drug_like_elements(s)), key=qed)[args.cma_start: args.cma_seeds]
    if seeds:
        before, after, sims = [], [], []
        t = time.perf_counter()
        for k, seed in enumerate(seeds):
            objective = Objective({"qed": 1.0}, seed=seed, similarity_min=0.4)
            res = optimize_molecule(mim, seed, objective, args.sigma, args.iterations, args.popsize,
                                    seed=args.cma_start + k)
            d0, d1 = objective.details(seed), objective.details(res["best"])
            before.append(d0["qed"])
            after.append(d1["qed"])
            sims.append(d1["similarity"])
            print(f"  {args.cma_start + k:2d} QED {d0['qed']:.3f} -> {d1['qed']:.3f}  sim {d1['similarity']:.2f}  {seed} -> {res['best']}")
        report["cmaes"] = {"seeds": len(seeds), "mean_qed_before": float(np.mean(before)),
                           "mean_qed_after": float(np.mean(after)), "min_similarity": float(np.min(sims)),
                           "mean_similarity": float(np.mean(sims)), "improved": int(np.sum(np.greater(after, before))),
                           "seconds": round(time.perf_counter() - t)}
        c = report["cmaes"]
        print(f"CMA-ES QED ({c['seeds']} lowest-QED held-out seeds, {args.iterations} x {args.popsize}): mean "
              f"{c['mean_qed_before']:.3f} -> {c['mean_qed_after']:.3f}, {c['improved']} improved, similarity min "
              f"{c['min_similarity']:.2f} mean {c['mean_similarity']:.2f}")
    report["args"] = vars(args)
    write_text_atomic(run / args.out, json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    sys.exit(main() and 0)
