"""Small generated datasets with real class structure, for offline tests and worked examples.

:func:`write_synthetic_npz` writes ``<root>/<flag>.npz`` (``<flag>_<size>.npz`` at other sizes,
as MedMNIST+ names them) with medmnist's keys, dtypes and shapes (uint8 images (N, S, S) or
(N, S, S, 3), uint8 labels (N, 1)), the flag's channel and class count from ``medmnist.INFO``;
:func:`write_image_folder` writes the same kind of images as PNG files in the image-folder
layout, for the own-data path. Class ``c`` is a textured disc whose ring frequency
and colour depend on ``c``, placed and rotated at random, so that a small model can learn
the task and rotations do not change the label. With ``orientation=True`` the class is the
orientation instead: every image is the same kind of textured teardrop, pointing in direction
``c · 360°/n_classes`` from "up" (two classes: up vs down), so only a model that sees
orientation can tell the classes apart (a probe and readout test set).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from dpecnn.data.medmnist_data import dataset_info, file_name


def _images(labels: np.ndarray, n_classes: int, channels: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    n, scale = len(labels), size / 28
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / scale
    cx = size / scale / 2 - 0.5 + rng.uniform(-3, 3, (n, 1, 1))
    cy = size / scale / 2 - 0.5 + rng.uniform(-3, 3, (n, 1, 1))
    angle = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    dx, dy = xx - cx, yy - cy
    r = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx) + angle
    c = labels.reshape(n, 1, 1).astype(np.float32)
    rings = np.cos((0.5 + 0.35 * c) * r + rng.uniform(0, np.pi, (n, 1, 1)))
    spokes = np.cos((c % 3 + 1) * theta)  # rotates with the sample: orientation carries no label
    disc = 1.0 / (1.0 + np.exp(r - rng.uniform(8, 11, (n, 1, 1))))
    texture = disc * (0.6 * rings + 0.4 * spokes * rings)
    hue = 2 * np.pi * labels / max(n_classes, 1)
    gains = [1 + 0.4 * np.cos(hue + k * 2 * np.pi / 3) for k in range(channels)]
    img = np.stack([g.reshape(n, 1, 1) * texture for g in gains], axis=-1)
    img = 127.5 + 90 * img + rng.normal(0, 12, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


def _oriented_images(
    labels: np.ndarray, n_classes: int, channels: int, rng: np.random.Generator, size: int = 28
) -> np.ndarray:
    n, scale = len(labels), size / 28
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / scale
    dx = xx - (size / scale / 2 - 0.5 + rng.uniform(-2, 2, (n, 1, 1)))
    dy = yy - (size / scale / 2 - 0.5 + rng.uniform(-2, 2, (n, 1, 1)))
    # the direction of class c, measured from "up" (-y: image rows grow downwards), ±15° jitter
    direction = (
        -np.pi / 2 + 2 * np.pi * labels.reshape(n, 1, 1) / n_classes + np.radians(rng.uniform(-15, 15, (n, 1, 1)))
    )
    r, phi = np.hypot(dx, dy), np.arctan2(dy, dx)
    radius = rng.uniform(5, 7, (n, 1, 1)) + 6 * np.clip(np.cos(phi - direction), 0, None) ** 4
    shape = 1.0 / (1.0 + np.exp(2 * (r - radius)))
    texture = shape * (0.7 + 0.3 * np.cos(1.2 * r + rng.uniform(0, 2 * np.pi, (n, 1, 1))))
    img = np.repeat(texture[..., None], channels, axis=-1)
    img = 60 + 150 * img + rng.normal(0, 12, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


def _labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    labels = (np.arange(n) % n_classes).astype(np.uint8)
    rng.shuffle(labels)
    return labels


def write_synthetic_npz(
    flag: str,
    root: str | os.PathLike,
    sizes: tuple[int, int, int] = (256, 64, 64),
    seed: int = 0,
    orientation: bool = False,
    size: int = 28,
) -> Path:
    """Write a generated ``<flag>.npz`` (train/val/test sizes ``sizes``, images ``size`` × ``size``)
    under ``root``; the class is the texture, or with ``orientation`` the direction a shape points
    (module docstring)."""
    info = dataset_info(flag)
    n_classes, channels = len(info["label"]), int(info["n_channels"])
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), sizes):
        labels = _labels(n, n_classes, rng)
        arrays[f"{split}_images"] = (_oriented_images if orientation else _images)(
            labels, n_classes, channels, rng, size
        )
        arrays[f"{split}_labels"] = labels.reshape(n, 1)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / file_name(flag, size)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    tmp = path.with_suffix(".npz.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return path


def write_image_folder(
    root: str | os.PathLike,
    classes=("benign", "malignant", "normal"),
    n: int = 120,
    size: int = 64,
    channels: int = 1,
    splits: tuple[int, int, int] | None = None,
    seed: int = 0,
) -> Path:
    """PNG files in the image-folder layout: ``root/<class>/<i>.png`` for ``n`` images, or with
    ``splits`` = (train, val, test) counts ``root/<split>/<class>/<i>.png``. Textured discs as in
    :func:`write_synthetic_npz`, one texture per class."""
    from PIL import Image

    rng, root = np.random.default_rng(seed), Path(root)
    for split, count in zip(("train", "val", "test"), splits) if splits else [(None, n)]:
        labels = _labels(count, len(classes), rng)
        written = dict.fromkeys(range(len(classes)), 0)
        for label, image in zip(labels, _images(labels, len(classes), channels, rng, size)):
            folder = root / (split or "") / classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{written[label]:04d}.png")
            written[label] += 1
    return root
