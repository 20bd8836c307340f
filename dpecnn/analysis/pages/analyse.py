"""``python -m dpecnn analyse RUN_DIR``: every report of :mod:`dpecnn.analysis.pages.reports` and
:mod:`dpecnn.analysis.pages.map_reports` (sparsity, calibration, filter impulse responses,
attributions) on one finished run: figures and tables to ``<out>/``, scalars to
``<out>/analysis.json``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from dpecnn import io
from dpecnn.analysis.pages import map_reports, reports
from dpecnn.analysis.pages.run import group_runs, load_run


def analyse_run(path: str | Path, out_dir: str | Path | None = None, n_images: int = 6) -> dict:
    """Every analysis of one finished run (see module docstring): figures and their tables
    (CSV) in ``out_dir`` (default ``<run>/analysis``), scalars in ``analysis.json`` there."""
    run = load_run(path)
    out = Path(out_dir) if out_dir else run.path / "analysis"
    groups = group_runs([run])
    fir = map_reports.fir_report(groups, n_images, out, out)
    for report in (
        fir,
        reports.sparsity_report(groups, out, out),
        reports.reliability_report(groups, out, out),
        map_reports.attribution_report(groups, n_images, out, out),
    ):
        plt.close(report.figure)
    _, sparsity = run.sparsity_curve()
    scalars = {
        "run": str(run.path),
        "arch": run.config.arch,
        "dp": run.config.dp,
        "val_acc": run.summary["val_acc"],
        "brier": run.summary["brier"],
        "ece": run.summary["ece"],
        "diagnostics_not_covered_by_epsilon": {  # from the pre-noise gradient (diagnostics.jsonl)
            "sparsity_mean": float(np.mean(sparsity)) if sparsity else None,
            "sparsity_final": sparsity[-1] if sparsity else None,
        },
        "fir": {
            row["layer"]: {k: row[k] for k in ("magnitude", "spearman", "top_k_iou")}
            for row in fir.tables["fir"].to_dict("records")
        },
    }
    io.write_json(out / "analysis.json", scalars)
    return scalars
