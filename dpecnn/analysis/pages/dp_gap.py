"""The price of privacy per Table 1 cell, and the paper's averaged claim, from a folder of runs.

The *gap* of a cell of Table 1 (dataset, arch, row setting, augmentation column;
:func:`~dpecnn.analysis.pages.table.table1_cells`) is its mean non-DP accuracy minus its mean
DP accuracy, each half with its own recipe (``train --preset``). Runs that differ in anything
but the seed and the recipe's halves (ε, K, subset, readout, …) are never in one half: they
make different rows, as in Table 1. It is a contrast of two independent sets of runs, with a
Welch–Satterthwaite 95 % interval and p-value (:func:`~dpecnn.analysis.stats.welch_contrast`).

The paper (Hölzl et al. 2022, Section 4): "The DP validation accuracy was – on average – 5.5 %
lower for conventional CNNs compared to non-private training. ECNNs diminished this gap, with a
reduction of only 2.8 %." How the paper averaged is not stated; here, per dataset, over the
cells at the paper's setting (layout, ε, δ) and the invariant readout, and over the augmentation
columns that have both halves for ``e`` and at least one ECNN (C4, C8, C16, O(2); C1, the
trivial group, is a conventional CNN in escnn's layers and is left out), each half with at least
two seeds (a cell with one seed in a half has no spread, which would leave the whole contrast
untested; such cells are named as left out): in each column the gap
of ``e`` minus the mean gap of the column's ECNN cells, then the mean over the columns. Each
column weighs the same, so a column with more ECNN cells (or a larger gap for every group) does
not pass for an effect of equivariance. The result is one Welch contrast over all the cells'
runs, tested two-sided. The same average of the paper's own Table 1 values for the same cells
is shown beside it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from dpecnn import io
from dpecnn.analysis.pages import table
from dpecnn.analysis.stats import Contrast, family_verdicts, welch_contrast, welch_difference

CONVENTIONAL, ECNNS = "e", ("C4", "C8", "C16", "O2")
PAPER_CLAIM = (5.5, 2.8)  # points: the averaged gap of conventional CNNs and of ECNNs, as the paper states
# Row settings that only some groups have: they tell an ECNN's cells apart, never e's from an ECNN's
GROUP_ONLY = ("readout", "restrict", "fields")


def _halves(summaries: list[dict]) -> dict[tuple, dict]:
    """Per Table 1 cell ``(dataset, arch, row setting, augmented)``: its runs by DP
    (``False``/``True``), whether both halves are at the paper's setting (``at_paper_setting``;
    a setting only one half has, such as audit canaries, counts), readout and layout (every run of
    a cell shares them)."""
    grouping = table.table1_cells(summaries)
    cells: dict[tuple, dict] = {}
    for (dataset, arch, setting, augmented, dp), runs in grouping.runs.items():
        cell = cells.setdefault(
            (dataset, arch, setting, augmented),
            {
                False: [],
                True: [],
                "at_paper_setting": all(table.matches_paper(grouping.settings(setting, dp)) for dp in (False, True)),
                "readout": table.grouping_settings(runs[0]).get("readout"),
                "layout": tuple(runs[0]["layout"]),
            },
        )
        cell[dp] = runs
    return cells


def _paper_gap(dataset: str, arch: str, augmented: bool, at_paper_setting: bool) -> float | None:
    row = table.PAPER_TABLE1.get(dataset, {}).get(arch)
    if row is None or not at_paper_setting:
        return None
    non_dp, dp = row[table.COLUMNS.index((augmented, False))], row[table.COLUMNS.index((augmented, True))]
    return non_dp - dp


def _setting_text(setting: tuple, skip=("readout", "layout")) -> str:
    return " ".join(f"{k}={table.format_value(json.loads(v))}" for k, v in setting if k not in skip)


def gap_rows(summaries: list[dict], metric: str = "test_acc") -> list[dict]:
    """One row per cell with both halves: the gap (fractions), its interval, p-value, the runs
    of each half and the paper's gap (points, its validation accuracy) for the same cell."""
    rows = []
    for (dataset, arch, setting, augmented), cell in sorted(
        _halves(summaries).items(),
        key=lambda kv: (kv[0][0], table.arch_rank(kv[0][1]), table.row_setting_order(kv[0][2]), kv[0][3]),
    ):
        if not (cell[False] and cell[True]):
            continue
        c = _cell_gap(cell, metric)
        rows.append(
            {
                "dataset": dataset,
                "arch": arch,
                "readout": cell["readout"],
                "layout": "-".join(map(str, cell["layout"])),
                "setting": _setting_text(setting),
                "augmentation": augmented,
                "metric": metric,
                "gap": c.estimate,
                "low": c.low,
                "high": c.high,
                "p_value": c.p_value,
                "n_non_dp": len(cell[False]),
                "n_dp": len(cell[True]),
                "paper_gap_points": _paper_gap(dataset, arch, augmented, cell["at_paper_setting"]),
            }
        )
    return rows


