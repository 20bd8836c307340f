"""Accuracy against the privacy budget, and the privacy–utility gap per group.

From the finished runs of a folder (e.g. ``sweep --preset privacy-utility``), one *point* per
(dataset, group, readout, layout, ε) — ε None for the runs without DP — with the mean ± std over its
seeds of validation and test accuracy. The *gap* of a group at ε is its non-DP accuracy minus
its DP accuracy at ε; the paper's claim (Hölzl et al. 2022: −5.5 points for conventional CNNs
against −2.8 for ECNNs) is that equivariance narrows it, i.e. gap(e) − gap(G) > 0. Each gap and
each difference of gaps is a contrast of independent group means with a Welch–Satterthwaite
95 % t interval and p-value (:func:`~dpecnn.analysis.stats.welch_contrast`): the runs of
different groups and budgets are independent trainings, so no pairing by seed is assumed.

All runs at one point must agree on every other setting, and the points of a dataset on every
setting but ε, the group's own (readout, restriction, field rule) and layout — except the
settings a recipe (``train --preset``) sets apart for the DP and the non-DP half. A folder
mixing, e.g., two learning rates at the same ε, or augmentation for one group only, is refused
(one error line) rather than averaged or compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpecnn import io
from dpecnn.analysis.pages import table
from dpecnn.analysis.stats import Contrast, Estimate, family_verdicts, welch_contrast, welch_difference
from dpecnn.errors import DpecnnError
from dpecnn.train.config import RECIPE_HALF_FIELDS

# What may differ between a dataset's points: the axes of the curve and the groups' own settings
# (and between its DP and non-DP points, what a recipe sets apart: RECIPE_HALF_FIELDS)
POINT_AXES = ("epsilon", "layout", "readout", "restrict", "fields")

METRICS = ("test_acc", "val_acc")  # test first: validation chose the recipe; the paper reports it


@dataclass
class Point:
    """The runs of one group at one budget (``epsilon`` None: without DP)."""

    dataset: str
    arch: str
    readout: str | None
    layout: str
    epsilon: float | None
    runs: list[dict]
    show_layout: bool = False  # the folder holds several layouts: labels name them

    @property
    def label(self) -> str:
        return group_label(self.arch, self.readout, self.layout if self.show_layout else None)

    def base_label(self, base: str) -> str:
        """The label of the ``base`` group this point is compared with (same layout)."""
        return group_label(base, None, self.layout if self.show_layout else None)

    def values(self, metric: str) -> list[float]:
        return [r[metric] for r in self.runs]

    @property
    def seeds(self) -> list[int]:
        return sorted(r["seed"] for r in self.runs)


def group_label(arch: str, readout: str | None, layout: str | None) -> str:
    """``C4``, ``C4 (orientation readout)``, ``e 8-16-32``."""
    return arch + (" (orientation readout)" if readout == "orientation" else "") + (f" {layout}" if layout else "")


def privacy_points(summaries: list[dict]) -> list[Point]:
    """Group the runs by dataset, arch, readout, layout and ε (see module docstring)."""
    by_key: dict[tuple, list[tuple[dict, dict]]] = {}
    for s in summaries:
        settings = table.grouping_settings(s)
        readout = settings.get("readout") if s["arch"] not in ("e", "C1") else None
        key = (
            s["dataset"],
            s["arch"],
            readout,
            "-".join(map(str, s["layout"])),
            s["epsilon_target"] if s["dp"] else None,
        )
        by_key.setdefault(key, []).append((s, settings))
    layouts = {key[3] for key in by_key}
    points = []
    for key, members in by_key.items():
        varying, _ = table.split_settings([st for _, st in members])
        if varying:
            eps = "no DP" if key[4] is None else f"ε = {key[4]:g}"
            raise DpecnnError(
                f"the {key[1]} runs on {key[0]} at {key[3]}, {eps} differ in {', '.join(varying)}: "
                "put each setting in its own folder"
            )
        points.append(Point(*key, [s for s, _ in members], len(layouts) > 1))
    for dataset in {key[0] for key in by_key}:
        _check_comparable(
            dataset, [(key[4] is not None, st) for key, m in by_key.items() if key[0] == dataset for _, st in m]
        )
    return sorted(
        points, key=lambda p: (p.dataset, table.arch_rank(p.arch), p.label, p.epsilon is None, p.epsilon or 0)
    )


def _check_comparable(dataset: str, settings: list[tuple[bool, dict]]) -> None:
    """Refuse a dataset's runs (``(dp, grouping settings)``) whose points differ in more than
    the curve's axes, or whose halves differ in more than a recipe sets apart (module docstring)."""
    halves = {dp: [st for d, st in settings if d == dp] for dp in (False, True)}
    for dp, half in halves.items():
        varying, _ = table.split_settings(half, ignore=POINT_AXES)
        if varying:
            raise DpecnnError(
                f"the {'DP' if dp else 'non-DP'} runs on {dataset} differ in {', '.join(varying)} (besides ε, "
                "layout and the groups' own settings): put each setting in its own folder"
            )
    between, _ = table.split_settings(halves[False] + halves[True], ignore=POINT_AXES)
    if apart := [k for k in between if k not in RECIPE_HALF_FIELDS]:
        raise DpecnnError(
            f"the DP and the non-DP runs on {dataset} differ in {', '.join(apart)}, which no recipe sets apart: "
            "a gap needs the same setting on both sides"
        )


