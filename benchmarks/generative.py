"""Quality and speed of a MolMIM checkpoint, measured with MolMIM's and MOSES's protocols.

    python benchmarks/generative.py --checkpoint PATH [--sections ...] [--limit N] [--json OUT]

Prints one Markdown table per section. Every count below is the default; ``--limit N`` caps all of
them at N for a quick run (and the penalized-logP candidate pool at 50·N), and each has its own flag.
Molecules are compared by RDKit canonical SMILES; ECFP4 is RDKit's Morgan fingerprint of radius 2
folded to 2048 bits; the metric definitions are those of :mod:`mindsponge_mm.generative.metrics`.

Data. MOSES's ``train``, ``test`` and ``test_scaffolds`` files are read from the installed
``molsets`` package (``pip install --no-deps molsets``; its code is never imported). Held-out
molecules are drawn from ``test`` / ``test_scaffolds`` only: the file is permuted with
``numpy.random.default_rng(--seed)`` and the first molecules that the checkpoint's tokenizer can
encode are taken, so the same seed gives the same molecules. Novelty is measured against the
training set canonicalised with the installed RDKit (about 0.05 % of MOSES's strings are not
canonical in current RDKit), cached after the first run under ``--cache`` (a few minutes once).

Decoding is greedy (``--beam-width 1``) with the checkpoint's syntax constraints, unless a beam
width is given; the same width is used in every section. With ``--rerank`` a beam search returns,
in sections 1–3, the valid beam whose own mean code (re-encoded) lies nearest the decoded code
instead of the most probable one (``MolMIM.decode(..., rerank=True)``).

1. ``reconstruction``: 1,000 molecules of MOSES ``test``; each is encoded to its mean code and
   decoded. Reported: exact match of canonical SMILES, validity, and the fraction with ECFP4
   Tanimoto similarity to the input >= 0.9 / 0.8 / 0.7 (exact matches count as 1, invalid as 0).
2. ``seeds`` (sampling around seeds, MolMIM's protocol): 200 seeds from MOSES ``test_scaffolds``
   (scaffolds absent from training), 10 samples each at each radius r in 0.5, 1.0, 2.0: a sample
   decodes mu(seed) + r·ε with ε ~ N(0, I) over the whole code. For each seed's 10 samples:
   validity (valid / 10), uniqueness (distinct valid / valid), novelty (distinct valid absent from
   MOSES ``train`` / distinct valid), non-identicality (valid and different from the seed / valid)
   and effective novelty (distinct valid molecules that are novel and differ from the seed / 10,
   i.e. the fraction of draws that give a usable new molecule, the definition of MolMIM's model
   card read per draw). Validity and effective novelty are averaged over all seeds; uniqueness,
   novelty and non-identicality (ratios over valid samples) over the seeds with a valid sample.
   Also reported: the mean ECFP4 Tanimoto similarity of the valid samples to their seed.
3. ``prior`` (MOSES's protocol): 10,000 codes z ~ N(0, I) (the prior of the MIM objective), decoded.
   Reported: validity, unique@1000 and unique@10k (distinct among the first k valid molecules),
   novelty against MOSES ``train``, internal diversity (1 − mean pairwise ECFP4 Tanimoto over the
   valid molecules), the fraction of valid molecules passing MOSES's filters
   (:class:`~mindsponge_mm.generative.metrics.MosesFilters`: allowed atoms C N S O F Cl Br H, no
   charged atom, no ring of 8+ atoms, PAINS through RDKit's FilterCatalog, and MOSES's MCF SMARTS
   read from molsets' data file), and the Fréchet ChemNet Distance (FCD) to as many MOSES ``test``
   molecules when the ``fcd`` package imports (``pip install -e ".[fcd]"``; otherwise skipped), with
   the FCD of as many other ``test`` molecules to the same reference: the floor at that sample size.
4. Constrained optimisation with CMA-ES in latent space (``cmaes.optimize_molecule``: starts at the
   seed's mean code with step ``--cma-sigma`` 0.25 (as ``generate optimize``), budget
   ``--cma-iterations`` 25 × ``--cma-popsize`` 64 = 1,600 decoded molecules per seed and run; run k
   uses CMA-ES seed k; ``--cma-all-beams K`` decodes each code with beam K and scores every beam,
   the code taking its best beam's score, as ``optimize.all_beams``; ``--cma-patience N`` restarts
   CMA-ES at the code of the best molecule so far after N iterations without a better score, as
   ``optimize.patience``. These defaults are greedy without patience, the budget of the README's
   earlier rows; ``generate optimize``'s default is ``--cma-all-beams 8 --cma-patience 4``). A
   search also restarts (at the best molecule's code) when CMA-ES stops before its budget
   (``cmaes.maximize``); each QED seed's outcome is printed to stderr as it ends:
   * ``qed``: 200 MOSES ``test`` molecules with QED in [0.7, 0.8]. Objective: QED, with a score
     penalty below ECFP4 similarity 0.4 to the seed. Success: some decoded molecule has QED >= 0.9
     at similarity >= 0.4 (the protocol of the JT-VAE and MolMIM papers). Reported: success rate,
     mean best QED and its similarity. ``--stop-at-success`` ends a seed's search at its first
     success (the success rate is the same, the run shorter, and the mean best QED a lower bound).
   * ``plogp``: the 200 molecules with the lowest penalized logP among the ``test`` molecules the
     tokenizer can encode (the whole file by default, ``--plogp-pool``). One CMA-ES run per
     similarity bound δ in 0.4, 0.6 with objective penalized logP and a penalty of 100 per unit of
     similarity below δ. Improvement: the best penalized logP among decoded molecules with
     similarity >= δ minus the seed's, 0 when none beats the seed (the seed itself satisfies the
     bound). Reported: mean and standard deviation of the improvement over all seeds, success rate
     (improvement > 0) and mean similarity of the improved molecules. ``--plogp-journal FILE``
     appends each seed's result to FILE and skips the seeds already there, so a run of many hours
     continues where it was stopped.
5. ``timing``: wall time per molecule of reconstruction and sampling (encode + decode, this
   machine, one process) and per CMA-ES iteration (decoding and scoring one population), from the
   runs above. They include the first call's graph compilation for each padded shape, which the
   default sizes amortise and ``--limit`` runs do not.
6. ``physics`` (not in the default set): the strain distribution of CMA-ES-optimised molecules with
   and without a physics term. ``--physics-seeds`` 10 of the ``qed`` seeds are optimised twice
   under similarity >= 0.4: for QED alone, and for QED + ``--physics-weight`` 10 × the strain score
   (``scoring.strain_score``: GFN2-xTB relaxation energy per heavy atom of an ETKDG+MMFF
   conformer, eV; needs tblite). The best molecule of each run is then scored with the same strain
   score; the table gives its mean, median, 90th percentile and maximum, and the mean QED.
"""
import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402

