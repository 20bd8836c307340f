"""Data in: MedMNIST through the medmnist package or your own images (one entry,
:func:`~dpecnn.data.datasets.open_dataset`), the input pipeline, generated test files, augmentation."""

from dpecnn.data.augment import AugmentConfig, apply_augmentations, augment_views, draw_augmentations
from dpecnn.data.datasets import Dataset, dataset_name, open_dataset, summary
from dpecnn.data.images import InputPipeline
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
)
from dpecnn.data.synthetic import write_image_folder, write_synthetic_npz

__all__ = [
    "ENV_ROOT",
    "AugmentConfig",
    "Split",
    "apply_augmentations",
    "augment_views",
    "draw_augmentations",
    "dataset_info",
    "flags_2d",
    "in_channels",
    "load_dataset",
    "load_split",
    "num_classes",
    "resolve_root",
    "summary",
    "write_image_folder",
    "write_synthetic_npz",
    "Dataset",
    "dataset_name",
    "open_dataset",
    "InputPipeline",
]