def _cell_gap(halves: dict, metric: str) -> Contrast:
    """A cell's mean non-DP − mean DP ``metric``, as a Welch contrast of the two halves."""
    return welch_difference([r[metric] for r in halves[False]], [r[metric] for r in halves[True]])


def _claim_sets(summaries: list[dict]) -> dict[tuple, list[tuple]]:
    """The cells the averaged claim may use — both halves, the paper's setting, the invariant
    readout — per ``(dataset, row setting without the group-only fields)``."""
    sets: dict[tuple, list[tuple]] = {}
    for (dataset, arch, setting, augmented), cell in _halves(summaries).items():
        if (
            cell[False]
            and cell[True]
            and cell["readout"] in (None, "invariant")
            and cell["at_paper_setting"]
            and (arch == CONVENTIONAL or arch in ECNNS)
        ):
            common = tuple((k, v) for k, v in setting if k not in GROUP_ONLY)
            sets.setdefault((dataset, common), []).append((arch, augmented, cell))
    return sets


def _mean_over_columns(values: dict, ecnn: dict[bool, list[str]]) -> tuple[float, float]:
    """(e's value, the ECNN cells' mean) per column of ``ecnn`` (column → its ECNN groups),
    each averaged over the columns: the two terms of the averaged claim's contrast."""
    return (
        float(np.mean([values[CONVENTIONAL, aug] for aug in ecnn])),
        float(np.mean([np.mean([values[g, aug] for g in groups]) for aug, groups in ecnn.items()])),
    )


def averaged_claim(summaries: list[dict], metric: str = "test_acc") -> list[str]:
    """Per dataset (and row setting, where the folder has several): the paper's averaged claim on
    these cells (module docstring), as a verdict line with its evidence; the lines are one family
    (Holm, :func:`~dpecnn.analysis.stats.family_verdicts`)."""
    lines: list[str | tuple[str, Contrast]] = []
    for (dataset, common), members in sorted(
        _claim_sets(summaries).items(), key=lambda kv: (kv[0][0], table.row_setting_order(kv[0][1]))
    ):
        label = f"{dataset}{' ' + _setting_text(common) if _setting_text(common) else ''}"
        seen = Counter((arch, augmented) for arch, augmented, _ in members)
        if any(n > 1 for n in seen.values()):
            twice = ", ".join(f"{a}{' aug' if aug else ''}" for (a, aug), n in seen.items() if n > 1)
            lines.append(
                f"{label}: no averaged claim: several cells of {twice} (they differ in {', '.join(GROUP_ONLY)})"
            )
            continue
        complete = {(arch, augmented): cell for arch, augmented, cell in members}
        # a cell with one seed in a half has no spread to test: it would take the claim's test with it
        thin = [cell for cell, halves in complete.items() if min(len(halves[False]), len(halves[True])) < 2]
        thin_text = ", ".join(f"{a}{' aug' if aug else ''}" for a, aug in thin)
        complete = {cell: halves for cell, halves in complete.items() if cell not in thin}
        columns = [
            aug for aug in (False, True) if (CONVENTIONAL, aug) in complete and any((g, aug) in complete for g in ECNNS)
        ]
        if not columns:
            if thin:
                lines.append(f"{label}: no averaged claim yet: one seed in a half of {thin_text}")
            continue
        ecnn = {aug: [g for g in ECNNS if (g, aug) in complete] for aug in columns}
        # column c weighs 1/|columns|; within it, e's cell +1 and each ECNN cell −1/|ECNN cells of c|
        weights = {(CONVENTIONAL, aug): 1 / len(columns) for aug in columns}
        weights |= {(g, aug): -1 / (len(columns) * len(ecnn[aug])) for aug in columns for g in ecnn[aug]}
        groups = [
            (weight * sign, [r[metric] for r in complete[cell][dp]])
            for cell, weight in weights.items()
            for sign, dp in ((1, False), (-1, True))
        ]
        gaps = {cell: _cell_gap(complete[cell], metric).estimate for cell in weights}
        paper = {cell: _paper_gap(dataset, cell[0], cell[1], complete[cell]["at_paper_setting"]) for cell in weights}
        ours = _mean_over_columns(gaps, ecnn)
        theirs = _mean_over_columns(paper, ecnn) if None not in paper.values() else None
        paper_text = (
            f"the paper's Table 1 on the same cells, validation: e {theirs[0]:.2f}, ECNNs {theirs[1]:.2f}"
            if theirs
            else "the paper has no values for these cells"
        )
        names = ", ".join(f"{g}{' aug' if aug else ''}" for aug in columns for g in ecnn[aug])
        names += f"; left out, one seed in a half: {thin_text}" if thin else ""
        columns_text = "both columns" if len(columns) == 2 else "augmentation" if columns[0] else "no augmentation"
        lines.append(
            (
                f"{label}, {columns_text} ({metric.replace('_', ' ')}): DP costs e more than the ECNNs ({names}): "
                f"gap e {100 * ours[0]:.2f}, ECNNs {100 * ours[1]:.2f} points (the paper states {PAPER_CLAIM[0]} "
                f"vs {PAPER_CLAIM[1]} over its three datasets; {paper_text}); gap e − gap ECNNs",
                welch_contrast(groups),
            )
        )
    return family_verdicts(lines)


