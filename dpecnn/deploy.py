"""The release's model without escnn: ``model.onnx``, checked against the model it was made from.

escnn builds the steerable filter bases and is needed to rebuild a C_N or O(2) model from its
weights; it has had no release since 2023. So that a hospital can run a release without it,
every export also writes the evaluation model as an ONNX graph (torch's exporter: ``dynamo``
first, the TorchScript-based exporter where ``dynamo`` cannot trace the model), with a dynamic
batch axis, input ``image`` (N, C, S, S) as the release's input pipeline makes it, and outputs
``logits`` and ``features`` (the attribution layer's map, :attr:`~dpecnn.models.resnet9.ResNet9.attribution_layer`).
The graph is written only when onnxruntime's outputs on the run's test images (in batches of
several sizes) equal the torch model's within :data:`TOLERANCE` in probability.

**Grad-CAM without escnn.** Where the head is a spatial max pool to a k × k grid and a linear
layer (every model but O(2) with the orientation readout), the gradient of logit ``t`` with
respect to the map ``F`` is the weight ``W[t, c·k² + cell]`` at each cell's maximum, so Grad-CAM's
channel weight — the spatial mean of that gradient — is ``α_c = Σ_cell W[t, c·k² + cell] / (h·w)``
wherever the maxima lie, and the map is ``ReLU(Σ_c α_c F_c)`` upsampled bilinearly to the input
(:func:`grad_cam_from_features`). The export checks it against Captum's ``LayerGradCam`` on the
torch model (difference ≤ :data:`TOLERANCE` of the largest Grad-CAM value) and records the result in the card.

ONNX, not TorchScript: a TorchScript archive holds code that ``torch.jit.load`` runs, and loading a
dpecnn folder never runs code from it; an ONNX file is a graph of standard operators that
onnxruntime evaluates. Guided backprop needs the torch model, and so escnn for the equivariant groups.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dpecnn.data.split import Split
from dpecnn.errors import DpecnnError

TOLERANCE = 1e-5  # largest |Δ probability| between onnxruntime and torch on the check images
CHECK_BATCHES = (1, 7, 64)  # batch sizes the check runs (the graph's batch axis is dynamic)
OPSET = 18
OUTPUTS = ["logits", "features"]


class SlicedAdaptiveMaxPool2d(nn.Module):
    """``nn.AdaptiveMaxPool2d(out)`` as maxima over slices: the same windows (rows ``⌊i·H/out⌋`` to
    ``⌈(i+1)·H/out⌉``), so the same values, for map sizes ONNX's pooling cannot express (3 → 2)."""

    def __init__(self, output_size: int):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        n = self.output_size
        rows = [(i * h // n, -(-(i + 1) * h // n)) for i in range(n)]
        cols = [(j * w // n, -(-(j + 1) * w // n)) for j in range(n)]
        return torch.stack(
            [torch.stack([x[..., a:b, c:d].amax(dim=(-2, -1)) for c, d in cols], -1) for a, b in rows], -2
        )


def exportable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) whose adaptive max pooling is :class:`SlicedAdaptiveMaxPool2d`."""
    model = copy.deepcopy(model).eval()
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.AdaptiveMaxPool2d):
            parent, _, attr = name.rpartition(".")
            size = module.output_size
            setattr(
                model.get_submodule(parent), attr, SlicedAdaptiveMaxPool2d(size if isinstance(size, int) else size[0])
            )
    return model


class LogitsAndFeatures(nn.Module):
    """A ResNet-9 returning its logits and its attribution layer's map (the graph's two outputs)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.attribution_features(x)
        return self.model.classifier(torch.flatten(self.model.spatial_pool(features), 1)), features


def _export(model: nn.Module, example: torch.Tensor, path: Path) -> str:
    """Write ``path``; returns the exporter that succeeded."""
    try:
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=["image"],
            output_names=OUTPUTS,
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            verbose=False,
        )
        program.save(str(path))
        return "torch.onnx dynamo"
    except Exception:  # noqa: BLE001  (torch.export cannot trace every model: try the other exporter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated and says so at length
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                opset_version=OPSET,
                input_names=["image"],
                output_names=OUTPUTS,
                dynamic_axes={name: {0: "batch"} for name in ("image", *OUTPUTS)},
            )
        return "torch.onnx TorchScript-based"


