"""From uint8 pixels to the model's input: size, channels, scaling — one pipeline for training,
evaluation and a release's users.

Every image the models see went through :class:`InputPipeline`: ``uint8`` pixels (H, W) or
(H, W, C), channels converted to :attr:`~InputPipeline.channels` (grey → RGB by repeating the
grey value, RGB → grey by ITU-R 601-2 luma, PIL's ``convert("L")``), resized to ``size × size``
when they are not that size (:data:`INTERPOLATION`; the aspect ratio is not kept), then scaled
to [−1, 1] by ``x / 127.5 − 1`` (:data:`SCALING`). The run's summary and the model card record
the pipeline, so a release can be fed raw images exactly as the model was trained on them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from dpecnn.errors import DataError

INTERPOLATION = "bilinear (PIL Image.resize, antialiased when shrinking)"
SCALING = "x / 127.5 - 1: uint8 0..255 to [-1, 1]"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")


@dataclass(frozen=True)
class InputPipeline:
    """What turns a raw image into the model's input (see module docstring)."""

    size: int
    channels: int
    class_names: tuple[str, ...]  # in label order: class_names[k] is label k
    interpolation: str = INTERPOLATION
    scaling: str = SCALING

    def to_dict(self) -> dict:
        return asdict(self) | {"class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, data: dict) -> InputPipeline:
        if data.get("scaling") != SCALING or data.get("interpolation") != INTERPOLATION:
            raise DataError(
                f"unknown input pipeline {data.get('scaling')!r} / {data.get('interpolation')!r}: "
                "written by another dpecnn version"
            )
        return cls(int(data["size"]), int(data["channels"]), tuple(data["class_names"]))

    def pixels(self, image) -> np.ndarray:
        """One image (uint8 array (H, W) / (H, W, C), a PIL image or a file path) as uint8 (size, size, channels)."""
        return fit(to_pil(image), self.size, self.channels)

    def __call__(self, images) -> torch.Tensor:
        """One image or a batch (:func:`image_list`) as the model's input (N, channels, size, size)."""
        return pixels_to_input(torch.from_numpy(np.stack([self.pixels(im) for im in image_list(images)])))


def image_list(images) -> list:
    """The images of ``images`` as a list. One image: a file path, a PIL image, a uint8 array (H, W)
    or (H, W, 1|3|4). A batch: a list or tuple of those, or a uint8 array (N, H, W) or (N, H, W, C);
    a 3-dimensional array whose last axis has 1, 3 or 4 entries is read as one image (H, W, C)."""
    if isinstance(images, (str, Path, Image.Image)):
        return [images]
    if isinstance(images, (list, tuple)):
        return list(images)
    array = np.asarray(images)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4)):
        return [array]
    if array.ndim in (3, 4):
        return list(array)
    raise DataError(f"images must be one image or a batch (N, H, W[, C]), got an array of shape {array.shape}")


def to_pil(image) -> Image.Image:
    """A file path, PIL image or uint8 array as an 8-bit PIL image; 16- and 32-bit images are refused
    (:func:`_eight_bit`)."""
    if isinstance(image, (str, Path)):
        if not Path(image).is_file():
            raise DataError(f"{image}: no such image file")
        try:
            with Image.open(image) as opened:
                opened.load()
                picture = opened.copy()
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise _unreadable(image, exc) from None
        return _eight_bit(picture, str(image))
    if isinstance(image, Image.Image):
        return _eight_bit(image, "an image")
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise DataError(f"an image must be uint8 (H, W) or (H, W, 1|3|4), got {array.dtype} {array.shape}")
    return Image.fromarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)


def image_header(path: str | Path) -> tuple[tuple[int, int], int]:
    """(width, height) and :func:`image_channels` of an image file, read from its header: nothing
    is decoded, so a folder's sizes and colours are known before any image takes memory."""
    try:
        with Image.open(path) as opened:
            return opened.size, image_channels(opened)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path, exc: Exception) -> DataError:
    return DataError(f"{path}: not a readable image ({type(exc).__name__})")


def _eight_bit(image: Image.Image, name: str) -> Image.Image:
    """``image`` if it has 8 bits per channel. A 16- or 32-bit image (X-ray and CT exports) is refused
    with the fix: its values may use 12 bits of 16 (0…4095) or any window, and a guessed scale would
    train a model on near-black or clipped images without a word."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image)
        top = max(int(values.max()), 1)
        window = 2 ** max(8, math.ceil(math.log2(top + 1))) - 1
        raise DataError(
            f"{name}: a {'16' if image.mode.startswith('I;16') else '32'}-bit image (values {values.min():g}…"
            f"{top:g}); dpecnn reads 8-bit images: convert with the range your data use, e.g. "
            f"(x / {window} * 255).round().astype('uint8') for {window.bit_length()}-bit data"
        )
    return image


def image_channels(image: Image.Image) -> int:
    """1 for grey images (modes 1, L, LA, 16-bit), 3 for colour."""
    return 1 if image.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else 3


def fit(image: Image.Image, size: int, channels: int) -> np.ndarray:
    """Convert to ``channels`` and resize to ``size × size`` (:data:`INTERPOLATION`) if needed."""
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, 3) → (N, H, W, ``channels``), converted as :func:`fit` does."""
    images = images[..., None] if images.ndim == 3 else images
    if images.shape[-1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    return np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in images])[..., None]


def pixels_to_input(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) → float32 (N, C, H, W) in [−1, 1] (:data:`SCALING`), on ``pixels``' device."""
    return pixels.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).contiguous()