def gap_line(row: dict) -> str:
    """A :func:`gap_rows` row in words: ``bloodmnist C4 no aug: non-DP − DP +6.9 points [95 % CI …]``."""
    contrast = Contrast(row["gap"], row["low"], row["high"], row["p_value"], None, (row["n_non_dp"], row["n_dp"]))
    paper = f"; paper {row['paper_gap_points']:.2f} (validation)" if row["paper_gap_points"] is not None else ""
    readout = f" ({row['readout']} readout)" if row["readout"] not in (None, "invariant") else ""
    setting = f" {row['setting']}" if row["setting"] else ""
    aug = "aug" if row["augmentation"] else "no aug"
    return (
        f"{row['dataset']} {row['arch']}{readout} {row['layout']}{setting} {aug}: non-DP − DP {contrast.text()}{paper}"
    )


def write_gaps(runs_dir: str | Path, out_dir: str | Path, metric: str = "test_acc") -> dict[str, Path]:
    """``gaps.csv`` (one row per cell with both halves) and ``gaps.md`` (each gap and the averaged
    claim in words) for the runs below ``runs_dir``; when no cell has both halves, none, and
    those an earlier call left in ``out_dir`` are removed (they would no longer be true)."""
    summaries = table.collect_summaries(runs_dir)
    rows = gap_rows(summaries, metric)
    paths = {"gaps": Path(out_dir) / "gaps.csv", "gaps_md": Path(out_dir) / "gaps.md"}
    if not rows:
        for path in paths.values():
            path.unlink(missing_ok=True)
        return {}
    io.write_bytes(paths["gaps"], pd.DataFrame(rows).to_csv(index=False).encode())
    text = (
        f"# The price of privacy per cell ({metric.replace('_', ' ')})\n\nnon-DP − DP, each half with its own "
        "recipe; independent runs: Welch 95 % intervals.\n\n"
        + "".join(f"- {gap_line(r)}\n" for r in rows)
        + "\nThe paper's averaged claim (module docstring of dpecnn.analysis.pages.dp_gap: e against C4, C8, "
        "C16, O(2) at the invariant readout and the paper's setting, cells with at least two seeds in each half; "
        "in each augmentation column e's gap minus the "
        "mean gap of its ECNN cells, then the mean over the columns; several lines are one family, each decided on "
        "its Holm-adjusted p-value):\n\n" + "".join(f"- {line}\n" for line in averaged_claim(summaries, metric))
    )
    io.write_bytes(paths["gaps_md"], text.encode())
    return paths
