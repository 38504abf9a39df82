"""Datasets, file formats, splits, statistics, transforms and batching."""
from .collate import collate
from .dataset import AtomsDataset, PropertyInfo, bundled_datasets
from .loader import AtomsLoader, LoaderShard, ShardBatch
from .splits import load_split, split
from .statistics import Statistics, average_neighbors, compute_statistics, statistics
from .transforms import (
    AddOffsets, CastDtype, Compose, RemoveOffsets, ScaleProperty, SubtractCenterOfMass, Transform, WrapPositions,
)

__all__ = [
    "collate", "AtomsDataset", "PropertyInfo", "bundled_datasets", "AtomsLoader", "LoaderShard", "ShardBatch",
    "split", "load_split", "Statistics", "average_neighbors", "compute_statistics", "statistics", "Transform",
    "Compose", "RemoveOffsets", "AddOffsets",
    "ScaleProperty", "CastDtype", "WrapPositions", "SubtractCenterOfMass",
]
