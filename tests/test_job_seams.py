"""The seams between jobs and what they drive: models' data-dependent defaults."""
import ast
from pathlib import Path

import pytest

from mindsponge_mm.data import AtomsDataset, average_neighbors
from mindsponge_mm.models import MODELS, AtomisticModel

PACKAGE = Path(__file__).resolve().parents[1] / "mindsponge_mm"


@pytest.fixture(scope="module")
def ethanol():
    return AtomsDataset.open("bundled:ethanol")


# ----------------------------------------------------------------------------- model defaults
def test_models_fill_in_their_data_dependent_defaults(ethanol):
    assert AtomisticModel.defaults_from_data(ethanol, 4.0, {}) == {}
    assert MODELS["schnet"].defaults_from_data(ethanol, 4.0, {}) == {}
    found = MODELS["mace"].defaults_from_data(ethanol, 4.0, {"n_channels": 8})
    assert found == {"avg_num_neighbors": average_neighbors(ethanol, 4.0)}
    assert 1.0 < found["avg_num_neighbors"] < 9.0  # ethanol has 9 atoms
    assert MODELS["mace"].defaults_from_data(ethanol, 4.0, {"avg_num_neighbors": 3.0}) == {}


def test_no_job_tests_a_model_name():
    """jobs, training, MD and the CLI never compare anything with a registered model's name."""
    names = {"mace", "painn", "schnet"}
    files = [PACKAGE / "jobs.py", PACKAGE / "cli.py", *(PACKAGE / "train").glob("*.py"),
             *(PACKAGE / "md").glob("*.py")]
    hits = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                operands += [e for o in operands if isinstance(o, (ast.Tuple, ast.List, ast.Set)) for e in o.elts]
                if any(isinstance(o, ast.Constant) and o.value in names for o in operands):
                    hits.append(f"{path.name}:{node.lineno}")
    assert not hits, hits
