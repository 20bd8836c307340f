"""One way in for every dataset: a MedMNIST name (:mod:`dpecnn.data.medmnist_data`) or a path to
your own images (:mod:`dpecnn.data.own_data`), at a chosen size and number of channels.

``size`` None means MedMNIST's 28 × 28, or the images' own (square, common) size for own data;
``channels`` None means the dataset's own. Either way the result is a :class:`Dataset` whose
splits went through its :class:`~dpecnn.data.images.InputPipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dpecnn.data.images import InputPipeline
from dpecnn.data.medmnist_data import (
    SPLITS,
    Split,
    check_size,
    class_names,
    flags_2d,
    in_channels,
    load_split,
    to_split,
)
from dpecnn.data.own_data import content_hash, load_own, own_kind
from dpecnn.errors import DataError

CHANNELS = (1, 3)


@dataclass(frozen=True)
class Dataset:
    name: str  # the MedMNIST flag, or the folder's / file's name (never its path: cards and tables show it)
    source: str  # medmnist, folder, csv or npz
    splits: dict[str, Split]
    pipeline: InputPipeline
    split_rule: str
    content_hash: str | None  # own data: :func:`~dpecnn.data.own_data.content_hash`; MedMNIST: None (md5-checked)
    notices: tuple[str, ...] = ()  # conversions on the way in (e.g. grey images made RGB)

    @property
    def num_classes(self) -> int:
        return len(self.pipeline.class_names)

    def record(self) -> dict:
        """What a run's summary and a model card say about the data (no path, no image)."""
        return {
            "name": self.name,
            "source": self.source,
            "content_hash": self.content_hash,
            "split_rule": self.split_rule,
            "n": {s: len(d) for s, d in self.splits.items()},
        } | ({"notices": list(self.notices)} if self.notices else {})


def is_medmnist(dataset: str) -> bool:
    return dataset in flags_2d()


def dataset_name(dataset: str) -> str:
    """The MedMNIST flag, or the last component of an own dataset's path without suffix."""
    return dataset if is_medmnist(dataset) else Path(dataset).expanduser().resolve().with_suffix("").name


def check_dataset(dataset: str, size: int | None, channels: int | None) -> None:
    """One error line for a dataset that cannot be read as asked (nothing is decoded)."""
    if channels is not None and channels not in CHANNELS:
        raise DataError(f"channels must be 1 or 3, got {channels}")
    if size is not None and size < 8:
        raise DataError(f"size must be ≥ 8, got {size}")
    if is_medmnist(dataset):
        check_size(dataset, size or 28)
    elif "/" in dataset or Path(dataset).suffix or Path(dataset).expanduser().exists():
        own_kind(dataset)
    else:
        raise DataError(
            f"unknown dataset '{dataset}'; choose one of: {', '.join(flags_2d())}, or give an image "
            "folder, a .csv of paths and labels or an .npz"
        )


def data_hash(dataset: str) -> str | None:
    """The content hash of own data (None for MedMNIST)."""
    return None if is_medmnist(dataset) else content_hash(dataset)


def open_dataset(
    dataset: str, root=None, size: int | None = None, channels: int | None = None, download: bool = True, splits=SPLITS
) -> Dataset:
    """The ``splits`` of ``dataset`` through one pipeline (see module docstring); own data are
    read whole (the split is drawn over all images), MedMNIST only the splits asked for."""
    check_dataset(dataset, size, channels)
    if is_medmnist(dataset):
        size, channels = size or 28, channels or in_channels(dataset)
        splits = {s: load_split(dataset, s, root, download, size, channels) for s in splits}
        return Dataset(
            dataset,
            "medmnist",
            splits,
            InputPipeline(size, channels, class_names(dataset)),
            "given (MedMNIST's official splits)",
            None,
        )
    own = load_own(dataset, size, channels)
    splits = {s: to_split(own.images[s], own.labels[s], own.channels) for s in SPLITS}
    for s, split in splits.items():
        if not len(split):
            raise DataError(f"{dataset}: the {s} split is empty")
    return Dataset(
        dataset_name(dataset),
        own_kind(dataset),
        splits,
        InputPipeline(own.size, own.channels, own.class_names),
        own.split_rule,
        content_hash(dataset),
        own.notices,
    )


def config_split(cfg, split: str) -> Split:
    """One split of the data a run (or probe) configuration names: its ``dataset``, ``data_root``,
    ``size`` and ``channels``."""
    return open_dataset(cfg.dataset, cfg.data_root, cfg.size, cfg.channels, splits=(split,)).splits[split]


def summary(
    dataset: str, root=None, size: int | None = None, channels: int | None = None, download: bool = True
) -> dict:
    """Split sizes, class names and counts, image format and split rule of a dataset, for a quick look."""
    import torch

    data = open_dataset(dataset, root, size, channels, download)
    n_cls = data.num_classes
    return {
        "dataset": data.name,
        "source": data.source,
        "content_hash": data.content_hash,
        "input": data.pipeline.to_dict(),
        "split_rule": data.split_rule,
        "splits": {
            s: {"n": len(d), "class_counts": torch.bincount(d.labels, minlength=n_cls).tolist()}
            for s, d in data.splits.items()
        },
        "image_shape": list(data.splits["train"].images.shape[1:]),
    }
