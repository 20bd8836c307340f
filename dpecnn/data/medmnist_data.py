"""MedMNIST loading through the ``medmnist`` package.

Root resolution order: explicit ``root`` argument > ``$DPECNN_DATA_ROOT`` > medmnist's
default (``~/.medmnist``). A file present on disk is used as is (its md5 is checked against
``medmnist.INFO`` and a mismatch only warns); a missing file is downloaded by medmnist when
``download=True``. Every failure becomes one :class:`~dpecnn.errors.DataError` line.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import medmnist
import numpy as np
import torch
from medmnist.info import DEFAULT_ROOT, INFO

from dpecnn.errors import DataError

SPLITS = ("train", "val", "test")
ENV_ROOT = "DPECNN_DATA_ROOT"


def flags_2d() -> list[str]:
    """The 2D single-label MedMNIST flags of the installed medmnist package (multi-class,
    binary and ordinal tasks; multi-label ChestMNIST needs another loss and is left out)."""
    return sorted(f for f in INFO if not f.endswith("3d") and not INFO[f]["task"].startswith("multi-label"))


def dataset_info(flag: str) -> dict:
    """medmnist's metadata for ``flag``; unknown or unsupported flags raise :class:`DataError`."""
    if flag not in flags_2d():
        raise DataError(f"unknown dataset '{flag}'; choose one of: {', '.join(flags_2d())}")
    return INFO[flag]


def num_classes(flag: str) -> int:
    return len(dataset_info(flag)["label"])


def in_channels(flag: str) -> int:
    return int(dataset_info(flag)["n_channels"])


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """Explicit argument > ``$DPECNN_DATA_ROOT`` > medmnist's default root."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(ENV_ROOT):
        return Path(os.environ[ENV_ROOT]).expanduser()
    return Path(DEFAULT_ROOT).expanduser()


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _ensure_file(flag: str, root: Path, download: bool) -> Path:
    path = root / f"{flag}.npz"
    if path.exists():
        expected = INFO[flag]["MD5"]
        actual = file_md5(path)
        if actual != expected:
            warnings.warn(
                f"{path}: md5 {actual} differs from medmnist's {expected} "
                "(a re-saved or modified file); using it anyway",
                stacklevel=3,
            )
        return path
    if download:
        try:
            root.mkdir(parents=True, exist_ok=True)
            getattr(medmnist, INFO[flag]["python_class"])(split="train", root=str(root), download=True)
            return path
        except Exception:  # medmnist wraps every network failure in a multi-line RuntimeError
            path.unlink(missing_ok=True)  # never leave a partial download that looks complete
    how = "download failed (no network?)" if download else "download disabled"
    raise DataError(
        f"{flag}: file {path} not found and {how}; place {flag}.npz from MedMNIST v2 there, "
        f"or pass --data-root / set {ENV_ROOT} to the folder that holds it"
    )


@dataclass(frozen=True)
class Split:
    """One split as tensors: images float32 (N, C, 28, 28) in [-1, 1], labels int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None, seed: int = 0) -> "Split":
        """A class-agnostic random subset of at most ``n`` samples (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return Split(self.images[idx], self.labels[idx])


def to_tensors(images: np.ndarray, labels: np.ndarray, channels: int) -> Split:
    """uint8 HW / HWC images → float (N, C, H, W) scaled to [-1, 1]; labels (N, 1) → (N,)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(127.5).sub_(1.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    if x.shape[1] != channels:
        raise DataError(f"images have {x.shape[1]} channels, medmnist INFO says {channels}")
    y = torch.from_numpy(np.asarray(labels).reshape(len(labels), -1)[:, 0].astype(np.int64))
    return Split(x.contiguous(), y)


def load_split(flag: str, split: str, root=None, download: bool = True) -> Split:
    """Load one split of a 2D MedMNIST dataset (28×28) through medmnist's dataset class."""
    info = dataset_info(flag)
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}'; choose one of: {', '.join(SPLITS)}")
    path = _ensure_file(flag, resolve_root(root), download)
    cls = getattr(medmnist, info["python_class"])
    try:
        ds = cls(split=split, root=str(path.parent), download=False)
        images, labels = np.asarray(ds.imgs), np.asarray(ds.labels)
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as exc:
        raise DataError(f"{flag}: {path} is not a readable MedMNIST npz ({type(exc).__name__}: {exc})") from None
    split_data = to_tensors(images, labels, int(info["n_channels"]))
    n_cls = len(info["label"])
    if len(split_data) and (split_data.labels.min() < 0 or split_data.labels.max() >= n_cls):
        raise DataError(f"{flag}: {path} has labels outside 0..{n_cls - 1}")
    return split_data


def load_dataset(flag: str, root=None, download: bool = True) -> dict[str, Split]:
    return {s: load_split(flag, s, root, download) for s in SPLITS}


def summary(flag: str, root=None, download: bool = True) -> dict:
    """Split sizes, class counts and image format of a dataset, for a quick look."""
    info = dataset_info(flag)
    data = load_dataset(flag, root, download)
    n_cls = len(info["label"])
    return {
        "dataset": flag,
        "task": info["task"],
        "channels": int(info["n_channels"]),
        "classes": {int(k): v for k, v in info["label"].items()},
        "splits": {
            s: {"n": len(d), "class_counts": torch.bincount(d.labels, minlength=n_cls).tolist()}
            for s, d in data.items()
        },
        "image_shape": list(data["train"].images.shape[1:]),
    }
