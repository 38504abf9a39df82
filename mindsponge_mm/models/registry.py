"""The model registry: YAML names -> classes; ``build(name, **hyperparameters)``.

``MODELS`` is a :class:`~mindsponge_mm.registry.Registry`; ``register`` and ``build`` are its
methods, so a model's constructor signature is the schema of the ``model`` section.
"""
from __future__ import annotations

from ..registry import Registry

MODELS = Registry("model", noun="hyperparameter")

register = MODELS.register  # class decorator: ``@register("painn")``
build = MODELS.build  # ``build(name, **hyperparameters)``; unknown names and keys are one-line ConfigErrors
