"""Machine-learned potentials: SchNet, PaiNN, MACE, the Potential wrapper and the registry."""
from . import mace, painn, schnet  # noqa: F401  (registers the models)
from .base import AtomisticModel
from .potential import Potential, read_checkpoint
from .registry import MODELS, build, register
from ..potentials import register as _register_potential


@_register_potential("checkpoint")
def _checkpoint(path):
    """``potential: {type: checkpoint, path: model.safetensors}``: a learned potential from its file."""
    return Potential.load(path)

__all__ = ["AtomisticModel", "Potential", "read_checkpoint", "MODELS", "build", "register"]