from mindsponge_mm.errors import UserError  # noqa: E402
from mindsponge_mm.generative import metrics as M  # noqa: E402
from mindsponge_mm.generative.cmaes import optimize_molecule  # noqa: E402
from mindsponge_mm.generative.scoring import Objective, qed  # noqa: E402
from mindsponge_mm.interfaces.rdkit import canonical_smiles  # noqa: E402
from mindsponge_mm.io_utils import atomic_path, write_text_atomic  # noqa: E402

DEFAULT_SECTIONS = ("reconstruction", "seeds", "prior", "qed", "plogp")
ALL_SECTIONS = DEFAULT_SECTIONS + ("physics",)


# ---------------------------------------------------------------- MOSES data
def moses_smiles(split: str) -> list[str]:
    """SMILES of a MOSES split (``train``, ``test``, ``test_scaffolds``) from molsets' data files."""
    path = M.molsets_file(f"dataset/data/{split}.csv.gz")
    if path is None:
        raise UserError(f"MOSES split {split!r} not found; pip install --no-deps molsets")
    with gzip.open(path, "rt") as f:
        lines = f.read().split()
    return [s for s in lines if s.upper() != "SMILES"]


def training_set(cache_dir: str | None, raw: bool = False, log=print) -> set:
    """Canonical SMILES of MOSES ``train`` (canonicalised once with this RDKit, then cached)."""
    from rdkit import RDLogger, rdBase

    smiles = moses_smiles("train")
    if raw:
        return set(smiles)
    cache = Path(cache_dir or Path.home() / ".cache" / "mindsponge_mm") / f"moses_train.rdkit-{rdBase.rdkitVersion}.smi.gz"
    if cache.exists():
        with gzip.open(cache, "rt") as f:
            return set(f.read().split())
    log(f"canonicalising {len(smiles)} MOSES training SMILES once (cache {cache})")
    RDLogger.DisableLog("rdApp.*")
    canon = {c for c in (canonical_smiles(s) for s in smiles) if c is not None}
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        with gzip.open(tmp, "wt") as f:
            f.write("\n".join(sorted(canon)) + "\n")
    return canon


