"""Use a release folder (``python -m dpecnn export``): the model and its input pipeline, as the card says.

    release = dpecnn.release.load("release/")
    release.predict(["a.png", "b.png"])          # class names
    release.predict("a.png")                      # one image: a list of one name
    release.predict_proba(uint8_images)           # (N, classes) probabilities

:func:`load` reads only data — ``model_card.json``, ``model.safetensors`` and ``model.onnx`` — and
never executes anything from the folder; each file must have the sha256 the card names, and the
weights must fit the architecture it describes. The model is rebuilt in torch where it can be
(escnn installed, or the conventional e) and is otherwise ``model.onnx`` on onnxruntime
(:mod:`dpecnn.deploy`), whose probabilities the export checked against the torch model's.
:attr:`Release.preprocess` is the run's
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
from dpecnn.deploy import OnnxModel, grad_cam_from_features
from dpecnn.errors import DpecnnError
from dpecnn.export import CARD_FORMAT
from dpecnn.models import build_model

BATCH = 256  # images per forward pass in predict


BACKENDS = ("auto", "torch", "onnx")


@dataclass
class Release:
    model: nn.Module | OnnxModel  # eval mode; OnnxModel: the escnn-free graph
    preprocess: InputPipeline
    card: dict
    device: torch.device
    head_weight: torch.Tensor | None = None  # ONNX backend: the linear head's weight, for Grad-CAM

    @property
    def backend(self) -> str:
        return "onnx" if isinstance(self.model, OnnxModel) else "torch"

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.preprocess.class_names

    @torch.no_grad()
    def predict_proba(self, images) -> np.ndarray:
        """Class probabilities (N, classes) of one raw image or a batch (:func:`~dpecnn.data.images.image_list`)."""
        images = image_list(images)
        chunks = [
            self.model(self.preprocess(images[i : i + BATCH]).to(self.device)).softmax(1).cpu()
            for i in range(0, len(images), BATCH)
        ]
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, len(self.class_names)), dtype=np.float32)

    def predict(self, images) -> list[str]:
        """The most probable class name of each image."""
        return [self.class_names[k] for k in self.predict_proba(images).argmax(1)]

    def grad_cam(self, images, target=None) -> np.ndarray:
        """Grad-CAM maps (N, 1, size, size), ≥ 0, for class indices ``target`` (default: the prediction):
        Captum's on the torch model, or from the ONNX graph's features where the card says the export
        checked them (:mod:`dpecnn.deploy`)."""
        x = self.preprocess(image_list(images)).to(self.device)
        target = None if target is None else torch.as_tensor(target).reshape(-1).expand(len(x))
        if self.backend == "torch":
            from dpecnn.analysis.measures.attributions import grad_cam

            return grad_cam(self.model, x, target).cpu().numpy()
        if self.head_weight is None:
            raise DpecnnError(f"{self.card['model']['onnx']['grad_cam']}: load the release with escnn installed")
        logits, features = self.model.outputs(x)
        target = logits.argmax(1) if target is None else target
        return grad_cam_from_features(features, self.head_weight, target, x.shape[-2:]).numpy()


def _checked(folder: Path, name: str, sha256: str) -> Path:
    path = folder / name
    if not path.is_file() or io.file_digest(path) != sha256:
        raise DpecnnError(f"{path} is missing or not the file the card names (sha256 differs)")
    return path


def _torch_model(weights: Path, m: dict) -> nn.Module:
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
    return model.eval()


def load(folder: str | Path, device: str = "cpu", backend: str = "auto") -> Release:
    """The release in ``folder`` (see module docstring); every problem is one :class:`DpecnnError` line.
    ``backend``: ``torch`` (needs escnn for C_N and O(2)), ``onnx`` (CPU) or ``auto`` (torch where it
    can be built, else ONNX)."""
    if backend not in BACKENDS:
        raise DpecnnError(f"unknown backend '{backend}'; choose one of: {', '.join(BACKENDS)}")
    folder = Path(folder)
    card = io.read_json(folder / "model_card.json")
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        found = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise DpecnnError(
            f"{folder}/model_card.json is not a {CARD_FORMAT} card (found {found}); "
            "export the run again with this dpecnn"
        )
    m = card["model"]
    pipeline = InputPipeline.from_dict(card["input"])
    if len(pipeline.class_names) != int(m["num_classes"]) or pipeline.channels != int(m["in_channels"]):
        raise DpecnnError(f"{folder}/model_card.json: the input pipeline does not match the model")
    model, weights = None, _checked(folder, m["weights"], m["weights_sha256"])
    if backend != "onnx":
        try:
            model = _torch_model(weights, m).to(device)
        except ImportError as exc:  # escnn (or a library it needs) cannot be imported here
            if backend == "torch" or "onnx" not in m:
                raise DpecnnError(
                    f"the {m['arch']} model needs escnn, which cannot be imported here ({io.first_line(exc)}), and "
                    f"{'the torch backend was asked for' if backend == 'torch' else 'the release has no model.onnx'}"
                ) from None
    if model is None:
        if "onnx" not in m:
            raise DpecnnError(f"{folder} has no model.onnx (exported before dpecnn wrote one): export the run again")
        model = OnnxModel(_checked(folder, m["onnx"]["file"], m["onnx"]["sha256"]))
        head = None
        if "grad_cam_checked_images" in m["onnx"]:
            head = io.load_tensors(weights)["classifier.weight"]
        return Release(model, pipeline, card, torch.device("cpu"), head)
    return Release(model, pipeline, card, torch.device(device))
