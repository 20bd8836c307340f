"""``runs.csv``: one row per finished run, kept beside every aggregate table in ``results/``.

An aggregate (mean ± std, a paired difference, a curve) can be recomputed from these rows
and each row traced to its run folder by ``run`` and ``identity``. ``private_release`` is the
value derived from the run's identity-checked config (:func:`~dpecnn.analysis.pages.table.collect_summaries`),
and ``epsilon_spent`` the accountant's for the steps taken; the settings that differ between
the runs of the folder follow the fixed columns.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dpecnn import io
from dpecnn.analysis.pages.table import arch_rank, grouping_settings, split_settings

RUN_COLUMNS = (
    "run",
    "dataset",
    "arch",
    "readout",
    "layout",
    "dp",
    "epsilon_target",
    "epsilon_spent",
    "delta",
    "noise_multiplier",
    "private_release",
    "seed",
    "identity",
    "val_acc",
    "test_acc",
    "val_auc",
    "test_auc",
    "brier",
    "ece",
    "steps",
    "epochs",
    "params",
    "wall_time_s",
    "device",
)


def run_rows(summaries: list[dict]) -> pd.DataFrame:
    """The rows of ``runs.csv`` (:data:`RUN_COLUMNS`, then every setting whose value differs
    between the runs), sorted by dataset, arch (in :data:`~dpecnn.models.ARCHS` order), readout, DP, ε and seed."""
    settings = [grouping_settings(s) for s in summaries]
    varying, _ = split_settings(settings, ignore=("layout", "readout", "epsilon", "delta"))
    rows = []
    for s, st in zip(summaries, settings):
        row = {k: s.get(k) for k in RUN_COLUMNS}
        row["readout"] = s.get("settings", {}).get("readout", "invariant") if s["arch"] not in ("e", "C1") else None
        row["layout"] = "-".join(map(str, s["layout"]))
        rows.append(row | {k: _cell(st.get(k)) for k in varying})
    frame = pd.DataFrame(rows, columns=list(RUN_COLUMNS) + varying)
    order = frame.assign(_eps=frame["epsilon_target"].fillna(float("inf")), _arch=frame["arch"].map(arch_rank))
    return frame.loc[
        order.sort_values(["dataset", "_arch", "readout", "dp", "_eps", "seed", "run"], na_position="first").index
    ].reset_index(drop=True)


def _cell(value):
    return "-".join(map(str, value)) if isinstance(value, list) else value


def write_runs_csv(summaries: list[dict], out_dir: str | Path) -> Path:
    """``out_dir/runs.csv`` (atomically) for these runs."""
    path = Path(out_dir) / "runs.csv"
    io.write_bytes(path, run_rows(summaries).to_csv(index=False).encode())
    return path