def draw(smiles: list[str], n: int, mim, seed: int, keep=None) -> list[str]:
    """The first ``n`` molecules (canonical) of a seeded permutation that are valid, fit the tokenizer
    and pass ``keep``."""
    out = []
    for i in np.random.default_rng(seed).permutation(len(smiles)):
        c = canonical_smiles(smiles[i])
        if c is not None and mim.tokenizer.fits(c) and (keep is None or keep(c)):
            out.append(c)
            if len(out) >= n:
                break
    return out


# ---------------------------------------------------------------- tables
def table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


# ---------------------------------------------------------------- sections
def decoding(beam, rerank):
    """The decoding in words, for table titles."""
    return f"beam {beam}" + (", the beam nearest the code (re-encoded)" if rerank and beam > 1 else "")


def reconstruction_section(mim, n, beam, seed, report, timing, rerank=False):
    targets = draw(moses_smiles("test"), n, mim, seed)
    t = time.perf_counter()
    decoded = mim.reconstruct(targets, beam_width=beam, rerank=rerank)
    timing["reconstruction, per molecule"] = (time.perf_counter() - t) / max(len(targets), 1)
    rec = M.reconstruction(targets, decoded)
    report["reconstruction"] = rec
    print(f"\n### 1. Reconstruction ({rec['n']} MOSES test molecules, {decoding(beam, rerank)})\n")
    print(table(["molecules", "exact", "valid", "ECFP4 ≥ 0.9", "ECFP4 ≥ 0.8", "ECFP4 ≥ 0.7"],
                [[rec["n"], pct(rec["exact"]), pct(rec["validity"]), pct(rec["sim>=0.9"]), pct(rec["sim>=0.8"]),
                  pct(rec["sim>=0.7"])]]))


