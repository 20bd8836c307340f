"""Table 1 of Hölzl et al. (2022) from a folder of runs, beside the paper's numbers.

Rows: dataset × group; columns: {no augmentation, augmentation (K > 1)} × {non-DP, DP},
each as our validation accuracy, mean ± std over seeds (n runs), next to the paper's value.
Rendered as CSV, Markdown and LaTeX.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dpecnn.errors import DpecnnError
from dpecnn.train import io
from dpecnn.train.io import write_bytes

ARCH_ORDER = ("e", "C1", "C4", "C8", "C16", "O2")
COLUMNS = ((False, False), (False, True), (True, False), (True, True))  # (augmentation, dp)

# Validation accuracy (%) at layout 8-16-32, ε = 7.42, δ = 1e-5, in COLUMNS order.
PAPER_TABLE1 = {
    "bloodmnist": {"e": (94.05, 89.19, 96.52, 90.61), "C1": (93.52, 89.98, 95.57, 90.47),
                   "C4": (95.35, 91.30, 96.67, 91.39), "C8": (95.32, 86.56, 96.30, 92.39),
                   "C16": (95.74, 91.48, 96.16, 91.67), "O2": (96.13, 92.51, 96.71, 93.73)},
    "dermamnist": {"e": (76.79, 71.78, 78.48, 72.41), "C1": (75.77, 72.84, 76.48, 72.27),
                   "C4": (75.18, 73.25, 77.84, 74.17), "C8": (76.48, 72.79, 77.58, 66.88),
                   "C16": (76.86, 72.53, 77.57, 70.64), "O2": (77.24, 73.29, 77.98, 72.45)},
    "pathmnist": {"e": (83.53, 80.11, 85.75, 79.41), "C1": (82.35, 83.57, 82.22, 83.68),
                  "C4": (83.97, 86.89, 83.43, 83.52), "C8": (85.11, 88.13, 85.23, 88.75),
                  "C16": (85.88, 89.14, 85.38, 88.94), "O2": (82.12, 77.91, 80.87, 80.64)},
}


def _column_name(aug: bool, dp: bool) -> str:
    return f"{'aug' if aug else 'no aug'} {'DP' if dp else 'non-DP'}"


def collect_summaries(runs_dir: str | Path) -> list[dict]:
    """Every finished run (a folder with ``summary.json``) below ``runs_dir``."""
    return [io.read_json(p) for p in sorted(Path(runs_dir).rglob("summary.json"))]


def table1_rows(summaries: list[dict], metric: str = "val_acc") -> list[dict]:
    """One row per (dataset, arch) present in the runs; cells hold mean/std/n and the paper's value."""
    groups: dict[tuple, list[float]] = {}
    for s in summaries:
        key = (s["dataset"], s["arch"], s.get("aug_mult", 1) > 1, bool(s["dp"]))
        groups.setdefault(key, []).append(100 * s[metric])
    rows = []
    for dataset in sorted({k[0] for k in groups}):
        for arch in [a for a in ARCH_ORDER if any(k[:2] == (dataset, a) for k in groups)]:
            paper = PAPER_TABLE1.get(dataset, {}).get(arch)
            row = {"dataset": dataset, "arch": arch}
            for i, (aug, dp) in enumerate(COLUMNS):
                values = groups.get((dataset, arch, aug, dp), [])
                row[_column_name(aug, dp)] = {
                    "mean": float(np.mean(values)) if values else None,
                    "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                    "n": len(values), "paper": paper[i] if paper else None}
            rows.append(row)
    return rows


def _cell(c: dict, pm: str) -> tuple[str, str]:
    spread = "" if c["std"] is None else f"{pm}{c['std']:.2f}"
    ours = "–" if c["mean"] is None else f"{c['mean']:.2f}{spread} (n={c['n']})"
    return ours, "–" if c["paper"] is None else f"{c['paper']:.2f}"


def render(rows: list[dict], fmt: str) -> str:
    """``fmt``: ``csv``, ``md`` or ``latex``."""
    names = [_column_name(a, d) for a, d in COLUMNS]
    if fmt == "csv":
        header = ["dataset", "arch"] + [f"{n} {part}" for n in names for part in ("mean", "std", "n", "paper")]
        lines = [",".join(header)]
        for r in rows:
            cells = [r["dataset"], r["arch"]]
            for n in names:
                cells += ["" if r[n][k] is None else f"{r[n][k]:.4g}" for k in ("mean", "std", "n", "paper")]
            lines.append(",".join(cells))
        return "\n".join(lines) + "\n"
    if fmt == "md":
        lines = ["| dataset | group | " + " | ".join(f"{n} (ours) | {n} (paper)" for n in names) + " |",
                 "|---|---|" + "---|---|" * len(names)]
        for r in rows:
            cells = [c for n in names for c in _cell(r[n], " ± ")]
            lines.append(f"| {r['dataset']} | {r['arch']} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        lines = [r"\begin{tabular}{ll" + "rr" * len(names) + "}", r"\toprule",
                 "Dataset & Group & " + " & ".join(rf"\multicolumn{{2}}{{c}}{{{n}}}" for n in names) + r" \\",
                 " & & " + " & ".join(["ours & paper"] * len(names)) + r" \\", r"\midrule"]
        for r in rows:
            arch = r["arch"] if r["arch"] in ("e",) else r["arch"].replace("O2", "O(2)")
            cells = [c.replace("(n=", r"\scriptsize(").replace("–", "--") for n in names
                     for c in _cell(r[n], r" $\pm$ ")]
            lines.append(f"{r['dataset']} & ${arch}$ & " + " & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format '{fmt}'; choose csv, md or latex")


def write_table1(runs_dir: str | Path, out_dir: str | Path, metric: str = "val_acc") -> dict[str, Path]:
    """Write ``table1.csv``, ``table1.md`` and ``table1.tex`` (atomically) for the runs below ``runs_dir``."""
    summaries = collect_summaries(runs_dir)
    if not summaries:
        raise DpecnnError(f"no finished runs (summary.json) under {runs_dir}")
    rows = table1_rows(summaries, metric)
    paths = {}
    for fmt, ext in (("csv", "csv"), ("md", "md"), ("latex", "tex")):
        paths[fmt] = Path(out_dir) / f"table1.{ext}"
        write_bytes(paths[fmt], render(rows, fmt).encode())
    return paths
