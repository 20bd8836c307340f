"""One way in for every dataset: a MedMNIST name (:mod:`dpecnn.data.medmnist_data`) or a path to
your own images (:mod:`dpecnn.data.own_data`), at a chosen size and number of channels.

A name is resolved once into a :class:`DataSource` (what it is and where), which checks the
requested size and channels, gives the content hash and opens the splits; nothing downstream
decides again whether a name is MedMNIST or own data.

``size`` None means MedMNIST's 28 × 28, or the images' own (square, common) size for own data;
``channels`` None means the dataset's own. Either way the result is a :class:`Dataset` whose
splits went through its :class:`~dpecnn.data.images.InputPipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dpecnn.data.images import InputPipeline
from dpecnn.data.medmnist_data import SPLITS, check_size, class_names, flags_2d, in_channels, load_split
from dpecnn.data.own_data import content_hash, load_own, own_kind
from dpecnn.data.split import Split, to_split
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


@dataclass(frozen=True)
class DataSource:
    """A dataset named once, resolved into what it is and where: the one pass from a name (a MedMNIST
    flag or a path) to its checks, its content hash and its splits, without deciding again."""

    kind: str  # "medmnist", or own data: "folder", "csv" or "npz"
    location: str  # the MedMNIST flag, or the own data's absolute path
    root: str | None = None  # MedMNIST's data root (:func:`~dpecnn.data.medmnist_data.resolve_root`)

    @classmethod
    def resolve(cls, dataset: str, root=None) -> DataSource:
        """One error line for a name that is neither a MedMNIST flag nor existing own data."""
        if is_medmnist(dataset):
            return cls("medmnist", dataset, None if root is None else str(root))
        if "/" in dataset or Path(dataset).suffix or Path(dataset).expanduser().exists():
            return cls(own_kind(dataset), str(Path(dataset).expanduser().resolve()))
        raise DataError(
            f"unknown dataset '{dataset}'; choose one of: {', '.join(flags_2d())}, or give an image "
            "folder, a .csv of paths and labels or an .npz"
        )

    @property
    def name(self) -> str:
        """The MedMNIST flag, or the own data's file or folder name without suffix (never its path)."""
        return dataset_name(self.location)

    def check(self, size: int | None, channels: int | None) -> None:
        """One error line for a size or channel count this source cannot be read at (nothing is decoded)."""
        if channels is not None and channels not in CHANNELS:
            raise DataError(f"channels must be 1 or 3, got {channels}")
        if size is not None and size < 8:
            raise DataError(f"size must be ≥ 8, got {size}")
        if self.kind == "medmnist":
            check_size(self.location, size or 28)

    def content_hash(self) -> str | None:
        """Own data: :func:`~dpecnn.data.own_data.content_hash`; MedMNIST: None (its files are md5-checked)."""
        return None if self.kind == "medmnist" else content_hash(self.location, self.kind)

    def open(self, size: int | None = None, channels: int | None = None, download: bool = True, splits=SPLITS):
        """The ``splits`` through one pipeline (module docstring); own data are read whole (the split
        is drawn over all images), MedMNIST only the splits asked for."""
        self.check(size, channels)
        if self.kind == "medmnist":
            flag, size, channels = self.location, size or 28, channels or in_channels(self.location)
            return Dataset(
                flag,
                "medmnist",
                {s: load_split(flag, s, self.root, download, size, channels) for s in splits},
                InputPipeline(size, channels, class_names(flag)),
                "given (MedMNIST's official splits)",
                None,
            )
        own = load_own(self.location, size, channels, self.kind)
        opened = {s: to_split(own.images[s], own.labels[s], own.channels) for s in SPLITS}
        for s, split in opened.items():
            if not len(split):
                raise DataError(f"{self.location}: the {s} split is empty")
        return Dataset(
            self.name,
            self.kind,
            opened,
            InputPipeline(own.size, own.channels, own.class_names),
            own.split_rule,
            self.content_hash(),
            own.notices,
        )


def dataset_name(dataset: str) -> str:
    """The MedMNIST flag, or the last component of an own dataset's path without suffix."""
    return dataset if is_medmnist(dataset) else Path(dataset).expanduser().resolve().with_suffix("").name


def open_dataset(
    dataset: str, root=None, size: int | None = None, channels: int | None = None, download: bool = True, splits=SPLITS
) -> Dataset:
    """:meth:`DataSource.open` of ``dataset`` (a MedMNIST flag or a path)."""
    return DataSource.resolve(dataset, root).open(size, channels, download, splits)


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
        "image_shape": list(data.splits["train"].pixels.shape[1:]),  # (H, W, C) as stored
    }