def seeds_section(mim, n_seeds, per_seed, radii, beam, seed, train, report, timing, rerank=False):
    seeds = draw(moses_smiles("test_scaffolds"), n_seeds, mim, seed)
    t = time.perf_counter()
    mu = mim.encode(seeds)
    encode_s = time.perf_counter() - t
    rows, report["seeds"] = [], {}
    keys = ("validity", "uniqueness", "novelty", "non_identicality", "effective_novelty")
    decode_s = 0.0
    for r in radii:
        rng = np.random.default_rng(seed)
        codes = np.repeat(mu, per_seed, 0) + r * rng.standard_normal((len(seeds) * per_seed, mim.code_size))
        t = time.perf_counter()
        raw = mim.decode(codes.astype(np.float32), beam, rerank=rerank)
        decode_s += time.perf_counter() - t
        per = [M.sampling_metrics(raw[i * per_seed: (i + 1) * per_seed], s, train) for i, s in enumerate(seeds)]
        # ratios over valid samples are averaged over the seeds that have at least one valid sample
        some = [m for m in per if m["validity"] > 0]
        mean = {k: float(np.mean([m[k] for m in (per if k in ("validity", "effective_novelty") else some)]))
                if (per if k in ("validity", "effective_novelty") else some) else 0.0 for k in keys}
        sims = [M.tanimoto(c, s) for i, s in enumerate(seeds)
                for c in M.canonical_list(raw[i * per_seed: (i + 1) * per_seed]) if c is not None]
        mean["similarity"] = float(np.mean(sims)) if sims else 0.0  # ECFP4 Tanimoto of valid samples to their seed
        report["seeds"][str(r)] = mean
        rows.append([f"{r:g}"] + [pct(mean[k]) for k in keys] + [f"{mean['similarity']:.2f}"])
    n_total = len(seeds) * per_seed * len(radii)
    timing["sampling around seeds, per molecule"] = (decode_s + encode_s) / max(n_total, 1)
    print(f"\n### 2. Sampling around seeds ({len(seeds)} MOSES test_scaffolds seeds × {per_seed} samples, "
          f"{decoding(beam, rerank)}; per-seed fractions averaged)\n")
    print(table(["radius", "validity", "uniqueness", "novelty", "non-identicality", "effective novelty",
                 "similarity to seed"], rows))


def prior_section(mim, n, beam, seed, train, report, timing, rerank=False):
    rng = np.random.default_rng(seed)
    codes = rng.standard_normal((n, mim.code_size)).astype(np.float32)
    t = time.perf_counter()
    raw = mim.decode(codes, beam, rerank=rerank)
    timing["sampling from the prior, per molecule"] = (time.perf_counter() - t) / max(n, 1)
    filters = M.MosesFilters()
    valid = [c for c in M.canonical_list(raw) if c is not None]
    res = {"n": n, "validity": M.validity(raw), "unique@1000": M.unique_at(raw, 1000),
           f"unique@{n}": M.unique_at(raw, n), "novelty": M.novelty(valid, train),
           "internal_diversity": M.internal_diversity(valid), "filters": M.filters_fraction(valid, filters),
           "filters_applied": filters.applied}
    fcd_note = "skipped (the fcd package is not installed)"
    try:
        import fcd  # noqa: F401
        from fcd import get_fcd

        test = moses_smiles("test")
        order = np.random.default_rng(seed + 1).permutation(len(test))
        ref, other = [test[i] for i in order[:n]], [test[i] for i in order[n: 2 * n]]
        res["fcd"] = float(get_fcd(valid, ref))
        res["fcd_test_vs_test"] = float(get_fcd(other, ref))  # the floor at this sample size
        fcd_note = (f"{res['fcd']:.3f} (against {len(ref)} MOSES test molecules; "
                    f"{len(other)} other test molecules: {res['fcd_test_vs_test']:.3f})")
    except ImportError:
        pass
    except Exception as err:  # noqa: BLE001 - a foreign package's failure is reported, not fatal
        fcd_note = f"failed ({' '.join(str(err).split())[:120]})"
    report["prior"] = res
    print(f"\n### 3. Sampling from the prior ({n} codes z ~ N(0, I), {decoding(beam, rerank)})\n")
    print(table(["validity", "unique@1000", f"unique@{n}", "novelty", "IntDiv", "filters", "FCD"],
                [[pct(res["validity"]), pct(res["unique@1000"]), pct(res[f"unique@{n}"]), pct(res["novelty"]),
                  res["internal_diversity"], pct(res["filters"]), fcd_note]]))
    print(f"\nfilters: {filters.applied}")


def _cma(mim, seed_smiles, objective, args, k, target=None):
    beams = args.cma_all_beams
    return optimize_molecule(mim, seed_smiles, objective, args.cma_sigma, args.cma_iterations, args.cma_popsize,
                             seed=k, beam_width=beams or args.beam_width, target=target, all_beams=beams > 1,
                             patience=args.cma_patience)


