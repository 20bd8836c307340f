"""Your own labelled images: an image folder, a CSV of paths and labels, or an ``.npz`` with MedMNIST's keys.

* **folder** — one sub-folder per class (``ROOT/<class>/*.png``), optionally below ``train/``,
  ``val/``, ``test/`` (``ROOT/train/<class>/…``); classes and files are found by torchvision's
  ``ImageFolder`` rules (:func:`torchvision.datasets.folder.find_classes`, ``make_dataset``).
* **csv** — columns ``path`` and ``label``, optionally ``split`` (``train``/``val``/``test``);
  paths relative to the CSV's folder; labels are class names (integers are ordered numerically).
* **npz** — MedMNIST's keys ``train_images``, ``train_labels`` (and ``val_…``, ``test_…``),
  uint8 images (N, H, W) or (N, H, W, C); optional ``class_names``.

Images are read with PIL and go through :class:`~dpecnn.data.images.InputPipeline`: without
``size`` they must all have one square size (else an error names the first that differs), with
it they are resized; channels are detected (any colour image makes the set RGB) unless given.
Missing splits are drawn by a stratified split (:data:`VAL_FRACTION`, :data:`TEST_FRACTION` of
the images without a given split; scikit-learn's ``train_test_split`` with the fixed
:data:`SPLIT_SEED`, so the split is the same in every run). The content hash covers every file
read (names, labels, splits, bytes), so a changed dataset gets a new identity and is never
resumed or reused (:func:`content_hash`).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dpecnn.data.images import IMAGE_SUFFIXES, convert_channels, fit, image_header, to_pil
from dpecnn.errors import DataError
from dpecnn.io import file_digest

SPLITS = ("train", "val", "test")
VAL_FRACTION, TEST_FRACTION = 0.1, 0.1
FRACTIONS = {"val": VAL_FRACTION, "test": TEST_FRACTION}
SPLIT_SEED = 0
OWN_KINDS = ("folder", "csv", "npz")


@dataclass(frozen=True)
class OwnData:
    """Decoded splits: uint8 images (N, size, size, channels) and int64 labels per split."""

    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    class_names: tuple[str, ...]
    size: int
    channels: int
    split_rule: str
    notices: tuple[str, ...] = ()  # what was converted on the way in (recorded in the run and the card)


def own_kind(dataset: str) -> str:
    """``folder``, ``csv`` or ``npz`` for an existing path; an error line otherwise."""
    path = Path(dataset).expanduser()
    if not path.exists():
        raise DataError(
            f"{dataset}: no such file or folder (a dataset is a MedMNIST name, an image folder, "
            "a .csv of paths and labels or an .npz)"
        )
    if path.is_dir():
        return "folder"
    if path.suffix.lower() in (".csv", ".npz"):
        return path.suffix.lower()[1:]
    raise DataError(f"{dataset}: not a folder, .csv or .npz")


# ---- listing: (split or None, label name, file) -------------------------------------------------
def _hidden(path: Path, top: Path) -> bool:
    """Whether a part of ``path`` below ``top`` is hidden (``.ipynb_checkpoints``, ``.DS_Store``, …)."""
    return any(part.startswith(".") for part in path.relative_to(top).parts)


def _folder_items(root: Path) -> list[tuple[str | None, str, Path]]:
    """torchvision's ``ImageFolder`` rules, less hidden entries (Jupyter's ``.ipynb_checkpoints`` in
    every folder it opens would otherwise be a class, and its copies images of the others)."""
    from torchvision.datasets.folder import make_dataset

    given = [s for s in SPLITS if (root / s).is_dir()]
    items = []
    for split, top in [(s, root / s) for s in given] if given else [(None, root)]:
        classes = sorted(e.name for e in top.iterdir() if e.is_dir() and not e.name.startswith("."))
        if not classes:
            raise DataError(f"{top}: no class folders (one sub-folder per class)")
        try:
            files = make_dataset(str(top), {c: k for k, c in enumerate(classes)}, extensions=IMAGE_SUFFIXES)
        except FileNotFoundError as exc:
            raise DataError(f"{top}: {exc}") from None
        items += [(split, classes[label], Path(path)) for path, label in files if not _hidden(Path(path), top)]
    return items


def _csv_items(csv: Path) -> list[tuple[str | None, str, Path]]:
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{csv}: not a readable CSV ({type(exc).__name__})") from None
    missing = {"path", "label"} - set(table.columns)
    if missing:
        raise DataError(f"{csv}: no column {', '.join(sorted(missing))} (needs path, label and optionally split)")
    items = []
    for row, r in enumerate(table.itertuples(index=False), start=2):  # row 1 is the header
        if not r.label.strip():
            raise DataError(f"{csv} row {row}: no label for {r.path}")
        split = getattr(r, "split", "").strip() or None
        if split not in (None, *SPLITS):
            raise DataError(f"{csv} row {row}: split '{split}' is not one of {', '.join(SPLITS)}")
        path = (csv.parent / r.path).resolve()
        if not path.is_file():
            raise DataError(f"{csv} row {row}: {path} does not exist")
        items.append((split, r.label.strip(), path))
    return items


def _class_names(items, where: Path) -> tuple[str, ...]:
    """The classes, sorted (numerically if every label is an integer); labels that differ only by
    case are refused with the rows (CSV) or folders that spell them, never made two classes."""
    labels = [label for _, label, _ in items]
    names = sorted(set(labels))
    spellings: dict[str, list[str]] = {}
    for name in names:
        spellings.setdefault(name.casefold(), []).append(name)
    clash = next((v for v in spellings.values() if len(v) > 1), None)
    if clash:
        rows = {n: [str(i + 2) for i, label in enumerate(labels) if label == n][:5] for n in clash}
        where_is = "; ".join(
            f"'{n}' ({'rows ' + ', '.join(r) if where.suffix == '.csv' else 'folder ' + n})" for n, r in rows.items()
        )
        raise DataError(f"{where}: labels {where_is} differ only by case: one class spelt two ways? Spell it one way")
    if all(n.lstrip("-").isdigit() for n in names):
        names = sorted(names, key=int)
    return tuple(names)


# ---- the content hash -------------------------------------------------------------------------
_HASHES: dict[tuple, str] = {}


def content_hash(dataset: str, kind: str | None = None) -> str:
    """SHA-256 over everything the dataset is read from: for a folder or CSV every image's
    relative name, label, split and bytes, for an npz its bytes. Cached
    within a process while no file's size or modification time changes."""
    path, kind = Path(dataset).expanduser().resolve(), kind or own_kind(dataset)
    items = [] if kind == "npz" else _listing(path, kind)
    files = [i[2] for i in items] + ([path] if kind in ("csv", "npz") else [])
    key = (str(path), tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if key not in _HASHES:
        digest = hashlib.sha256(kind.encode())
        if kind == "npz":
            digest.update(file_digest(path).encode())
        else:
            base = path if kind == "folder" else path.parent
            for split, label, file in items:
                digest.update(
                    f"{split}\0{label}\0{file.relative_to(base) if file.is_relative_to(base) else file}"
                    f"\0{file_digest(file)}\n".encode()
                )
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _listing(path: Path, kind: str):
    return _folder_items(path) if kind == "folder" else _csv_items(path)


# ---- decoding and splitting -------------------------------------------------------------------
def _decode(items, size: int | None, channels: int | None) -> tuple[np.ndarray, int, int, tuple[str, ...]]:
    """Sizes and colours from the files' headers, then each image decoded, converted and resized
    into the uint8 array in turn: the peak is the output plus one full-resolution image."""
    files = [file for _, _, file in items]
    headers = [image_header(file) for file in files]
    if size is None:
        sizes = [shape for shape, _ in headers]
        common = max(set(sizes), key=sizes.count)  # the most common size; ties: any of them
        if common[0] != common[1]:
            raise DataError(
                f"{files[sizes.index(common)]}: {common[0]}×{common[1]} (like {sizes.count(common)} of "
                f"{len(sizes)} images) is not square; pass --size N to resize every image to N×N"
            )
        odd = next((i for i, shape in enumerate(sizes) if shape != common), None)
        if odd is not None:
            raise DataError(
                f"{files[odd]}: {sizes[odd][0]}×{sizes[odd][1]}, unlike {sizes.count(common)} of the {len(sizes)} "
                f"images ({common[0]}×{common[1]}); pass --size N to resize every image to N×N"
            )
        size = common[0]
    notices = ()
    if channels is None:
        kinds = [kind for _, kind in headers]
        channels = max(kinds)
        if len(set(kinds)) > 1:
            notices = (
                f"{kinds.count(1)} grey and {kinds.count(3)} colour images: the grey ones were made RGB "
                "(grey value repeated in R, G and B); pass --channels 1 to train on grey instead",
            )
            warnings.warn(notices[0], stacklevel=2)
    pixels = np.empty((len(files), size, size, channels), dtype=np.uint8)
    for i, file in enumerate(files):
        pixels[i] = fit(to_pil(file), size, channels)
    return pixels, size, channels, notices


def _npz(path: Path, size: int | None, channels: int | None) -> tuple[dict, dict, tuple, int, int]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable npz ({type(exc).__name__})") from None
    if "train_images" not in data or "train_labels" not in data:
        raise DataError(f"{path}: no train_images / train_labels (MedMNIST's keys)")
    images, labels = {}, {}
    for split in SPLITS:
        if f"{split}_images" not in data:
            continue
        x, y = data[f"{split}_images"], np.asarray(data.get(f"{split}_labels", np.array([])))
        if y.dtype.kind not in "iub":
            shown = ", ".join(map(repr, np.unique(y.reshape(-1))[:3].tolist()))
            raise DataError(
                f"{path}: {split}_labels are {y.dtype} ({shown}, …), not integers 0…K−1: store integer labels "
                "and the names in class_names (np.unique(labels, return_inverse=True) gives both)"
            )
        if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[3] not in (1, 3, 4):
            raise DataError(
                f"{path}: {split}_images {x.shape} look channel-first (N, C, H, W); dpecnn reads (N, H, W, C) "
                "as MedMNIST stores them: save x.transpose(0, 2, 3, 1)"
            )
        if x.dtype != np.uint8 or x.ndim not in (3, 4) or len(y.reshape(len(y), -1)) != len(x):
            raise DataError(
                f"{path}: {split}_images must be uint8 (N, H, W[, C]) with one label each, "
                f"got {x.dtype} {x.shape} and {y.shape[0] if y.ndim else 0} labels"
            )
        images[split], labels[split] = x, y.reshape(len(y), -1)[:, 0].astype(np.int64)
    if any(len(y) and y.min() < 0 for y in labels.values()):
        raise DataError(f"{path}: negative labels")
    n_cls = int(max(y.max() for y in labels.values() if len(y))) + 1
    names = tuple(str(n) for n in data["class_names"]) if "class_names" in data else tuple(map(str, range(n_cls)))
    if len(names) < n_cls:
        raise DataError(f"{path}: labels go up to {n_cls - 1} but class_names has {len(names)} names")
    channels = channels or (1 if images["train"].ndim == 3 or images["train"].shape[-1] == 1 else 3)
    native = images["train"].shape[1]
    size = size or native
    for split, x in images.items():
        x = convert_channels(x, channels)
        if x.shape[1:3] != (size, size):
            if x.shape[1] != x.shape[2] and size == native:
                raise DataError(f"{path}: {split}_images are {x.shape[1]}×{x.shape[2]}; pass --size N")
            x = np.stack([fit(to_pil(im), size, channels) for im in x])
        images[split] = x
    return images, labels, names, size, channels


def stratified_split(labels: np.ndarray, missing: list[str], where: str) -> dict[str, np.ndarray]:
    """Indices of ``labels`` per split: the ``missing`` ones (val, test) drawn stratified by label."""
    from sklearn.model_selection import train_test_split

    index = {"train": np.arange(len(labels))}
    remaining = 1.0
    for split in missing:
        try:
            keep, taken = train_test_split(
                index["train"],
                test_size=FRACTIONS[split] / remaining,
                stratify=labels[index["train"]],
                random_state=SPLIT_SEED,
            )
        except ValueError as exc:
            raise DataError(f"{where}: cannot draw a stratified {split} split ({exc})") from None
        index["train"], index[split] = np.sort(keep), np.sort(taken)
        remaining -= FRACTIONS[split]
    return index


def load_own(dataset: str, size: int | None = None, channels: int | None = None, kind: str | None = None) -> OwnData:
    """Read, check and split an own dataset (see module docstring); every problem is one :class:`DataError` line."""
    path, kind = Path(dataset).expanduser().resolve(), kind or own_kind(dataset)
    notices: tuple[str, ...] = ()
    if kind == "npz":
        images, labels, names, size, channels = _npz(path, size, channels)
    else:
        items = _listing(path, kind)
        if not items:
            raise DataError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)})")
        names = _class_names(items, path)
        index = {n: k for k, n in enumerate(names)}
        pixels, size, channels, notices = _decode(items, size, channels)
        split_of = np.array([s or "" for s, _, _ in items])
        all_labels = np.array([index[label] for _, label, _ in items], dtype=np.int64)
        images = {s: pixels[split_of == s] for s in SPLITS if (split_of == s).any()}
        labels = {s: all_labels[split_of == s] for s in images}
        if (split_of == "").any():  # images without a split join train before the missing splits are drawn
            images["train"] = np.concatenate([images.get("train", pixels[:0]), pixels[split_of == ""]])
            labels["train"] = np.concatenate([labels.get("train", all_labels[:0]), all_labels[split_of == ""]])
    if len(names) < 2 or len(np.unique(labels.get("train", []))) < 2:
        raise DataError(f"{path}: one class only ({', '.join(names) or 'none'}); a classifier needs two or more")
    if "train" not in images:
        raise DataError(f"{path}: no training images")
    empty = [names[k] for k in range(len(names)) if not (labels["train"] == k).any()]
    if empty:
        raise DataError(
            f"{path}: class {', '.join(map(repr, empty[:5]))} has no training image (labels "
            f"{', '.join(map(str, np.unique(labels['train'])))} occur): a model would learn a class it never saw; "
            "relabel to 0…K−1 without gaps or add images"
        )
    missing = [s for s in ("val", "test") if s not in images]
    rule = (
        "given"
        if not missing
        else (
            " and ".join(f"{s} ({FRACTIONS[s]:.0%})" for s in missing)
            + " drawn from the training images, stratified by class (scikit-learn, "
            f"seed {SPLIT_SEED})"
        )
    )
    if missing:
        index = stratified_split(labels["train"], missing, str(path))
        pool_x, pool_y = images["train"], labels["train"]
        for split, idx in index.items():
            images[split], labels[split] = pool_x[idx], pool_y[idx]
    return OwnData({s: images[s] for s in SPLITS}, {s: labels[s] for s in SPLITS}, names, size, channels, rule, notices)
