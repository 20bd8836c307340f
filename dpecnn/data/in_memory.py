"""Images already in memory — arrays, PIL images or a torch ``Dataset`` — written as an own-data ``.npz``.

A run must be able to open its data again (resume, export's check, analyses) and know when it
changed (:func:`~dpecnn.data.own_data.content_hash`), so in-memory data become a file first:
:func:`write_npz` writes MedMNIST's keys (``train_images``, ``train_labels``, … and
``class_names``), which every dpecnn command then reads as own data, with the same checks.

Accepted per split: a tuple ``(images, labels)`` — uint8 images (N, H, W) or (N, H, W, C) as one
array, or a sequence of images — or any other sequence of ``(image, label)`` pairs, such as a list
or a torch ``Dataset`` without transforms. An image is a PIL image, a uint8 array (H, W[, C]) or a uint8
tensor in torch's layout (C, H, W). Labels are integers 0…K−1. Float images are refused: dpecnn
scales uint8 pixels itself (:data:`~dpecnn.data.images.SCALING`), and a float image's range ([0, 1]
after ``ToTensor``, or normalised) cannot be told from its values.
"""

from __future__ import annotations

import io as bytes_io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dpecnn import io
from dpecnn.errors import DataError

SPLITS = ("train", "val", "test")


def _pixels(image, where: str) -> np.ndarray:
    """One image as uint8 (H, W) or (H, W, C)."""
    import torch
    from PIL import Image

    if isinstance(image, Image.Image):
        image = np.asarray(image)
    elif isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8:
            raise DataError(
                f"{where}: a {image.dtype} tensor; dpecnn scales uint8 pixels itself: give the images without "
                "ToTensor()/Normalize() (PIL images or uint8), or (x * 255).round().byte() if x is in [0, 1]"
            )
        image = image.numpy()
        if image.ndim == 3:  # torch's layout (C, H, W)
            image = image.transpose(1, 2, 0)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise DataError(f"{where}: {image.dtype} pixels; dpecnn reads uint8 images (0…255)")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise DataError(f"{where}: an image must be (H, W), (H, W, 1|3) or a tensor (C, H, W), got {image.shape}")
    return image


def _split_arrays(split, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A tuple is ``(images, labels)``; anything else is a sequence of ``(image, label)`` pairs."""
    if isinstance(split, tuple):
        if len(split) != 2:
            raise DataError(f"{name}: give (images, labels) or a sequence of (image, label) pairs")
        images, labels = split
        if isinstance(images, np.ndarray) and images.ndim == 4 and images.shape[-1] not in (1, 3):
            raise DataError(f"{name} images {images.shape}: give (N, H, W, C) arrays (channels last)")
        labels = list(np.asarray(labels).reshape(-1))
        if len(images) != len(labels):
            raise DataError(f"{name}: {len(images)} images but {len(labels)} labels")
        pairs = list(zip(images, labels))
    else:  # a torch Dataset (len and indexing) or a list of pairs
        pairs = [split[i] for i in range(len(split))]
    if not pairs:
        raise DataError(f"{name}: no images")
    pictures = [_pixels(image, f"{name} image {i}") for i, (image, _) in enumerate(pairs)]
    shapes = [p.shape for p in pictures]
    odd = next((i for i, s in enumerate(shapes) if s != shapes[0]), None)
    if odd is not None:
        raise DataError(
            f"{name} image {odd} is {shapes[odd]}, unlike image 0 {shapes[0]}: resize them to one size, or write "
            "an image folder (dpecnn resizes with --size)"
        )
    labels = np.array([int(label) if not isinstance(label, str) else label for _, label in pairs])
    if labels.dtype.kind not in "iu":
        raise DataError(
            f"{name} labels are not integers: give 0…K−1 and the names as class_names "
            "(np.unique(labels, return_inverse=True) gives both)"
        )
    return np.stack(pictures), labels.astype(np.int64)


def write_npz(path: str | Path, train, val=None, test=None, class_names: Sequence[str] | None = None) -> Path:
    """Write the splits given (module docstring) to ``path`` (an ``.npz``) and return it; splits
    left out are drawn from the training images when the file is read (stratified, fixed seed)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise DataError(f"{path}: the file must end in .npz")
    arrays = {}
    for name, split in zip(SPLITS, (train, val, test)):
        if split is not None:
            arrays[f"{name}_images"], arrays[f"{name}_labels"] = _split_arrays(split, name)
    if class_names is not None:
        arrays["class_names"] = np.array([str(n) for n in class_names])
    buffer = bytes_io.BytesIO()
    np.savez(buffer, **arrays)
    io.write_bytes(path, buffer.getvalue())
    return path