def cma_budget(args) -> str:
    """The CMA-ES budget in words: iterations × population (and beams scored per code)."""
    beams = f", {args.cma_all_beams} beams scored per code" if args.cma_all_beams > 1 else ""
    patience = f", restarts after {args.cma_patience} iterations without progress" if args.cma_patience else ""
    return f"{args.cma_iterations} × {args.cma_popsize}{beams}{patience}"


def qed_seeds(mim, n, seed):
    return draw(moses_smiles("test"), n, mim, seed + 2, keep=lambda s: 0.7 <= qed(s) <= 0.8)


def qed_section(mim, args, n, report, timing):
    seeds = qed_seeds(mim, n, args.seed)
    rows, iters, seconds = [], 0, 0.0
    for k, s in enumerate(seeds):
        obj = Objective({"qed": 1.0}, seed=s, similarity_min=0.4)
        res = _cma(mim, s, obj, args, k, target=0.9 if args.stop_at_success else None)
        iters, seconds = iters + res["iterations"], seconds + res["seconds"]
        hits = [(qed(m), M.tanimoto(m, s)) for m in res["molecules"]]
        feasible = [h for h in hits if h[1] >= 0.4] + [(qed(s), 1.0)]
        best = max(feasible)
        rows.append({"seed": s, "best_qed": best[0], "similarity": best[1],
                     "success": any(q >= 0.9 and sim >= 0.4 for q, sim in hits),
                     "iterations": res["iterations"], "restarts": res["restarts"]})
        print(f"qed seed {k + 1}/{len(seeds)}: {'success' if rows[-1]['success'] else 'no success'}, "
              f"best QED {best[0]:.3f} at similarity {best[1]:.2f}, {res['iterations']} iterations; "
              f"{sum(r['success'] for r in rows)}/{len(rows)} so far", file=sys.stderr, flush=True)
    timing["CMA-ES iteration, QED"] = seconds / max(iters, 1)
    n_ok = sum(r["success"] for r in rows)
    res = {"seeds": len(rows), "success": n_ok / max(len(rows), 1),
           "mean_best_qed": float(np.mean([r["best_qed"] for r in rows])) if rows else 0.0,
           "mean_similarity": float(np.mean([r["similarity"] for r in rows])) if rows else 0.0,
           "budget": cma_budget(args), "stop_at_success": args.stop_at_success,
           "mean_iterations": iters / max(len(rows), 1), "rows": rows}
    report["qed"] = res
    print(f"\n### 4a. QED optimisation ({len(rows)} MOSES test molecules with QED in [0.7, 0.8]; CMA-ES "
          f"at most {cma_budget(args)}, σ0 {args.cma_sigma}"
          f"{'; a search stops at its first success' if args.stop_at_success else ''})\n")
    best_col = "mean best QED (sim ≥ 0.4)" + (", a lower bound" if args.stop_at_success else "")
    print(table(["seeds", "success (QED ≥ 0.9, sim ≥ 0.4)", best_col, "its mean similarity", "mean iterations"],
                [[len(rows), pct(res["success"]), res["mean_best_qed"], res["mean_similarity"],
                  f"{res['mean_iterations']:.1f}"]]))


def best_improvement(seed: str, molecules, delta: float) -> tuple[float, float]:
    """(best penalized logP among ``molecules`` at similarity >= ``delta`` to ``seed`` minus the seed's,
    0 when none beats it; the similarity of that molecule, 1.0 for the seed)."""
    p0 = M.penalized_logp(seed)
    best, best_sim = p0, 1.0
    for m in molecules:
        sim = M.tanimoto(m, seed)
        if sim >= delta:
            p = M.penalized_logp(m)
            if p > best:
                best, best_sim = p, sim
    return best - p0, best_sim


