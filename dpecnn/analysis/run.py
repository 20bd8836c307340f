"""Load finished runs and compute the paper's analyses for one or several of them.

The multi-run functions (``*_figure``) are what the notebooks call to compare a
conventional with an equivariant model; :func:`analyse_run` is what
``python -m dpecnn analyse RUN_DIR`` calls for one run: calibration (Brier, ECE,
reliability), the sparsity curve, filter impulse responses of the first and last
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

from dpecnn import io
from dpecnn.analysis import attributions, impulse
from dpecnn.data import load_split
from dpecnn.plotting import attribution_grid, fir_maps, reliability_diagrams, sparsity_curves
from dpecnn.run_folder import RunFolder
from dpecnn.train.config import TrainConfig


@dataclass
class Run:
    """A finished training run: its folder, config, summary, metric log (covered by ε),
    diagnostic log (not covered by ε: computed from un-noised training data) and model."""

    path: Path
    config: TrainConfig
    summary: dict
    metrics: list[dict]
    diagnostics: list[dict]
    model: nn.Module

    @property
    def private_release(self) -> bool:
        return bool(self.summary.get("private_release"))

    @property
    def label(self) -> str:
        """``C4 DP``; a DP run that is not a private release (``--reproducible``) is marked."""
        mode = "DP" if self.config.dp else "non-DP"
        return f"{self.config.arch} {mode}" + (" (not private)" if self.config.dp and not self.private_release else "")

    def sparsity_curve(self) -> tuple[list[int], list[float]]:
        """Pre-noise gradient sparsity per logged step (a diagnostic; empty without diagnostics)."""
        steps = [r for r in self.diagnostics if r["kind"] == "step"]
        return [r["step"] for r in steps], [r["sparsity"] for r in steps]

    def epoch_records(self) -> list[dict]:
        return [r for r in self.metrics if r["kind"] == "epoch"]


def load_run(path: str | Path) -> Run:
    """Load a finished run without executing anything from it; anything else is one clear
    :class:`~dpecnn.errors.DpecnnError`."""
    folder = RunFolder(path)
    folder.require_finished()
    cfg, summary = folder.read_config(), folder.read_summary()
    return Run(folder.path, cfg, summary, folder.metrics(), folder.diagnostics(), folder.load_model(cfg, summary))


def validation_images(run: Run, n: int) -> torch.Tensor:
    """The first ``n`` validation images of the run's dataset (the same for every run)."""
    return load_split(run.config.dataset, "val", run.config.data_root).images[:n]


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


def attribution_figure(runs: list[Run], n_images: int, out_dir=None, name: str = "attributions"):
    """Fig. 2: input | Grad-CAM | guided backprop for every run on the same images."""
    images = validation_images(runs[0], n_images)
    return attribution_grid(images.numpy(), {r.label: attribution_maps(r, images) for r in runs}, out_dir, name)


def fir_figure(runs: list[Run], n_images: int, out_dir=None, name: str = "fir_maps"):
    """FIR maps of the first and last convolution of every run; returns (figure, scalar rows)."""
    images = validation_images(runs[0], n_images)
    maps, magnitudes, rows = {}, {}, []
    for run in runs:
        for layer, res in fir_analysis(run, images, attribution_maps(run, images)["guided"]).items():
            key = f"{run.label} {layer}"
            maps[key], magnitudes[key] = res["map"], res["magnitude"]
            rows.append({"run": run.label, "layer": layer, **{k: v for k, v in res.items() if k != "map"}})
    return fir_maps(maps, out_dir, name, magnitudes), rows


def sparsity_figure(runs: list[Run], out_dir=None, name: str = "sparsity"):
    """Fig. 1 right: ℓ0 gradient sparsity over training for every run."""
    return sparsity_curves({r.label: r.sparsity_curve() for r in runs}, out_dir, name,
                           runs[0].config.sparsity_threshold, {r.label: r.config.arch for r in runs})


def calibration_figure(runs: list[Run], out_dir=None, name: str = "reliability"):
    """Reliability diagrams with Brier score and ECE (test split) for every run."""
    return reliability_diagrams({r.label: r.summary["reliability"] for r in runs}, out_dir, name,
                                {r.label: {"Brier": r.summary["brier"], "ECE": r.summary["ece"]} for r in runs})


def analyse_run(path: str | Path, out_dir: str | Path | None = None, n_images: int = 6) -> dict:
    """Compute and plot every analysis of one finished run (see module docstring)."""
    run = load_run(path)
    out = Path(out_dir) if out_dir else run.path / "analysis"
    fir_fig, fir_rows = fir_figure([run], n_images, out)
    for fig in (sparsity_figure([run], out), calibration_figure([run], out), fir_fig,
                attribution_figure([run], n_images, out)):
        plt.close(fig)
    _, sparsity = run.sparsity_curve()
    scalars = {
        "run": str(run.path), "arch": run.config.arch, "dp": run.config.dp, "val_acc": run.summary["val_acc"],
        "brier": run.summary["brier"], "ece": run.summary["ece"],
        "diagnostics_not_covered_by_epsilon": {  # from the pre-noise gradient (diagnostics.jsonl)
            "sparsity_mean": float(np.mean(sparsity)) if sparsity else None,
            "sparsity_final": sparsity[-1] if sparsity else None},
        "fir": {row["layer"]: {k: v for k, v in row.items() if k not in ("run", "layer")} for row in fir_rows},
    }
    io.write_json(out / "analysis.json", scalars)
    return scalars