class OnnxModel:
    """``model.onnx`` on onnxruntime's CPU provider, called like the torch model: (N, C, S, S) → logits."""

    def __init__(self, path: str | Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs(x)[0]

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``logits`` (N, classes) and ``features``, the attribution layer's map (N, C, h, w)."""
        found = self.session.run(OUTPUTS, {"image": x.detach().cpu().numpy().astype(np.float32)})
        return tuple(torch.from_numpy(a) for a in found)


def grad_cam_from_features(features: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, size) -> torch.Tensor:
    """Grad-CAM maps (N, 1, *size) from the attribution layer's map ``features`` (N, C, h, w) and the
    linear head's ``weight`` (classes, C·k²) after a k × k spatial max pool (module docstring)."""
    n, channels, h, w = features.shape
    alpha = weight[target].reshape(n, channels, -1).sum(-1) / (h * w)
    cam = (alpha[:, :, None, None] * features).sum(1, keepdim=True).clamp_min(0)
    return F.interpolate(cam, tuple(size), mode="bilinear").clamp_min(0)


def has_max_pool_head(model: nn.Module) -> bool:
    """Whether :func:`grad_cam_from_features` holds for ``model``'s head."""
    return isinstance(model.spatial_pool, nn.AdaptiveMaxPool2d) and isinstance(model.classifier, nn.Linear)


def max_grad_cam_difference(model: nn.Module, graph: OnnxModel, inputs: torch.Tensor) -> float:
    """Largest difference between Captum's Grad-CAM of ``model`` and :func:`grad_cam_from_features` of
    ``graph`` (for the predicted class), relative to the largest Grad-CAM value over ``inputs``: a map
    that ReLU leaves (nearly) all zero must not turn rounding noise into a large relative error."""
    from dpecnn.analysis.measures.attributions import grad_cam

    logits, features = graph.outputs(inputs)
    target = logits.argmax(1)
    ours = grad_cam_from_features(features, model.classifier.weight.detach(), target, inputs.shape[-2:])
    captum = grad_cam(model, inputs, target)
    return ((ours - captum).abs().max() / captum.max().clamp_min(1e-12)).item()


def max_probability_difference(model: nn.Module, graph: OnnxModel, images: Split) -> float:
    """Largest |Δ probability| between ``model`` and ``graph`` over ``images`` in batches of
    :data:`CHECK_BATCHES` sizes in turn (each converted to the model's input when it is checked)."""
    worst, start, turn = 0.0, 0, 0
    with torch.no_grad():
        while start < len(images):
            x = images.inputs(slice(start, start + CHECK_BATCHES[turn % len(CHECK_BATCHES)]))
            diff = (model(x).softmax(1) - graph(x).softmax(1)).abs().max().item()
            worst, start, turn = max(worst, diff), start + len(x), turn + 1
    return worst


def _keep_within_tolerance(path: Path, difference: float, what: str) -> None:
    """Remove ``path`` and raise one error line unless ``difference`` ≤ :data:`TOLERANCE`."""
    if not difference <= TOLERANCE:
        path.unlink()
        raise DpecnnError(f"{what} by {difference:.2g} on the test images (more than {TOLERANCE:g}): not written")


def write_onnx(model: nn.Module, images: Split, path: Path) -> dict:
    """Export ``model`` (eval, CPU) to ``path`` and check it on ``images`` (module docstring); returns
    what the card records. A graph that differs is removed and refused with one error line."""
    model = model.cpu().eval()
    first = images.inputs(slice(0, CHECK_BATCHES[-1]))
    exporter = _export(LogitsAndFeatures(exportable(model)).eval(), first, path)
    graph = OnnxModel(path)
    difference = max_probability_difference(model, graph, images)
    _keep_within_tolerance(path, difference, f"the ONNX export ({exporter}) differs from the model in probability")
    grad_cam = {"grad_cam": "needs the torch model (escnn): this head is not a spatial max pool and a linear layer"}
    if has_max_pool_head(model):
        cam_difference = max_grad_cam_difference(model, graph, first)
        _keep_within_tolerance(path, cam_difference, "Grad-CAM of the ONNX export differs from Captum's, relative")
        grad_cam = {"grad_cam": "from the graph's features", "grad_cam_checked_images": len(first)}
        grad_cam["grad_cam_max_relative_difference"] = cam_difference
    import onnx
    import onnxruntime

    return grad_cam | {
        "file": path.name,
        "exporter": exporter,
        "opset": OPSET,
        "onnx": onnx.__version__,
        "checked_with": f"onnxruntime {onnxruntime.__version__}",
        "checked_images": len(images),
        "max_probability_difference": difference,
    }