def read_journal(path, checkpoint: str, budget: str) -> dict:
    """The per-seed penalized-logP results already in the JSON-lines ``path`` (none when ``path`` is
    None or absent): {(seed index, seed, bound): (improvement, similarity)}. ``budget`` names the
    CMA-ES set-up (budget, step, seed); a line written for another checkpoint or set-up is an
    error, so that one table never mixes two set-ups."""
    if not path or not os.path.exists(path):
        return {}
    done = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                key = (int(row["k"]), str(row["seed"]), float(row["delta"]))
                value = (float(row["improvement"]), float(row["similarity"]))
            except (ValueError, KeyError, TypeError):
                raise SystemExit(f"error: {path} line {n} is not a penalized-logP journal line; "
                                 "name a new --plogp-journal file")
            if row.get("checkpoint") != os.path.abspath(checkpoint) or row.get("budget") != budget:
                raise SystemExit(f"error: {path} line {n} was written for {row.get('checkpoint')} at "
                                 f"budget {row.get('budget')!r}; name a new --plogp-journal file for this run")
            done[key] = value
    return done


def append_journal(path, checkpoint: str, budget: str, key, value) -> None:
    """Append one seed's result to the JSON-lines ``path`` (nothing when None), flushed at once."""
    if not path:
        return
    k, seed, delta = key
    with open(path, "a") as f:
        f.write(json.dumps({"k": k, "seed": seed, "delta": delta, "improvement": value[0],
                            "similarity": value[1], "checkpoint": os.path.abspath(checkpoint),
                            "budget": budget}) + "\n")
        f.flush()
        os.fsync(f.fileno())


def plogp_section(mim, args, n, pool, report, timing):
    test = moses_smiles("test")
    order = np.random.default_rng(args.seed + 3).permutation(len(test))
    if pool:
        order = order[:pool]
    scored = []
    for i in order:
        c = canonical_smiles(test[i])
        if c is not None and mim.tokenizer.fits(c):
            scored.append((M.penalized_logp(c), c))
    seeds = [c for _, c in sorted(scored)[:n]]
    setup = f"{cma_budget(args)}, σ0 {args.cma_sigma}, seed {args.seed}"  # what a journal line must match
    done = read_journal(args.plogp_journal, args.checkpoint, setup)
    rows, out, iters, seconds = [], {}, 0, 0.0
    results = {delta: [] for delta in (0.4, 0.6)}  # per bound: (improvement, similarity of the best)
    for k, s in enumerate(seeds):
        for delta in results:
            key = (k, s, delta)
            if key not in done:
                obj = Objective({"plogp": 1.0}, seed=s, similarity_min=delta, penalty=100.0)
                res = _cma(mim, s, obj, args, k)
                iters, seconds = iters + res["iterations"], seconds + res["seconds"]
                done[key] = best_improvement(s, res["molecules"], delta)
                append_journal(args.plogp_journal, args.checkpoint, setup, key, done[key])
            results[delta].append(done[key])
        print(f"plogp seed {k + 1}/{len(seeds)}: improvement "
              + ", ".join(f"{results[d][-1][0]:.2f} at similarity >= {d:g}" for d in results),
              file=sys.stderr, flush=True)
    for delta, found in results.items():
        imp = [i for i, _ in found]
        sims = [sim for i, sim in found if i > 0]
        out[str(delta)] = {"mean_improvement": float(np.mean(imp)) if imp else 0.0,
                           "std_improvement": float(np.std(imp)) if imp else 0.0,
                           "success": float(np.mean([i > 0 for i in imp])) if imp else 0.0,
                           "mean_similarity": float(np.mean(sims)) if sims else float("nan")}
        o = out[str(delta)]
        rows.append([f"{delta:g}", f"{o['mean_improvement']:.2f} ± {o['std_improvement']:.2f}", pct(o["success"]),
                     o["mean_similarity"]])
    timing["CMA-ES iteration, penalized logP"] = seconds / max(iters, 1)
    out["seeds"] = len(seeds)
    out["pool"] = len(scored)
    out["mean_seed_plogp"] = float(np.mean([M.penalized_logp(s) for s in seeds])) if seeds else 0.0
    report["plogp"] = out
    print(f"\n### 4b. Penalized logP ({len(seeds)} lowest of {len(scored)} MOSES test molecules, mean "
          f"{out['mean_seed_plogp']:.2f}; CMA-ES {cma_budget(args)} per bound)\n")
    print(table(["similarity ≥", "improvement (mean ± std)", "success", "mean similarity"], rows))


