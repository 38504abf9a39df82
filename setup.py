"""Install mindsponge_mm and the `mindsponge-mm` command."""
import re
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildWithKernels(build_py):
    """Ship the C++ kernel sources (``kernels/cpu/*.cc``) inside the package as ``mindsponge_mm/_kernels/cpu/``.

    ``kernel_build.find_source`` compiles them with g++ on first use in a non-editable install. Only the
    kernels that the package loads are shipped: ``kernels/cuda/`` has no loader (no GPU MindSpore build
    here; the GPU target runs the MindSpore-ops neighbor search) and ``kernels/ascend/`` is installed as a
    CANN custom-operator package of its own. Both stay in the repository with their test drivers
    (ci/kernels.sh; kernels/README.md).
    """

    def run(self):
        super().run()
        for source in sorted(Path("kernels/cpu").glob("*.cc")):
            target = Path(self.build_lib) / "mindsponge_mm" / "_kernels" / "cpu" / source.name
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))


version = re.search(r'__version__ = "([^"]+)"', Path("mindsponge_mm/__init__.py").read_text()).group(1)

setup(
    name="mindsponge_mm",
    version=version,
    description="MindSpore-native machine-learned interatomic potentials and molecular dynamics",
    long_description=Path("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["mindsponge_mm", "mindsponge_mm.*"]),
    package_data={"mindsponge_mm": ["data/bundled/*.h5", "data/pretrained/*.safetensors", "data/pretrained/*.md"]},
    install_requires=[
        "mindspore==2.10.0",
        "numpy<2",
        "ase>=3.23",
        "rdkit",
        "h5py>=3.8",
        "safetensors>=0.4",  # checkpoints (weights + JSON metadata, no pickle)
        "pyyaml>=6",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "cma>=3.3",  # CMA-ES in the latent space of the generative model
        "selfies>=2.1",  # the tokens of the shipped generative model (mindsponge_mm/data/pretrained)
    ],
    extras_require={
        # tblite: the reference-data tests
        "test": ["pytest>=7.4", "hypothesis>=6.80", "tblite>=0.3"],
        "reference": ["tblite>=0.3"],
        # kept for old install lines: selfies is a core dependency now (the shipped model uses it)
        "selfies": [],
        # The MOSES corpus (corpus.path: moses) is read from the data files of the molsets package, whose
        # own requirements (old torch packages) are not needed; an extra cannot say --no-deps, so it is
        # installed by hand: pip install --no-deps molsets
        # `mindsponge-mm convert mace MODEL.model`: reading mace-torch's pickled model files. A fresh
        # resolve with numpy<2 picks pandas and torchmetrics that import (checked 2026-12-06: pandas
        # 3.0.6 and 2.3.3, torchmetrics 1.9.0), so neither is pinned. CPU-only torch:
        # pip install -e ".[mace]" --extra-index-url https://download.pytorch.org/whl/cpu
        "mace": ["torch==2.13.0", "mace-torch==0.3.16"],
        # benchmarks/generative.py's FCD column (the fcd package's ChemNet runs on torch; CPU-only torch
        # as for "mace"); fcd 1.2.2 and torch 2.13.0 import beside mindspore 2.10.0 (checked 2026-12-07)
        "fcd": ["torch==2.13.0", "fcd==1.2.2"],
    },
    cmdclass={"build_py": BuildWithKernels},
    entry_points={"console_scripts": ["mindsponge-mm = mindsponge_mm.cli:main"]},
)
