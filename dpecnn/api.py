"""The Python API: train, evaluate, export and load a model in a few calls (what the command line does).

    import dpecnn.api as dp

    data = dp.write_npz("scans.npz", train=(x_train, y_train), test=(x_test, y_test),
                        class_names=["benign", "malignant"])        # uint8 arrays, PIL images or a torch Dataset
    summary = dp.train(data, "outputs/runs/scans", arch="C4", preset="paper")   # DP at ε = 7.42
    dp.evaluate("outputs/runs/scans", split="test")                  # {'acc', 'auc', 'loss', 'n', …}
    dp.export("outputs/runs/scans", "outputs/scans-release")         # weights, model.onnx, model card
    release = dp.load("outputs/scans-release")
    release.predict(images)                                          # class names

``train`` takes every :class:`~dpecnn.train.config.TrainConfig` field as a keyword (``dataset`` is a
MedMNIST name or own data: a folder, a CSV or an ``.npz``) and ``preset`` for a training recipe;
in Jupyter it prints a line per finished epoch (``report`` receives them instead when given). Each
function raises :class:`~dpecnn.errors.DpecnnError` with one line where the command would exit 2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dpecnn.data.in_memory import write_npz
from dpecnn.release import Release
from dpecnn.release import load as load_release

__all__ = ["evaluate", "export", "load", "train", "write_npz"]


def train(
    dataset: str | Path,
    out: str | Path,
    preset: str | None = None,
    report: Callable[[str], None] | None = None,
    **settings,
) -> dict:
    """Train a new run into the folder ``out`` and return its summary (what ``summary.json`` holds)."""
    from dpecnn.train.config import TrainConfig, with_recipe
    from dpecnn.train.trainer import Trainer

    cfg = TrainConfig(**with_recipe(preset, {"dataset": str(dataset), **settings}))
    return Trainer(cfg, out, report=report).run()


def evaluate(run: str | Path, split: str = "test", device: str = "cpu") -> dict:
    """Accuracy, one-vs-rest AUC, loss and ``n`` of the finished run ``run`` on ``split`` of its own
    data, with the per-image ``probs`` and ``labels``."""
    from dpecnn.data.datasets import config_split
    from dpecnn.run_folder import RunFolder
    from dpecnn.train.metrics import evaluate as evaluate_model
    from dpecnn.train.trainer import resolve_device

    cfg, summary = RunFolder(run).read_finished()
    target = resolve_device(device)
    model = RunFolder(run).load_model(cfg, summary).to(target)
    data = config_split(cfg, split)
    return evaluate_model(model, data, target) | {"n": len(data), "split": split}


def export(run: str | Path, out: str | Path, force: bool = False) -> list[Path]:
    """The release folder ``out`` of the finished run ``run`` (:func:`dpecnn.export.export_run`)."""
    from dpecnn.export import export_run

    return export_run(run, out, force)


def load(release: str | Path, device: str = "cpu", backend: str = "auto") -> Release:
    """A release folder's model and input pipeline (:func:`dpecnn.release.load`)."""
    return load_release(release, device, backend)