def _find(points, dataset, label, epsilon) -> Point | None:
    return next((p for p in points if (p.dataset, p.label, p.epsilon) == (dataset, label, epsilon)), None)


def curve_rows(points: list[Point]) -> list[dict]:
    """One row per point: mean, std (ddof 1), n and seeds of each metric, and ε spent."""
    rows = []
    for p in points:
        row = {
            "dataset": p.dataset,
            "group": p.label,
            "arch": p.arch,
            "epsilon": p.epsilon,
            "n": len(p.runs),
            "seeds": " ".join(map(str, p.seeds)),
            "epsilon_spent": float(np.mean([r["epsilon_spent"] for r in p.runs])) if p.epsilon else None,
        }
        for m in METRICS:
            v = np.asarray(p.values(m))
            row |= {m: float(v.mean()), f"{m} std": float(v.std(ddof=1)) if len(v) > 1 else None}
        rows.append(row)
    return rows


def gap(points: list[Point], dataset: str, label: str, epsilon: float, metric: str = "val_acc") -> Contrast | None:
    """Non-DP minus DP accuracy of one group at ``epsilon`` (None without both)."""
    nodp, dp = _find(points, dataset, label, None), _find(points, dataset, label, epsilon)
    if nodp is None or dp is None:
        return None
    return welch_difference(nodp.values(metric), dp.values(metric))


def gap_difference(
    points: list[Point], dataset: str, base: str, other: str, epsilon: float, metric: str = "val_acc"
) -> Contrast | None:
    """gap(``base``) − gap(``other``) at ``epsilon``: > 0 when ``other`` narrows the gap."""
    members = [_find(points, dataset, g, e) for g in (base, other) for e in (None, epsilon)]
    if any(m is None for m in members):
        return None
    signs = (1, -1, -1, 1)
    return welch_contrast([(c, m.values(metric)) for c, m in zip(signs, members)])


def dp_difference(
    points: list[Point], dataset: str, base: str, other: str, epsilon: float | None, metric: str = "val_acc"
) -> Contrast | None:
    """Accuracy of ``other`` minus ``base`` at one budget."""
    a, b = _find(points, dataset, other, epsilon), _find(points, dataset, base, epsilon)
    return None if a is None or b is None else welch_difference(a.values(metric), b.values(metric))


def figure_lines(points: list[Point]) -> list[dict]:
    """What :func:`~dpecnn.plotting.privacy_utility.privacy_utility_figure` draws, per group (%)."""
    lines = []
    for dataset, label in dict.fromkeys((p.dataset, p.label) for p in points):
        mine = [p for p in points if (p.dataset, p.label) == (dataset, label)]
        dp = [p for p in mine if p.epsilon is not None]
        no_dp = next((p for p in mine if p.epsilon is None), None)

        def stats(p, metric):
            v = 100 * np.asarray(p.values(metric))
            return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)

        gaps = []
        for p in dp:
            c = gap(points, dataset, label, p.epsilon, "test_acc")
            if c is not None:
                gaps.append(
                    (
                        p.epsilon,
                        100 * c.estimate,
                        100 * c.low if c.low is not None else float("nan"),
                        100 * c.high if c.high is not None else float("nan"),
                    )
                )
        lines.append(
            {
                "label": label,
                "arch": mine[0].arch,
                "epsilons": [p.epsilon for p in dp],
                "dp": {m: tuple(zip(*[stats(p, m) for p in dp])) if dp else ((), (), ()) for m in METRICS},
                "no_dp": {m: stats(no_dp, m) for m in METRICS} if no_dp else None,
                "gap": gaps,
            }
        )
    return lines