def strain_comparison(mim, seeds, physics, weight=10.0, iterations=10, popsize=8, sigma=1.0,
                      similarity_min=0.4, beam_width=1, log=print) -> dict:
    """Optimise each seed twice with CMA-ES under ECFP4 similarity >= ``similarity_min``: for QED
    alone and for QED + ``weight`` × ``physics`` score; score every best molecule with ``physics``.

    ``physics``: a :class:`~mindsponge_mm.generative.scoring.PhysicsScore` (e.g. ``strain_score()``;
    its ``metric`` value is the strain). Returns ``{arm: {"smiles", "qed", "strain", "seconds"}}`` for
    the arms ``"qed"`` and ``"qed+physics"``, with lists over the seeds (strain NaN when unscorable).
    """
    arms = {"qed": {"qed": 1.0}, "qed+physics": {"qed": 1.0, "physics": float(weight)}}
    out = {}
    for arm, weights in arms.items():
        rows = {"smiles": [], "qed": [], "strain": [], "seconds": 0.0}
        for k, s in enumerate(seeds):
            obj = Objective(dict(weights), seed=s, similarity_min=similarity_min,
                            physics=physics if "physics" in weights else None)
            res = optimize_molecule(mim, s, obj, sigma, iterations, popsize, seed=k, beam_width=beam_width)
            rows["seconds"] += res["seconds"]
            ph = physics(res["best"])
            rows["smiles"].append(res["best"])
            rows["qed"].append(qed(res["best"]))
            rows["strain"].append(ph[physics.metric] if ph["scorable"] else float("nan"))
            log(f"  {arm:12s} seed {k:3d}  QED {rows['qed'][-1]:.3f}  strain {rows['strain'][-1]:.4f}  {res['best']}")
        out[arm] = rows
    return out


