"""Machine-learned potentials: SchNet, PaiNN, a MACE-style model, the Potential wrapper and the registry."""
from . import mace, painn, schnet  # noqa: F401  (registers the models)
from .base import AtomisticModel
from .potential import Potential, read_checkpoint
from .registry import MODELS, build, register

__all__ = ["AtomisticModel", "Potential", "read_checkpoint", "MODELS", "build", "register"]
