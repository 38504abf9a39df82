"""mindsponge_mm: MindSpore-native machine-learned potentials and molecular dynamics.

Units everywhere: Å, eV, amu, K, fs; forces eV/Å; stress eV/Å³ (ASE sign convention).
"""
import os as _os

# MindSpore logs a lot at start-up; keep only errors unless the user asked otherwise.
_os.environ.setdefault("GLOG_v", "3")

from . import runtime as _runtime  # noqa: E402

_runtime.configure()  # host-blocking graph runs on the CPU: 4x faster train steps (runtime.py)

__version__ = "0.1.0"
