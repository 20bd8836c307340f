"""The image-based reports: attributions (Fig. 2, notebook 02) and filter impulse responses
(notebook 03), on the same validation images for every run
(:func:`~dpecnn.analysis.pages.run.validation_images`).
See :mod:`dpecnn.analysis.pages.reports` for what a report is."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dpecnn.analysis.measures import attributions, impulse
from dpecnn.analysis.pages.report_base import Report, save_table
from dpecnn.analysis.pages.reports import group_columns, versus_conventional
from dpecnn.analysis.pages.run import Run, RunGroup, validation_examples, validation_images
from dpecnn.analysis.stats import Estimate
from dpecnn.errors import DpecnnError
from dpecnn.plotting import attribution_grid, fir_maps

DATA_SETTINGS = ("dataset", "size", "channels", "data_hash")  # what decides the images a run sees

FILTERS_SHOWN = 8  # first-convolution output channels drawn one by one in the FIR figure


def shared_images(groups: Sequence[RunGroup]) -> Run:
    """The run whose validation images every group is shown and scored on (the first group's
    first); groups trained on other data (dataset, size, channels) are refused."""
    sources = {tuple(g.settings.get(k) for k in DATA_SETTINGS) for g in groups}
    if len(sources) > 1:
        listed = "; ".join(
            ", ".join(f"{k} {v}" for k, v in zip(DATA_SETTINGS, s) if v is not None) for s in sorted(sources, key=str)
        )
        raise DpecnnError(
            f"the groups were trained on different data ({listed}): compare the maps of one dataset at a time"
        )
    return groups[0].runs[0]


def attribution_maps(run: Run, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Grad-CAM ``(N, H, W)`` and guided-backprop magnitude ``(N, H, W)`` maps, as arrays."""
    return {k: v.numpy() for k, v in attributions.attribution_maps(run.model, images).items()}


def attribution_report(groups: Sequence[RunGroup], n_images: int, fig_dir=None, table_dir=None) -> Report:
    """02, Fig. 2: per image a row, per group Grad-CAM and guided backprop of its first seed.
    Table ``attributions``: how well the two attributions agree (Spearman rank correlation
    and top-10 % IoU over pixels, :func:`~dpecnn.analysis.measures.impulse.colocation`; mean over the
    images, then mean ± std over seeds), also in the column headers; the verdict compares the
    Spearman agreement of each equivariant group with the conventional one."""
    source = shared_images(groups)
    examples = validation_examples(source, n_images)
    images, names = examples.inputs(), source.class_names
    shown, agreement, rows = {}, {}, []
    for group in groups:
        maps = [attribution_maps(r, images) for r in group.runs]
        scores = [impulse.colocation(torch.from_numpy(m["gradcam"]), torch.from_numpy(m["guided"])) for m in maps]
        spearman = Estimate.over_seeds([s["spearman"] for s in scores])
        iou = Estimate.over_seeds([s["top_k_iou"] for s in scores])
        shown[group.label], agreement[group.label] = maps[0], spearman
        rows.append({**group_columns(group), **spearman.columns("spearman"), **iou.columns("top_k_iou")})
    headers = {g.label: f"seed {g.seeds[0]} shown\nρ {agreement[g.label].text(2)}" for g in groups}
    figure = attribution_grid(
        images.numpy(), shown, fig_dir, "attributions", headers, [names[k] for k in examples.labels.tolist()]
    )
    verdict = versus_conventional(
        groups, agreement, "{a} Grad-CAM and guided backprop agree more than {b}'s (Spearman over pixels)", True
    )
    return Report(figure, {"attributions": save_table(rows, table_dir, "attributions")}, verdict)


def _fir_of_group(group: RunGroup, images: torch.Tensor) -> tuple[list[dict], list[dict]]:
    """Panels for :func:`~dpecnn.plotting.fir_maps` and table rows, for the group's first and
    last convolution (see :func:`fir_report`)."""
    per_run = []
    for run in group.runs:
        layers = impulse.conv_layers(run.model)
        chosen = (layers[0], layers[-1])
        responses = impulse.centre_responses(run.model, [m for _, m in chosen], images.shape[1], images.shape[-1])
        guided = torch.from_numpy(attribution_maps(run, images)["guided"])
        per_run.append(
            [
                (name, r, impulse.colocation(impulse.response_map(run.model, m, images), guided))
                for (name, m), r in zip(chosen, responses)
            ]
        )
    panels, rows = [], []
    for i, role in enumerate(("first", "last")):
        name = per_run[0][i][0]
        mean_map = torch.stack([impulse.fir_map(run[i][1]) for run in per_run]).mean(0)
        window = impulse.support(mean_map)
        magnitude = Estimate.over_seeds([float(impulse.fir_map(run[i][1])[window].mean()) for run in per_run])
        channels = per_run[0][i][1][:FILTERS_SHOWN][(slice(None), *window)].numpy() if role == "first" else None
        seed_note = f"\nfilters: seed {group.seeds[0]}" if role == "first" else ""
        panels.append(
            {
                "title": f"{name} mean |R|\n{magnitude.text(3)}{seed_note}",
                "map": mean_map[window].numpy(),
                "channels": channels,
            }
        )
        colocation = {k: Estimate.over_seeds([run[i][2][k] for run in per_run]) for k in ("spearman", "top_k_iou")}
        rows.append(
            {
                **group_columns(group),
                "layer": name,
                "role": role,
                **magnitude.columns("magnitude"),
                **colocation["spearman"].columns("spearman"),
                **colocation["top_k_iou"].columns("top_k_iou"),
            }
        )
    return panels, rows


def fir_report(groups: Sequence[RunGroup], n_images: int, fig_dir=None, table_dir=None) -> Report:
    """03: filter impulse responses of the first and last convolution at input resolution
    (:func:`~dpecnn.analysis.measures.impulse.centre_responses`: the centre unit's response ``R`` to a
    grey unit impulse at each input pixel). Per group and layer the figure draws the mean
    absolute response over channels, averaged over seeds and cut to its support window
    (3×3 for the first convolution, the whole image for the last), with its colour bar; the
    title gives the mean of those pixels ± std over seeds — the same quantity as the colours.
    For the first convolution :data:`FILTERS_SHOWN` single filters of the first seed follow
    (signed, summed over input channels). Table ``fir``: magnitude and co-location of the
    layer's response on validation images with guided backprop (Spearman, top-10 % IoU); the
    verdict compares first-convolution magnitude and last-convolution co-location with ``e``."""
    images = validation_images(shared_images(groups), n_images)
    panels, rows = {}, []
    for group in groups:
        panels[group.label], group_rows = _fir_of_group(group, images)
        rows += group_rows
    figure = fir_maps(panels, fig_dir, "fir_maps")

    def estimates(role: str, column: str) -> dict[str, Estimate]:
        return {
            r["group"]: Estimate.from_mean_std(r[column], r[f"{column} std"], r["n"]) for r in rows if r["role"] == role
        }

    verdict = "\n".join(
        [
            versus_conventional(
                groups, estimates("first", "magnitude"), "{a} first-convolution FIR magnitude higher than {b}'s", True
            ),
            versus_conventional(
                groups,
                estimates("last", "spearman"),
                "{a} last-convolution response co-located better with guided backprop than {b}'s (Spearman)",
                True,
            ),
        ]
    )
    return Report(figure, {"fir": save_table(rows, table_dir, "fir")}, verdict)
