"""Data in: MedMNIST through the medmnist package or your own images (one entry,
:func:`~dpecnn.data.datasets.open_dataset`), the input pipeline, generated test files, augmentation."""

from dpecnn.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "augment": ("AugmentConfig", "apply_augmentations", "augment_views", "draw_augmentations"),
        "datasets": ("DataSource", "Dataset", "dataset_name", "open_dataset", "summary"),
        "images": ("InputPipeline",),
        "medmnist_data": (
            "ENV_ROOT",
            "dataset_info",
            "flags_2d",
            "in_channels",
            "load_dataset",
            "load_split",
            "num_classes",
            "resolve_root",
        ),
        "split": ("Split",),
        "synthetic": ("write_image_folder", "write_synthetic_npz"),
    },
)
