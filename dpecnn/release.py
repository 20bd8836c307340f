"""Use a release folder (``python -m dpecnn export``): the model and its input pipeline, as the card says.

    release = dpecnn.release.load("release/")
    release.predict(["a.png", "b.png"])          # class names
    release.predict("a.png")                      # one image: a list of one name
    release.predict_proba(uint8_images)           # (N, classes) probabilities

:func:`load` reads only data — ``model_card.json`` and ``model.safetensors`` — and never
executes anything from the folder; the weights must have the sha256 the card names and fit the
architecture it describes. :attr:`Release.preprocess` is the run's
:class:`~dpecnn.data.images.InputPipeline`: raw uint8 images or file paths in, the model's
input out (channels converted, resized, scaled to [−1, 1]), so the card's test accuracy is
reproduced from the raw test images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dpecnn import io
from dpecnn.data.images import InputPipeline, image_list
from dpecnn.errors import DpecnnError
from dpecnn.export import CARD_FORMAT
from dpecnn.models import build_model

BATCH = 256  # images per forward pass in predict


@dataclass
class Release:
    model: nn.Module  # eval mode
    preprocess: InputPipeline
    card: dict

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.preprocess.class_names

    @torch.no_grad()
    def predict_proba(self, images) -> np.ndarray:
        """Class probabilities (N, classes) of one raw image or a batch (:func:`~dpecnn.data.images.image_list`)."""
        device = next(self.model.parameters()).device
        images = image_list(images)
        chunks = [
            self.model(self.preprocess(images[i : i + BATCH]).to(device)).softmax(1).cpu()
            for i in range(0, len(images), BATCH)
        ]
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, len(self.class_names)), dtype=np.float32)

    def predict(self, images) -> list[str]:
        """The most probable class name of each image."""
        return [self.class_names[k] for k in self.predict_proba(images).argmax(1)]


def load(folder: str | Path, device: str = "cpu") -> Release:
    """The release in ``folder`` (see module docstring); every problem is one :class:`DpecnnError` line."""
    folder = Path(folder)
    card = io.read_json(folder / "model_card.json")
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        found = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise DpecnnError(
            f"{folder}/model_card.json is not a {CARD_FORMAT} card (found {found}); "
            "export the run again with this dpecnn"
        )
    m = card["model"]
    weights = folder / "model.safetensors"
    if not weights.is_file() or io.file_digest(weights) != m["weights_sha256"]:
        raise DpecnnError(f"{weights} is missing or not the file the card names (sha256 differs)")
    try:
        model = build_model(
            m["arch"],
            int(m["in_channels"]),
            int(m["num_classes"]),
            tuple(m["layout"]),
            m["restrict"],
            m["fields"],
            m["readout"],
        )
        model.load_state_dict(io.load_tensors(weights))
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise DpecnnError(f"{weights} does not fit the card's {m.get('arch')} model ({io.first_line(exc)})") from None
    pipeline = InputPipeline.from_dict(card["input"])
    if len(pipeline.class_names) != int(m["num_classes"]) or pipeline.channels != int(m["in_channels"]):
        raise DpecnnError(f"{folder}/model_card.json: the input pipeline does not match the model")
    return Release(model.to(device).eval(), pipeline, card)
