"""Load finished runs and compute every analysis of the paper for them.

:func:`analyse_run` is what ``python -m dpecnn analyse RUN_DIR`` calls: calibration (Brier,
ECE, reliability), the sparsity curve, filter impulse responses of the first and last
convolution with their magnitude and co-location with guided-backprop maps, Grad-CAM and
guided backprop on validation images; figures go to ``<out>/`` and scalars to
``<out>/analysis.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn

from dpecnn.analysis import attributions, impulse
from dpecnn.data import Split, load_split
from dpecnn.errors import DpecnnError
from dpecnn.models import build_model
from dpecnn.plotting import attribution_grid, fir_maps, reliability_diagrams, sparsity_curves
from dpecnn.train import io
from dpecnn.train.config import TrainConfig

RUN_FILES = ("config.json", "summary.json", "model.pt")


@dataclass
class Run:
    """A finished training run: its folder, config, summary, metric log and trained model."""

    path: Path
    config: TrainConfig
    summary: dict
    metrics: list[dict]
    model: nn.Module

    @property
    def label(self) -> str:
        return f"{self.config.arch} {'DP' if self.config.dp else 'non-DP'}"

    def sparsity_curve(self) -> tuple[list[int], list[float]]:
        steps = [r for r in self.metrics if r["kind"] == "step"]
        return [r["step"] for r in steps], [r["sparsity"] for r in steps]

    def epoch_curve(self, key: str) -> tuple[list[int], list[float]]:
        epochs = [r for r in self.metrics if r["kind"] == "epoch"]
        return [r["epoch"] for r in epochs], [r[key] for r in epochs]

    def images(self, n: int, split: str = "val") -> Split:
        """The first ``n`` images of a split, the same for every run of a dataset."""
        data = load_split(self.config.dataset, split, self.config.data_root)
        return Split(data.images[:n], data.labels[:n])


def load_run(path: str | Path) -> Run:
    """Load a finished run; anything else is one clear :class:`DpecnnError`."""
    path = Path(path)
    missing = [f for f in RUN_FILES if not (path / f).exists()]
    if not path.is_dir() or missing:
        raise DpecnnError(f"{path} is not a finished run (missing: {', '.join(missing) or 'folder'})")
    cfg = TrainConfig.from_dict(io.read_json(path / "config.json"))
    state = torch.load(path / "model.pt", map_location="cpu", weights_only=False)
    summary = io.read_json(path / "summary.json")
    model = build_model(cfg.arch, summary["in_channels"], summary["num_classes"], cfg.layout, cfg.restrict)
    model.load_state_dict(state["state_dict"])
    return Run(path, cfg, summary, io.read_jsonl(path / "metrics.jsonl"), model.eval())


def attribution_maps(run: Run, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Grad-CAM ``(N, H, W)`` and guided-backprop magnitude ``(N, H, W)`` maps."""
    cam = attributions.grad_cam(run.model, images)[:, 0]
    gbp = attributions.saliency_map(attributions.guided_backprop(run.model, images))
    return {"gradcam": cam.numpy(), "guided": gbp.numpy()}


def fir_analysis(run: Run, images: torch.Tensor, guided: np.ndarray) -> dict[str, dict]:
    """FIR magnitude, map and co-location with guided backprop for the first and last conv."""
    layers = impulse.conv_layers(run.model)
    result = {}
    for name, layer in (layers[0], layers[-1]):
        fir = impulse.impulse_response(run.model, layer, images.shape[1], images.shape[-1])
        response = impulse.response_map(run.model, layer, images)
        result[name] = {"magnitude": impulse.fir_magnitude(fir), "map": impulse.fir_map(fir).numpy(),
                        **impulse.colocation(response, torch.from_numpy(guided))}
    return result


def analyse_run(path: str | Path, out_dir: str | Path | None = None, n_images: int = 6) -> dict:
    """Compute and plot every analysis of one finished run (see module docstring)."""
    run = load_run(path)
    out = Path(out_dir) if out_dir else run.path / "analysis"
    images = run.images(n_images).images
    maps = attribution_maps(run, images)
    firs = fir_analysis(run, images, maps["guided"])
    figures = [
        sparsity_curves({run.label: run.sparsity_curve()}, out, "sparsity", run.config.sparsity_threshold,
                        {run.label: run.config.arch}),
        reliability_diagrams({run.label: run.summary["reliability"]}, out, "reliability",
                             {run.label: {"Brier": run.summary["brier"], "ECE": run.summary["ece"]}}),
        fir_maps({f"{run.label} {name}": v["map"] for name, v in firs.items()}, out, "fir_maps",
                 {f"{run.label} {name}": v["magnitude"] for name, v in firs.items()}),
        attribution_grid(images.numpy(), {run.label: maps}, out, "attributions"),
    ]
    for fig in figures:
        plt.close(fig)
    steps, sparsity = run.sparsity_curve()
    scalars = {
        "run": str(run.path), "arch": run.config.arch, "dp": run.config.dp,
        "brier": run.summary["brier"], "ece": run.summary["ece"], "val_acc": run.summary["val_acc"],
        "sparsity_mean": float(np.mean(sparsity)) if sparsity else None,
        "sparsity_final": sparsity[-1] if sparsity else None,
        "fir": {name: {k: v for k, v in r.items() if k != "map"} for name, r in firs.items()},
        "gradcam_mean": float(maps["gradcam"].mean()),
    }
    io.write_json(out / "analysis.json", scalars)
    return scalars
