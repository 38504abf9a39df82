"""benchmarks/generative.py's penalized-logP journal: a long run keeps each seed's result as it goes,
continues where it stopped, and never mixes results of another checkpoint or budget."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "generative.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("generative_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_journal_lines_read_back_as_written(bench, tmp_path):
    path = tmp_path / "plogp.jsonl"
    assert bench.read_journal(None, "m.safetensors", "25 × 64") == {}
    assert bench.read_journal(str(path), "m.safetensors", "25 × 64") == {}  # not there yet
    bench.append_journal(str(path), "m.safetensors", "25 × 64", (0, "CCO", 0.4), (1.5, 0.45))
    bench.append_journal(str(path), "m.safetensors", "25 × 64", (0, "CCO", 0.6), (0.0, 1.0))
    bench.append_journal(None, "m.safetensors", "25 × 64", (1, "CCN", 0.4), (2.0, 0.5))  # no journal: nothing
    assert bench.read_journal(str(path), "m.safetensors", "25 × 64") == {
        (0, "CCO", 0.4): (1.5, 0.45), (0, "CCO", 0.6): (0.0, 1.0)}


def test_a_journal_of_another_setup_or_a_foreign_file_is_a_one_line_error(bench, tmp_path):
    path = tmp_path / "plogp.jsonl"
    bench.append_journal(str(path), "m.safetensors", "25 × 64", (0, "CCO", 0.4), (1.5, 0.45))
    for checkpoint, budget in (("m.safetensors", "10 × 16"), ("other.safetensors", "25 × 64")):
        with pytest.raises(SystemExit, match="name a new --plogp-journal file") as err:
            bench.read_journal(str(path), checkpoint, budget)
        assert "\n" not in str(err.value)
    path.write_text(json.dumps({"k": 0}) + "\n")
    with pytest.raises(SystemExit, match="line 1 is not a penalized-logP journal line"):
        bench.read_journal(str(path), "m.safetensors", "25 × 64")


def test_best_improvement_counts_only_molecules_within_the_bound(bench):
    seed = "CCCCCCO"
    improvement, similarity = bench.best_improvement(seed, [seed], 0.4)
    assert (improvement, similarity) == (0.0, 1.0)  # the seed itself: no improvement
    far = "c1ccc2ccccc2c1"  # higher penalized logP, but dissimilar
    assert bench.M.penalized_logp(far) > bench.M.penalized_logp(seed)
    assert bench.best_improvement(seed, [far], 0.4) == (0.0, 1.0)
    near = "CCCCCCCO"
    best = max((near, far), key=bench.M.penalized_logp)
    gain, sim = bench.best_improvement(seed, [near, far], 0.0)  # no bound: the better of the two
    assert gain == pytest.approx(bench.M.penalized_logp(best) - bench.M.penalized_logp(seed))
    assert sim == pytest.approx(bench.M.tanimoto(best, seed))
