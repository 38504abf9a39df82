"""Training: losses and the compiled training step (forces by autodiff, then double backward)."""
from .step import EnergyForceLoss, TrainStep, loss_inputs

__all__ = ["EnergyForceLoss", "TrainStep", "loss_inputs"]
