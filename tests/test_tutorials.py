"""Every tutorial runs as a user would run it, in its quick version. Each tutorial asserts what it
prints (same pairs as ASE, symmetry residuals, finite-difference forces, NVE drift, mean temperatures,
relaxed lattice constants, ...) with bounds that follow from the dtype and the physics, so a wrong
number fails the test, not only a crash."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*.py"))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path):
    env = {**os.environ, "GLOG_v": "3", "XDG_CACHE_HOME": str(tmp_path), "MINDSPONGE_MM_TUTORIAL_QUICK": "1"}
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


def test_tutorials_exist():
    assert any(p.name.startswith("01_data") for p in TUTORIALS)
