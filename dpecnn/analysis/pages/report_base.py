"""What every report is: a figure, its tables (each written as CSV) and a verdict line.

A leaf module: the run loader, the reports of :mod:`dpecnn.analysis.pages.reports` and
:mod:`~dpecnn.analysis.pages.map_reports`, the privacy–utility curve, the symmetry probe and the
audit all return a :class:`Report`, and none of them needs the others to do so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dpecnn import io


@dataclass
class Report:
    """A notebook's figure, its tables (each also written as CSV) and its verdict."""

    figure: Any
    tables: dict[str, pd.DataFrame]
    verdict: str


def save_table(rows: Sequence[Mapping], table_dir, name: str) -> pd.DataFrame:
    """``rows`` as a DataFrame, written atomically to ``<table_dir>/<name>.csv`` when given."""
    frame = pd.DataFrame(list(rows))
    if table_dir is not None:
        io.write_bytes(Path(table_dir) / f"{name}.csv", frame.to_csv(index=False).encode())
    return frame