def physics_section(mim, args, n, report, timing):
    from mindsponge_mm.generative.scoring import strain_score

    physics = strain_score(args.physics_potential)
    seeds = qed_seeds(mim, n, args.seed)
    res = strain_comparison(mim, seeds, physics, args.physics_weight, args.physics_iterations, args.physics_popsize,
                            args.cma_sigma, 0.4, args.beam_width, log=lambda s: print(s, file=sys.stderr))
    rows = []
    for arm, r in res.items():
        st = np.array(r["strain"], float)
        ok = st[np.isfinite(st)]
        stats = [float(np.mean(ok)), float(np.median(ok)), float(np.percentile(ok, 90)), float(np.max(ok))] \
            if len(ok) else [float("nan")] * 4
        rows.append([arm, f"{len(ok)}/{len(st)}", float(np.mean(r["qed"]))] + [f"{v:.4f}" for v in stats])
        timing[f"CMA-ES iteration, {arm} ({args.physics_potential})"] = \
            r["seconds"] / max(len(seeds) * args.physics_iterations, 1)
    report["physics"] = res
    print(f"\n### 6. Strain of optimised molecules with and without the physics term ({len(seeds)} QED seeds; "
          f"CMA-ES {args.physics_iterations} × {args.physics_popsize}; strain = {args.physics_potential} relaxation "
          f"energy per heavy atom, eV; physics weight {args.physics_weight})\n")
    print(table(["objective", "scorable", "mean QED", "strain mean", "median", "90th pct", "max"], rows))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a MolMIM checkpoint (model.safetensors)")
    ap.add_argument("--sections", nargs="+", choices=ALL_SECTIONS, default=list(DEFAULT_SECTIONS),
                    help="timing is always printed for the sections that ran")
    ap.add_argument("--limit", type=int, default=None, help="cap every molecule count at N (quick run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beam-width", type=int, default=1)
    ap.add_argument("--rerank", action="store_true",
                    help="with --beam-width > 1: decode to the beam whose own code is nearest (MolMIM.decode)")
    ap.add_argument("--n-reconstruct", type=int, default=1000)
    ap.add_argument("--n-seeds", type=int, default=200)
    ap.add_argument("--samples-per-seed", type=int, default=10)
    ap.add_argument("--radii", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    ap.add_argument("--n-prior", type=int, default=10000)
    ap.add_argument("--n-qed", type=int, default=200)
    ap.add_argument("--n-plogp", type=int, default=200)
    ap.add_argument("--plogp-pool", type=int, default=0, help="test molecules ranked by penalized logP (0: all)")
    ap.add_argument("--plogp-journal", default=None,
                    help="plogp: append each seed's result to this JSON-lines file and skip the seeds "
                         "already in it, so that a long run continues where it was stopped")
    ap.add_argument("--cma-iterations", type=int, default=25)
    ap.add_argument("--cma-popsize", type=int, default=64)
    ap.add_argument("--cma-sigma", type=float, default=0.25)
    ap.add_argument("--cma-all-beams", type=int, default=0, metavar="K",
                    help="qed/plogp: decode each CMA-ES code with beam K and score all K beams")
    ap.add_argument("--cma-patience", type=int, default=None, metavar="N",
                    help="qed/plogp: restart CMA-ES at the best molecule's code after N iterations without "
                         "progress, as optimize.patience (default: only when CMA-ES stops by itself)")
    ap.add_argument("--stop-at-success", action="store_true", help="qed: end a seed's search at QED >= 0.9")
    ap.add_argument("--physics-seeds", type=int, default=10)
    ap.add_argument("--physics-potential", default="xtb", help="xtb, gfn1-xtb, emt or a potential checkpoint")
    ap.add_argument("--physics-weight", type=float, default=10.0, help="per eV of strain per heavy atom")
    ap.add_argument("--physics-iterations", type=int, default=10)
    ap.add_argument("--physics-popsize", type=int, default=8)
    ap.add_argument("--cache", default=None, help="directory of the canonical MOSES training set")
    ap.add_argument("--raw-train", action="store_true", help="compare with MOSES train strings as stored")
    ap.add_argument("--json", default=None, help="write the report here")
    args = ap.parse_args(argv)

    def cap(n):
        return min(n, args.limit) if args.limit else n

    from mindsponge_mm.generative.latent import MolMIM

    try:
        mim = MolMIM.load(args.checkpoint)
        report, timing = {"checkpoint": str(args.checkpoint), "args": vars(args)}, {}
        sections = set(args.sections)
        train = training_set(args.cache, args.raw_train, log=lambda s: print(s, file=sys.stderr)) \
            if sections & {"seeds", "prior"} else set()
        print(f"## MolMIM benchmark: {args.checkpoint} (code size {mim.code_size})")
        if "reconstruction" in sections:
            reconstruction_section(mim, cap(args.n_reconstruct), args.beam_width, args.seed, report, timing,
                                   args.rerank)
        if "seeds" in sections:
            seeds_section(mim, cap(args.n_seeds), args.samples_per_seed, args.radii, args.beam_width, args.seed,
                          train, report, timing, args.rerank)
        if "prior" in sections:
            prior_section(mim, cap(args.n_prior), args.beam_width, args.seed, train, report, timing, args.rerank)
        if "qed" in sections:
            qed_section(mim, args, cap(args.n_qed), report, timing)
        if "plogp" in sections:
            pool = args.plogp_pool or (50 * args.limit if args.limit else 0)
            plogp_section(mim, args, cap(args.n_plogp), pool, report, timing)
        if "physics" in sections:
            physics_section(mim, args, cap(args.physics_seeds), report, timing)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report["timing_s"] = timing
    print("\n### 5. Time (this machine, one process)\n")
    print(table(["step", "ms"], [[k, f"{1000 * v:.1f}"] for k, v in timing.items()]))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
