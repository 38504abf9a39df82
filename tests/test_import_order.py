"""Imports run one way (ci/check_imports.py): the package passes, and a new upward import fails.

The checker reads files with ``ast`` and imports nothing of the package, so these tests are fast.
"""
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_imports", REPO / "ci" / "check_imports.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the file runs
    spec.loader.exec_module(module)
    return module


checker = _load_checker()


def _tree(root: Path, files: dict[str, str]) -> Path:
    """Write a package ``mindsponge_mm`` under ``root`` from {relative path: source}; return its directory."""
    package = root / "mindsponge_mm"
    for rel, source in {"__init__.py": "", **files}.items():
        path = package / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return package


# a small package that follows the layer order: every import runs downward
CLEAN = {
    "units.py": "A = 1\n",
    "errors.py": "class UserError(Exception):\n    pass\n",
    "batch.py": "from .units import A\nfrom . import errors\n",
    "neighbors/__init__.py": "from .api import pairs\n",
    "neighbors/api.py": "from ..errors import UserError\n\ndef pairs():\n    return UserError\n",
    "data/__init__.py": "",
    "data/loader.py": "from ..batch import A\nimport mindsponge_mm.neighbors.api as api\n",
    "md/__init__.py": "",
    "md/job.py": "from ..data import loader\nfrom mindsponge_mm import units\n",
    "cli.py": "def main():\n    from .md.job import loader\n    return loader\n",
}


def test_the_package_follows_the_layer_order_except_for_the_listed_imports():
    report = checker.check(REPO / "mindsponge_mm")
    assert report.ok, checker.render(report)
    # every listed upward import is one the package has today, at a module the check can name
    assert {(a.file, a.imports) for a in checker.ALLOWED_UPWARD} == {
        (imp.file, imp.target) for imp, entry in report.upward}


def test_the_command_exits_0_on_the_package_and_prints_a_table():
    run = subprocess.run([sys.executable, str(REPO / "ci" / "check_imports.py")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "upward imports:" in run.stdout and "import order: OK" in run.stdout


def test_a_clean_tree_passes(tmp_path):
    report = checker.check(_tree(tmp_path, CLEAN), allowed_upward=(), allowed_cycles={})
    assert report.ok, checker.render(report)
    assert report.upward == [] and report.cycles == []


@pytest.mark.parametrize("where, source, target", [
    # a function-level relative import from layer 1 up to layer 5
    ("batch.py", "from .units import A\n\ndef f():\n    from .md.job import loader\n", "mindsponge_mm.md.job"),
    # an absolute module-level import from layer 0 up to layer 8
    ("units.py", "import mindsponge_mm.cli\nA = 1\n", "mindsponge_mm.cli"),
    # ``from .. import sub`` names the subpackage, inside a method of a class
    ("neighbors/api.py", "class C:\n    def m(self):\n        from .. import data\n", "mindsponge_mm.data"),
])
def test_a_new_upward_import_fails(tmp_path, capsys, where, source, target):
    package = _tree(tmp_path, {**CLEAN, where: source})
    report = checker.check(package, allowed_upward=(), allowed_cycles={})
    assert [imp.target for imp in report.new_upward] == [target]
    assert not report.ok
    assert checker.main(["--package", str(package)]) == 1
    assert f"NEW upward import mindsponge_mm/{where}" in capsys.readouterr().out


def test_an_allowlisted_upward_import_passes_and_a_stale_entry_fails(tmp_path):
    package = _tree(tmp_path, {**CLEAN, "batch.py": "from .units import A\nfrom .neighbors import pairs\n"})
    entry = checker.Allowed("mindsponge_mm/batch.py:2", "mindsponge_mm.neighbors", "test")
    assert checker.check(package, allowed_upward=(entry,), allowed_cycles={}).ok
    # the line drifted: still matched, with a note
    moved = checker.Allowed("mindsponge_mm/batch.py:9", "mindsponge_mm.neighbors", "test")
    report = checker.check(package, allowed_upward=(moved,), allowed_cycles={})
    assert report.ok and report.notes
    # the import is gone, the entry is not: fail, so that the list shrinks
    package = _tree(tmp_path, {**CLEAN})
    report = checker.check(package, allowed_upward=(entry,), allowed_cycles={})
    assert not report.ok and report.stale_upward == [entry]


def test_a_cycle_within_one_layer_fails_unless_listed(tmp_path):
    package = _tree(tmp_path, {**CLEAN, "nn.py": "from .so3 import Y\nX = 1\n",
                               "so3.py": "def f():\n    from .nn import X\n"})
    report = checker.check(package, allowed_upward=(), allowed_cycles={})
    assert report.upward == [] and report.new_cycles == [("nn", "so3")]
    assert not report.ok
    assert checker.check(package, allowed_upward=(), allowed_cycles={("so3", "nn"): "test"}).ok
    # a listed cycle that no longer exists fails
    report = checker.check(_tree(tmp_path / "clean", CLEAN), allowed_upward=(), allowed_cycles={("nn", "so3"): "t"})
    assert not report.ok and report.stale_cycles == [("nn", "so3")]


def test_a_listed_cycle_that_grows_is_a_new_cycle(tmp_path):
    files = {**CLEAN, "nn.py": "from .so3 import Y\nfrom .batch import A\nX = 1\n",
             "so3.py": "def f():\n    from .nn import X\n", "batch.py": "from .units import A\nfrom .so3 import f\n"}
    report = checker.check(_tree(tmp_path, files), allowed_upward=(), allowed_cycles={("nn", "so3"): "listed"})
    assert report.new_cycles == [("batch", "nn", "so3")] and report.stale_cycles == [] and not report.ok


def test_an_import_of_a_module_that_does_not_exist_fails(tmp_path):
    # ``.train`` inside nn/ is mindsponge_mm.nn.train, which is not there (``..train`` was meant)
    files = {**CLEAN, "nn/__init__.py": "", "nn/dense.py": "def f():\n    from .train import trainer\n"}
    report = checker.check(_tree(tmp_path, files), allowed_upward=(), allowed_cycles={})
    assert [imp.target for imp in report.unresolved] == ["mindsponge_mm.nn.train"] and not report.ok


def test_a_module_without_a_layer_fails(tmp_path):
    report = checker.check(_tree(tmp_path, {**CLEAN, "plugins.py": "from .units import A\n"}), allowed_upward=(),
                           allowed_cycles={})
    assert [unit for unit, _ in report.unknown_units] == ["plugins"] and not report.ok
