"""Datasets, file formats, splits, statistics, transforms and batching."""
from .collate import collate
from .dataset import AtomsDataset, PropertyInfo, bundled_datasets
from .loader import AtomsLoader
from .splits import load_split, split
from .statistics import Statistics, compute_statistics, statistics
from .transforms import (
    AddOffsets, CastDtype, Compose, RemoveOffsets, ScaleProperty, SubtractCenterOfMass, Transform, WrapPositions,
)

__all__ = [
    "collate", "AtomsDataset", "PropertyInfo", "bundled_datasets", "AtomsLoader", "split", "load_split",
    "Statistics", "compute_statistics", "statistics", "Transform", "Compose", "RemoveOffsets", "AddOffsets",
    "ScaleProperty", "CastDtype", "WrapPositions", "SubtractCenterOfMass",
]
