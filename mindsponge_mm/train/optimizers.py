"""Training optimizers by their YAML name (``training.optimizer``).

``OPTIMIZERS`` is a :class:`~mindsponge_mm.registry.Registry` of factories ``(params, lr,
weight_decay)``; the arguments are the ``training`` keys of the same names.
"""
from __future__ import annotations

from mindspore import nn

from ..registry import Registry

OPTIMIZERS = Registry("optimizer")


@OPTIMIZERS.register("adam")
def adam(params, lr: float, weight_decay: float = 0.0) -> nn.Optimizer:
    """Adam; ``weight_decay`` is added to the gradient (L2)."""
    return nn.Adam(params, learning_rate=lr, weight_decay=weight_decay)


@OPTIMIZERS.register("adamw")
def adamw(params, lr: float, weight_decay: float = 0.0) -> nn.Optimizer:
    """AdamW: Adam with decoupled weight decay."""
    return nn.AdamWeightDecay(params, learning_rate=lr, weight_decay=weight_decay)


def build_optimizer(params, name: str, lr: float, weight_decay: float) -> nn.Optimizer:
    """The optimizer ``name`` over ``params``; an unknown name is a one-line ConfigError."""
    return OPTIMIZERS.build(name, params=params, lr=lr, weight_decay=weight_decay)
