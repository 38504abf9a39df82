"""Training: loss, compiled step (forces by autodiff, then double backward), EMA, schedules,
metrics, the Trainer with checkpoints/resume, and data parallelism over ``msrun``."""
from .ema import EMA
from .loss import PotentialLoss, loss_inputs
from .metrics import ErrorMetrics, format_table
from .schedules import LRSchedule, WeightSchedule
from .step import TrainStep
from .trainer import Trainer, TrainingDiverged

__all__ = ["EMA", "ErrorMetrics", "LRSchedule", "PotentialLoss", "TrainStep", "Trainer", "TrainingDiverged",
           "WeightSchedule", "format_table", "loss_inputs"]