def gap_rows(points: list[Point], metric: str = "val_acc", base: str = "e") -> list[dict]:
    """Per dataset, group and DP budget: the group's gap, its accuracy difference to ``base`` and,
    for groups other than ``base``, gap(``base``) − gap(group); each with interval and p-value."""
    rows = []
    for p in points:
        if p.epsilon is None:
            continue
        row = {"dataset": p.dataset, "group": p.label, "epsilon": p.epsilon, "metric": metric}
        for name, contrast in (
            ("gap", gap(points, p.dataset, p.label, p.epsilon, metric)),
            (
                f"minus_{base}",
                dp_difference(points, p.dataset, p.base_label(base), p.label, p.epsilon, metric)
                if p.arch != base
                else None,
            ),
            (
                f"gap_{base}_minus_gap",
                gap_difference(points, p.dataset, p.base_label(base), p.label, p.epsilon, metric)
                if p.arch != base
                else None,
            ),
        ):
            if contrast is not None:
                row |= {
                    name: contrast.estimate,
                    f"{name} CI low": contrast.low,
                    f"{name} CI high": contrast.high,
                    f"{name} p": contrast.p_value,
                    f"{name} seeds": " ".join(map(str, contrast.seeds)),
                }
        rows.append(row)
    return rows


def privacy_utility_verdict(points: list[Point], metric: str = "test_acc", base: str = "e") -> str:
    """For every group other than ``base`` and every DP budget: does it narrow the gap, and is it
    more accurate than ``base`` under DP? Each line states its evidence; the lines are one family
    (Holm, :func:`~dpecnn.analysis.stats.family_verdicts`)."""
    lines: list[str | tuple[str, Contrast]] = []
    for p in points:
        if p.epsilon is None or p.arch == base:
            continue
        where, b = f"{p.dataset}, ε = {p.epsilon:g}, {metric.replace('_', ' ')}", p.base_label(base)
        narrowing = gap_difference(points, p.dataset, b, p.label, p.epsilon, metric)
        if narrowing is not None:
            gaps = [gap(points, p.dataset, g, p.epsilon, metric) for g in (b, p.label)]
            lines.append(
                (
                    f"{where}: {p.label} narrows the privacy–utility gap of {b} "
                    f"(gap {b} {100 * gaps[0].estimate:.2f}, {p.label} "
                    f"{100 * gaps[1].estimate:.2f} points; gap {b} − gap {p.label})",
                    narrowing,
                )
            )
        better = dp_difference(points, p.dataset, b, p.label, p.epsilon, metric)
        if better is not None:
            lines.append((f"{where}: {p.label} more accurate than {b} under DP ({p.label} − {b})", better))
    return "\n".join(family_verdicts(lines)) or f"no group to compare with {base} at the same budget"


def paper_values(points: list[Point]) -> dict[str, tuple[float, float]]:
    """The paper's Table 1 validation accuracy (%) per group label, (non-DP, DP at ε = 7.42), in
    the augmentation column of these runs, for the groups at the paper's layout, when the folder
    holds one dataset and DP runs at ε = 7.42 that all have the paper's setting (layout
    8-16-32, δ 1e-5); else {}."""
    at_paper_budget = [r for p in points if p.epsilon == 7.42 for r in p.runs]
    if (
        len({p.dataset for p in points}) != 1
        or not at_paper_budget
        or not all(table.matches_paper(table.grouping_settings(r)) for r in at_paper_budget)
    ):
        return {}
    augmented = table.grouping_settings(at_paper_budget[0])["aug_mult"] > 1  # one K: privacy_points checks
    columns = [table.COLUMNS.index((augmented, dp)) for dp in (False, True)]
    return {
        p.label: tuple(table.PAPER_TABLE1[p.dataset][p.arch][i] for i in columns)
        for p in points
        if p.readout != "orientation"
        and p.arch in table.PAPER_TABLE1.get(p.dataset, {})
        and all(table.matches_paper(table.grouping_settings(r)) for r in p.runs)
    }


