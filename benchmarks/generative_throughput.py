"""Training throughput of the generative model (molecules/s) on MOSES, for a few model sizes.

    python benchmarks/generative_throughput.py [--steps 200] [--batch-size 64] [--sample 20000]
        [--representation smiles] [--buckets 32 64 128] [--sizes default d128 d256] [--vocabulary all]

Reads MOSES train (``pip install --no-deps molsets``), builds the vocabulary over all of it, and
trains each size for ``--steps`` steps of ``--batch-size`` on a random sample of the corpus, with
the same compiled step as ``mindsponge-mm generate train``. Steps of a bucket's first batch
(compilation) are not timed. Prints molecules/s, the median step time and the hours one epoch of
the 1.58 M training molecules would take. Run it alone (see DEVELOPING.md, "Benchmarks").
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("GLOG_v", "3")

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402

from mindsponge_mm.generative.corpus import load_corpus  # noqa: E402
from mindsponge_mm.generative.latent import MolMIM  # noqa: E402
from mindsponge_mm.generative.tokenizer import tokenizer_class  # noqa: E402
from mindsponge_mm.generative.train import Trainer, epoch_plan  # noqa: E402

SIZES = {
    "default": dict(d_model=64, n_heads=4, ff_dim=128, n_latents=2, latent_dim=32, encoder_layers=1,
                    latent_layers=1, decoder_layers=2),
    "d128": dict(d_model=128, n_heads=4, ff_dim=512, n_latents=2, latent_dim=32, encoder_layers=2,
                 latent_layers=1, decoder_layers=3),
    "d256": dict(d_model=256, n_heads=8, ff_dim=1024, n_latents=2, latent_dim=64, encoder_layers=3,
                 latent_layers=2, decoder_layers=4),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sample", type=int, default=20000, help="molecules of MOSES train to draw batches from")
    parser.add_argument("--representation", default="smiles", choices=("smiles", "selfies"))
    parser.add_argument("--buckets", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--vocabulary", default="all", choices=("all", "sample"),
                        help="build the vocabulary over all of MOSES train or the sample (SELFIES: ~6 min for all)")
    args = parser.parse_args()

    t = time.perf_counter()
    corpus = load_corpus("moses")
    t_read = time.perf_counter() - t
    rng = np.random.default_rng(0)
    sample = [corpus[i] for i in rng.choice(len(corpus), args.sample, replace=False)]
    kind = tokenizer_class(args.representation)
    t = time.perf_counter()
    tok = kind.from_splits((kind.split(s) for s in (corpus if args.vocabulary == "all" else sample)), 128)
    t_vocab = time.perf_counter() - t
    lengths = np.array([len(tok.split(s)) + 2 for s in sample])
    print(f"MOSES train: {len(corpus)} molecules read in {t_read:.2f} s; {args.representation} vocabulary over "
          f"{args.vocabulary} in {t_vocab:.1f} s ({len(tok)} tokens); tokens with BOS/EOS: mean {lengths.mean():.1f}, p99 "
          f"{np.percentile(lengths, 99):.0f}, max {lengths.max()}", flush=True)
    for name in args.sizes:
        ms.set_seed(0)
        mim = MolMIM.create(tok, args.buckets, **SIZES[name])
        trainer = Trainer(mim, sample, epochs=1, batch_size=args.batch_size, lr=1e-3, warmup=10, token_dropout=0.1,
                          progress=False, log=lambda _: None)
        plan = epoch_plan(trainer.counts, args.batch_size, trainer.rng)
        compiled, times, molecules = set(), [], 0
        for length, rows in plan[: args.steps + len(args.buckets)]:
            ids, eps, keep, norms = trainer._batch(length, rows)
            start = time.perf_counter()
            loss = float(trainer.step_fn(ms.Tensor(ids), ms.Tensor(eps), ms.Tensor(keep),
                                         mim.causal(ids.shape[1] - 1), ms.Tensor(norms)).asnumpy())
            if length in compiled:
                times.append(time.perf_counter() - start)
                molecules += ids.shape[0]
            compiled.add(length)
        rate = molecules / sum(times)
        weights = sum(p.size for p in mim.model.trainable_params())
        print(f"{name:8s} {SIZES[name]}: {weights} weights, {len(times)} timed steps, {rate:.0f} molecules/s (median "
              f"step {1000 * np.median(times):.0f} ms), loss {loss:.3f}; one epoch of MOSES train "
              f"{len(corpus) / rate / 3600:.2f} h", flush=True)


if __name__ == "__main__":
    main()
