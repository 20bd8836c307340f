"""MedMNIST data through the medmnist package, generated test files, augmentation."""

from dpecnn.data.augment import AugmentConfig, apply_augmentations, augment_views, draw_augmentations
from dpecnn.data.medmnist_data import (
    ENV_ROOT,
    Split,
    dataset_info,
    flags_2d,
    in_channels,
    load_dataset,
    load_split,
    num_classes,
    resolve_root,
    summary,
)
from dpecnn.data.synthetic import write_synthetic_npz

__all__ = [
    "ENV_ROOT", "AugmentConfig", "Split", "apply_augmentations", "augment_views", "draw_augmentations", "dataset_info", "flags_2d",
    "in_channels", "load_dataset", "load_split", "num_classes", "resolve_root", "summary",
    "write_synthetic_npz",
]