def render_markdown(points: list[Point], metric: str = "val_acc") -> str:
    """The curve as a Markdown table (accuracy %, mean ± std (n)) — for validation accuracy beside
    the paper's Table 1 values where the setting is the paper's — then the verdicts."""
    budgets = sorted({p.epsilon for p in points if p.epsilon is not None}) + [None]
    groups = list(dict.fromkeys((p.dataset, p.label) for p in points))
    paper = paper_values(points) if metric == "val_acc" else {}
    head = "| dataset | group | " + " | ".join("no DP" if e is None else f"ε = {e:g}" for e in budgets) + " |"
    lines = [
        head + (" paper: no DP / ε = 7.42 |" if paper else ""),
        "|---|---|" + "---:|" * (len(budgets) + bool(paper)),
    ]
    for dataset, label in groups:
        cells = []
        for e in budgets:
            p = _find(points, dataset, label, e)
            cells.append(
                "–"
                if p is None
                else f"{Estimate.over_seeds(p.values(metric)).text(2, 100, note=False)} ({len(p.runs)})"
            )
        if paper:
            cells.append(" / ".join(f"{v:.2f}" for v in paper[label]) if label in paper else "–")
        lines.append(f"| {dataset} | {label} | " + " | ".join(cells) + " |")
    seeds = sorted({s for p in points for s in p.seeds})
    lines += [
        "",
        f"{metric.replace('_', ' ')} (%) after the last epoch (no selection on validation), mean ± std "
        f"over seeds (n runs); seeds {', '.join(map(str, seeds))}."
        + (" Paper: Hölzl et al. (2022), Table 1 (one run each)." if paper else ""),
        "",
        "Verdicts (Welch 95 % intervals; the lines are one family, each decided on its Holm-adjusted "
        "p-value; the paper's comparison is the one at ε = 7.42, the other budgets are further tests):",
        "",
    ]
    lines += [f"- {v}" for v in privacy_utility_verdict(points, metric).splitlines()]
    return "\n".join(lines) + "\n"


def privacy_utility_report(runs_dir: str | Path, fig_dir=None, table_dir=None):
    """06: the figure (``fig_dir/privacy_utility``), tables ``privacy_curve`` and ``privacy_gaps``
    (CSV in ``table_dir``) and the verdict lines for the runs below ``runs_dir``."""
    return report_points(privacy_points(table.finished_summaries(runs_dir)), fig_dir, table_dir)


def report_points(points: list[Point], fig_dir=None, table_dir=None):
    """:func:`privacy_utility_report` for these points (the paper's DP values drawn where
    :func:`paper_values` has them)."""
    from dpecnn.analysis.pages.report_base import Report, save_table
    from dpecnn.plotting.privacy_utility import privacy_utility_figure

    paper = {label: dp for label, (_, dp) in paper_values(points).items()}
    figure = privacy_utility_figure(figure_lines(points), fig_dir, "privacy_utility", paper or None)
    tables = {
        "privacy_curve": save_table(curve_rows(points), table_dir, "privacy_curve"),
        "privacy_gaps": save_table([r for m in METRICS for r in gap_rows(points, m)], table_dir, "privacy_gaps"),
    }
    return Report(figure, tables, privacy_utility_verdict(points))


def write_privacy_utility(runs_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """``runs.csv``, ``privacy_curve.csv``, ``privacy_gaps.csv``, ``privacy_utility.md`` and the
    figure ``privacy_utility.{png,pdf}`` in ``out_dir`` for the runs below ``runs_dir``."""
    from dpecnn.analysis.pages.runs_table import write_runs_csv

    out = Path(out_dir)
    summaries = table.finished_summaries(runs_dir)
    points = privacy_points(summaries)
    report_points(points, out, out)
    paths = {
        "runs": write_runs_csv(summaries, out),
        "curve": out / "privacy_curve.csv",
        "gaps": out / "privacy_gaps.csv",
        "md": out / "privacy_utility.md",
        "figure": out / "privacy_utility.png",
    }
    md = "\n".join(f"## {m.replace('_', ' ')}\n\n" + render_markdown(points, m) for m in METRICS)
    io.write_bytes(paths["md"], md.encode())
    return paths
