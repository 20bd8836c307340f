"""Finished runs, grouped by setting across seeds, as the notebooks load them.

:func:`load_runs` is the notebooks' loader (it trains a labelled quick stand-in for a
missing run); :func:`group_runs` puts runs that agree on everything but the seed into one
:class:`RunGroup`, whose numbers the figures and tables show as mean ± std over seeds.
The reports built on them are in :mod:`dpecnn.analysis.pages.reports` and
:mod:`~dpecnn.analysis.pages.map_reports`; :mod:`dpecnn.analysis.pages.analyse` runs them all on one run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from dpecnn.analysis.pages import table
from dpecnn.analysis.stats import Estimate
from dpecnn.data import Split
from dpecnn.data.datasets import config_split
from dpecnn.run_folder import RunFolder, verified_privacy
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
    privacy: dict  # derived from the identity-checked config and the accountant (verified_privacy)

    @property
    def private_release(self) -> bool:
        return self.privacy["private_release"]

    @property
    def stand_in(self) -> bool:
        """Trained by a notebook as a quick stand-in for a missing run (:func:`load_runs`)."""
        return table.is_stand_in(self.summary)

    @property
    def label(self) -> str:
        """``C4 DP``; a DP run that is not a private release (``--reproducible``) and a
        stand-in are marked."""
        mode = "DP" if self.config.dp else "non-DP"
        return (
            f"{self.config.arch} {mode}"
            + (" (not private)" if self.config.dp and not self.private_release else "")
            + (" (stand-in)" if self.stand_in else "")
        )

    def sparsity_curve(self) -> tuple[list[int], list[float]]:
        """Pre-noise gradient sparsity per logged step (a diagnostic; empty without diagnostics)."""
        steps = [r for r in self.diagnostics if r["kind"] == "step"]
        return [r["step"] for r in steps], [r["sparsity"] for r in steps]

    def epoch_records(self) -> list[dict]:
        return [r for r in self.metrics if r["kind"] == "epoch"]

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names in label order, as the run recorded them (runs recorded before the input
        pipeline was kept: medmnist's names)."""
        if "input" in self.summary:
            return tuple(self.summary["input"]["class_names"])
        from dpecnn.data.medmnist_data import class_names

        return class_names(self.config.dataset)


def load_run(path: str | Path) -> Run:
    """Load a finished run without executing anything from it; anything else is one clear
    :class:`~dpecnn.errors.DpecnnError`."""
    folder = RunFolder(path)
    cfg, summary = folder.read_finished()
    return Run(
        folder.path,
        cfg,
        summary,
        folder.metrics(),
        folder.diagnostics(),
        folder.load_model(cfg, summary),
        verified_privacy(cfg, summary, str(folder.summary_file)),
    )


def validation_examples(run: Run, n: int) -> Split:
    """``n`` validation images of the run's dataset with their labels, the same for every run:
    the first image of each class in class order, then the second of each class, and so on."""
    split = config_split(run.config, "val")
    labels = split.labels.numpy()
    rank = np.zeros(len(labels), dtype=np.int64)  # position of each image among its class
    for c in np.unique(labels):
        rank[labels == c] = np.arange((labels == c).sum())
    order = torch.from_numpy(np.lexsort((labels, rank))[:n])
    return split.select(order)


def validation_images(run: Run, n: int) -> torch.Tensor:
    """The images of :func:`validation_examples`."""
    return validation_examples(run, n).inputs()


@dataclass
class RunGroup:
    """Runs that agree on every setting but the seed, sorted by seed; ``settings``: dataset,
    arch, dp and every applicable setting (:func:`~dpecnn.analysis.pages.table.setting_groups`)."""

    label: str
    settings: dict
    runs: list[Run]

    @property
    def arch(self) -> str:
        return self.settings["arch"]

    @property
    def seeds(self) -> list[int]:
        return [r.config.seed for r in self.runs]

    def estimate(self, value: Callable[[Run], float]) -> Estimate:
        """``value`` of each run, as mean ± std over the group's seeds."""
        return Estimate.over_seeds([value(r) for r in self.runs])


def group_runs(runs: Sequence[Run]) -> list[RunGroup]:
    """Runs that agree on everything but the seed, as groups (:func:`~dpecnn.analysis.pages.table.setting_groups`),
    labelled by arch, DP or non-DP and every other setting that differs between the groups."""
    by_summary = {id(r.summary): r for r in runs}  # setting_groups groups the summaries; back to their runs
    groups = table.setting_groups([r.summary for r in runs])
    varying, _ = table.split_settings([st for st, _ in groups], ignore=("arch", "dp"))
    result = []
    for settings, summaries in groups:
        members = [by_summary[id(s)] for s in summaries]
        label = table.group_label(settings, ["dp"] + varying, summaries)
        if any(r.config.dp and not r.private_release for r in members):
            label += " (not private)"
        result.append(RunGroup(label, settings, members))
    return result


def load_runs(runs: Mapping[str, str | Sequence[str]], quick_train: Mapping | None = None) -> list[RunGroup]:
    """The notebooks' run loader. ``runs``: arch → its run folders (one per seed; a single
    folder may be given as a string). A folder holding a finished run is loaded. One that does
    not is trained first as a quick *stand-in*, ``TrainConfig(**quick_train, arch=arch,
    seed=<its position in the list>)``, announced by a warning in the notebook's output,
    recorded in its summary (``notes``) and labelled "(stand-in)" in every figure and table,
    also when loaded again later. Without ``quick_train`` a missing run is an error.
    Returns the runs grouped by setting (:func:`group_runs`)."""
    from dpecnn.train.sweep import ensure_run  # the training machinery only when something trains

    loaded = []
    for arch, folders in runs.items():
        for seed, folder in enumerate([folders] if isinstance(folders, (str, Path)) else folders):
            if not RunFolder(folder).finished and quick_train is not None:
                show_warning(
                    f"`{folder}` holds no finished run: training a quick stand-in ({arch}, seed {seed}, "
                    f"{_settings_text(quick_train)}). Figures and tables label it “(stand-in)”; "
                    "they show what the analysis looks like, not the paper's result."
                )
                notes = {**quick_train.get("notes", {}), table.STAND_IN_NOTE: True}
                ensure_run(TrainConfig(**{**quick_train, "arch": arch, "seed": seed, "notes": notes}), folder)
            loaded.append(load_run(folder))
    stand_ins = [r.path.name for r in loaded if r.stand_in]
    if stand_ins:
        show_warning(f"{len(stand_ins)} of {len(loaded)} runs are quick stand-ins: {', '.join(stand_ins)}.")
    return group_runs(loaded)


def _settings_text(settings: Mapping) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items() if k not in ("data_root", "notes"))


def show_warning(text: str) -> None:
    """A warning the reader sees: Markdown in a notebook's output (not stderr, which
    notebooks show as a red box or hide), a ``warning:`` line on stdout elsewhere."""
    from IPython import get_ipython

    if get_ipython() is None:
        print(f"warning: {text}")
        return
    from IPython.display import Markdown, display

    display(Markdown(f"**⚠ Warning:** {text}"))
