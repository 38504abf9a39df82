"""CMA-ES (the ``cma`` package) in latent space: a generic maximizer and the molecule optimizer.

Codes are numpy arrays [D]; a population is [P, D].
"""
from __future__ import annotations

from typing import Callable

import time

import numpy as np

from ..errors import UserError
from ..interfaces.rdkit import canonical_smiles


def maximize(objective: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, sigma0: float = 0.5,
             iterations: int = 50, popsize: int | None = None, seed: int = 0,
             callback: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
             target: float | None = None, patience: int | None = None,
             restart_point: Callable[[], np.ndarray] | None = None) -> dict:
    """Maximize ``objective`` (population [P, D] -> scores [P]) with CMA-ES from ``x0`` [D], step ``sigma0``.

    Runs ``iterations`` generations, or stops once a score reaches ``target``. When CMA-ES stops by
    itself before the budget is spent (converged, or a flat fitness: every code of a generation
    decodes to molecules of one score), or when the best score has not improved for ``patience``
    generations (``None``: never), a new CMA-ES starts with step ``sigma0`` and a new random seed
    from ``restart_point()`` (when it is given and returns a point; else from the best point so
    far), so that the whole budget is searched.

    Returns ``{"x": best point [D], "score": best score, "history": best score per iteration,
    "evaluations": count, "restarts": count}``. The same ``seed`` gives the same run.
    """
    import cma

    x0 = np.asarray(x0, dtype=float).reshape(-1)
    opts = {"seed": int(seed) + 1, "maxiter": int(iterations), "verbose": -9, "verb_disp": 0, "verb_log": 0}
    if popsize:
        opts["popsize"] = int(popsize)
    es = cma.CMAEvolutionStrategy(x0, float(sigma0), opts)
    best_x, best_f, history, evaluations, restarts, stalled = x0.copy(), -np.inf, [], 0, 0, 0
    for it in range(int(iterations)):
        pop = np.asarray(es.ask())
        scores = np.asarray(objective(pop), dtype=float)
        evaluations += len(pop)
        k = int(np.argmax(scores))
        stalled += 1
        if scores[k] > best_f:
            best_f, best_x, stalled = float(scores[k]), pop[k].copy(), 0
        es.tell(list(pop), list(-scores))
        history.append(best_f)
        if callback is not None:
            callback(it, pop, scores)
        if target is not None and best_f >= target:
            break
        stuck = patience is not None and stalled >= int(patience)
        if (es.stop() or stuck) and it + 1 < int(iterations):  # maxiter equals the budget: es.stop() is never that
            restarts += 1
            stalled = 0
            start = restart_point() if restart_point is not None else None
            start = best_x if start is None else start
            es = cma.CMAEvolutionStrategy(np.asarray(start, dtype=float).reshape(-1), float(sigma0),
                                          {**opts, "seed": opts["seed"] + 7919 * restarts})
    return {"x": best_x, "score": best_f, "history": history, "evaluations": evaluations, "restarts": restarts}


def optimize_molecule(mim, seed_smiles: str, objective, sigma0: float = 1.0, iterations: int = 20,
                      popsize: int = 16, seed: int = 0, beam_width: int = 1, target: float | None = None,
                      all_beams: bool = False, patience: int | None = None) -> dict:
    """CMA-ES over latent codes starting at the seed's code; every decoded molecule is scored by ``objective``.

    ``all_beams``: score every beam of each code and give the code its best
    beam's score, so that each code proposes ``beam_width`` molecules instead of one (with
    ``beam_width`` 1 the same as greedy decoding). ``patience``: when the best score has not
    improved for that many generations (``None``: never), CMA-ES restarts with step ``sigma0``. Every
    restart (also when CMA-ES stops by itself) starts at the code of the best molecule so far: its
    encoding, not the sampled code that decoded to it.

    ``objective``: list of N SMILES -> scores [N] (e.g. :class:`~.scoring.Objective`).
    Returns ``{"seed", "best", "best_score", "seed_score", "history", "molecules", "iterations",
    "evaluations", "restarts", "seconds"}`` where ``molecules`` maps each distinct valid canonical SMILES seen to
    its score, ``iterations`` counts CMA-ES generations run (fewer when a score reaches ``target``:
    the search stops there) and ``seconds`` is the wall time of the
    search (encoding, decoding and scoring). Decoding stops after
    twice the seed's token count plus 10 (a similar molecule is never that much longer).
    """
    t0 = time.perf_counter()
    seed_c = canonical_smiles(seed_smiles) or seed_smiles
    x0 = mim.encode([seed_c])[0]
    tokenizer = getattr(mim, "tokenizer", None)
    max_tokens = 2 * (len(tokenizer.encode(seed_c)) - 2) + 10 if tokenizer is not None else None
    seen: dict[str, float] = {}

    def score_codes(pop: np.ndarray) -> np.ndarray:
        codes = pop.astype(np.float32)
        beams = mim.decode_beams(codes, beam_width, max_tokens=max_tokens) if all_beams else \
            [[s] for s in mim.decode(codes, beam_width, max_tokens=max_tokens)]
        canon = [[canonical_smiles(s) for s in texts] for texts in beams]
        todo = sorted({c for row in canon for c in row if c is not None and c not in seen})
        if todo:
            seen.update(zip(todo, map(float, objective(todo))))
        invalid = float(getattr(objective, "invalid_score", -10.0))
        return np.array([max(seen[c] if c is not None else invalid for c in row) for row in canon])

    seed_score = float(objective([seed_c])[0])

    def best_seen() -> tuple[str, float] | None:
        return max(seen.items(), key=lambda kv: kv[1]) if seen else None

    def best_code() -> np.ndarray | None:
        best = best_seen()
        if best is None:
            return None
        try:
            return mim.encode([best[0]])[0]
        except UserError:  # longer than the tokenizer allows: restart at the sampled code instead
            return None

    result = maximize(score_codes, x0, sigma0, iterations, popsize, seed, target=target, patience=patience,
                      restart_point=best_code)
    best = best_seen() or (seed_c, seed_score)
    if best[1] < seed_score:
        best = (seed_c, seed_score)
    return {"seed": seed_c, "best": best[0], "best_score": best[1], "seed_score": seed_score,
            "history": result["history"], "molecules": seen, "iterations": len(result["history"]),
            "evaluations": result["evaluations"], "restarts": result["restarts"],
            "seconds": time.perf_counter() - t0}
