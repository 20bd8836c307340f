"""The release's model without escnn: ``model.onnx``, checked against the model it was made from.

escnn builds the steerable filter bases and is needed to rebuild a C_N or O(2) model from its
weights; it has had no release since 2023. So that a hospital can run a release without it,
every export also writes the evaluation model as an ONNX graph (torch's exporter: ``dynamo``
first, the TorchScript-based exporter where ``dynamo`` cannot trace the model), with a dynamic
batch axis, input ``image`` (N, C, S, S) as the release's input pipeline makes it and output
``logits``. The graph is written only when onnxruntime's outputs on the run's test images (in
batches of several sizes) equal the torch model's within :data:`TOLERANCE` in probability.

ONNX, not TorchScript: a TorchScript archive holds code that ``torch.jit.load`` runs, and loading a
dpecnn folder never runs code from it; an ONNX file is a graph of standard operators that
onnxruntime evaluates. The graph gives predictions only: attributions (Grad-CAM, guided backprop)
need the torch model, and so escnn for the equivariant groups.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dpecnn.errors import DpecnnError

TOLERANCE = 1e-5  # largest |Δ probability| between onnxruntime and torch on the check images
CHECK_BATCHES = (1, 7, 64)  # batch sizes the check runs (the graph's batch axis is dynamic)
OPSET = 18


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


def _export(model: nn.Module, example: torch.Tensor, path: Path) -> str:
    """Write ``path``; returns the exporter that succeeded."""
    try:
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=["image"],
            output_names=["logits"],
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
                output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
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
        (logits,) = self.session.run(["logits"], {"image": x.detach().cpu().numpy().astype(np.float32)})
        return torch.from_numpy(logits)


def max_probability_difference(model: nn.Module, graph: OnnxModel, inputs: torch.Tensor) -> float:
    """Largest |Δ probability| between ``model`` and ``graph`` over ``inputs`` in batches of
    :data:`CHECK_BATCHES` sizes in turn."""
    worst, start, turn = 0.0, 0, 0
    with torch.no_grad():
        while start < len(inputs):
            x = inputs[start : start + CHECK_BATCHES[turn % len(CHECK_BATCHES)]]
            diff = (model(x).softmax(1) - graph(x).softmax(1)).abs().max().item()
            worst, start, turn = max(worst, diff), start + len(x), turn + 1
    return worst


def write_onnx(model: nn.Module, inputs: torch.Tensor, path: Path) -> dict:
    """Export ``model`` (eval, CPU) to ``path`` and check it on ``inputs`` (module docstring); returns
    what the card records. A graph that differs is removed and refused with one error line."""
    model = exportable(model.cpu())
    exporter = _export(model, inputs[: CHECK_BATCHES[-1]], path)
    difference = max_probability_difference(model, OnnxModel(path), inputs)
    if not difference <= TOLERANCE:
        path.unlink()
        raise DpecnnError(
            f"the ONNX export ({exporter}) differs from the model by {difference:.2g} in probability on the test "
            f"images (more than {TOLERANCE:g}): not written"
        )
    import onnx
    import onnxruntime

    return {
        "file": path.name,
        "exporter": exporter,
        "opset": OPSET,
        "onnx": onnx.__version__,
        "checked_with": f"onnxruntime {onnxruntime.__version__}",
        "checked_images": len(inputs),
        "max_probability_difference": difference,
    }
