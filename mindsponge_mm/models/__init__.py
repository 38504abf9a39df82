"""Machine-learned potentials: SchNet, PaiNN, MACE, the Potential wrapper and the registry."""
from . import mace, painn, schnet  # noqa: F401  (registers the models)
from .base import AtomisticModel
from .loading import load_potential
from .potential import Potential, read_checkpoint
from .registry import MODELS, build, register
from ..potentials import register as _register_potential


@_register_potential("checkpoint")
def _checkpoint(path, dtype=None):
    """``potential: {type: checkpoint, path: model.safetensors}``: a learned potential from its file."""
    return load_potential(str(path), dtype=dtype)


__all__ = ["AtomisticModel", "Potential", "load_potential", "read_checkpoint", "MODELS", "build", "register"]
