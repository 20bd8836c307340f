"""MedMNIST loading through the ``medmnist`` package, at any of its sizes (28, 64, 128, 224).

Root resolution order: explicit ``root`` argument > ``$DPECNN_DATA_ROOT`` > medmnist's
default (``~/.medmnist``). A file present on disk is used as is (its md5 is checked against
``medmnist.INFO`` and a mismatch only warns); a missing file is downloaded by medmnist when
``download=True``. Every failure becomes one :class:`~dpecnn.errors.DataError` line.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import medmnist
import numpy as np
from medmnist.info import DEFAULT_ROOT, INFO

from dpecnn.data.split import Split, to_split
from dpecnn.errors import DataError
from dpecnn.io import file_digest

SPLITS = ("train", "val", "test")
ENV_ROOT = "DPECNN_DATA_ROOT"
SIZES = (28, 64, 128, 224)  # MedMNIST+ (medmnist's ``size``): one file per size, e.g. bloodmnist_64.npz


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


def class_names(flag: str) -> tuple[str, ...]:
    """medmnist's class names in label order."""
    labels = dataset_info(flag)["label"]
    return tuple(labels[k] for k in sorted(labels, key=int))


def check_size(flag: str, size: int) -> None:
    if size not in SIZES:
        raise DataError(f"{flag}: MedMNIST has sizes {', '.join(map(str, SIZES))}, not {size}")


def file_name(flag: str, size: int = 28) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """Explicit argument > ``$DPECNN_DATA_ROOT`` > medmnist's default root."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(ENV_ROOT):
        return Path(os.environ[ENV_ROOT]).expanduser()
    return Path(DEFAULT_ROOT).expanduser()


def _ensure_file(flag: str, root: Path, download: bool, size: int = 28) -> Path:
    path = root / file_name(flag, size)
    if path.exists():
        expected = INFO[flag]["MD5" if size == 28 else f"MD5_{size}"]
        actual = file_digest(path, "md5")
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
            getattr(medmnist, INFO[flag]["python_class"])(split="train", root=str(root), download=True, size=size)
            return path
        except Exception:  # medmnist wraps every network failure in a multi-line RuntimeError
            path.unlink(missing_ok=True)  # never leave a partial download that looks complete
    how = "download failed (no network?)" if download else "download disabled"
    raise DataError(
        f"{flag}: file {path} not found and {how}; place {path.name} from MedMNIST v2 there, "
        f"or pass --data-root / set {ENV_ROOT} to the folder that holds it"
    )


def load_split(
    flag: str, split: str, root=None, download: bool = True, size: int = 28, channels: int | None = None
) -> Split:
    """Load one split of a 2D MedMNIST dataset at ``size`` through medmnist's dataset class,
    with its own channels unless ``channels`` is given."""
    info = dataset_info(flag)
    check_size(flag, size)
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}'; choose one of: {', '.join(SPLITS)}")
    path = _ensure_file(flag, resolve_root(root), download, size)
    cls = getattr(medmnist, info["python_class"])
    try:
        ds = cls(split=split, root=str(path.parent), download=False, size=size)
        images, labels = np.asarray(ds.imgs), np.asarray(ds.labels)
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as exc:
        raise DataError(f"{flag}: {path} is not a readable MedMNIST npz ({type(exc).__name__}: {exc})") from None
    found = 1 if images.ndim == 3 else images.shape[-1]
    if found != int(info["n_channels"]) or images.shape[1:3] != (size, size):
        raise DataError(
            f"{flag}: {path} holds {images.shape[1]}×{images.shape[2]}×{found} images, medmnist's "
            f"INFO says {size}×{size}×{info['n_channels']}"
        )
    split_data = to_split(images, labels, channels or int(info["n_channels"]))
    n_cls = len(info["label"])
    if len(split_data) and (split_data.labels.min() < 0 or split_data.labels.max() >= n_cls):
        raise DataError(f"{flag}: {path} has labels outside 0..{n_cls - 1}")
    return split_data


def load_dataset(
    flag: str, root=None, download: bool = True, size: int = 28, channels: int | None = None
) -> dict[str, Split]:
    return {s: load_split(flag, s, root, download, size, channels) for s in SPLITS}
