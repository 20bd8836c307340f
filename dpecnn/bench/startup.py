"""``python -m dpecnn.bench startup``: seconds from starting ``python -m dpecnn …`` to its answer
for ``--help`` and for a usage error, beside a bare ``python -c pass`` (fresh interpreters, median
of ``--repeats``); ``--save`` writes ``results/startup/``: ``runs.csv`` (every timed start),
``startup.json`` (the medians, for the docs) and ``COMMAND``.

The command line reads its choices from torch-free modules and imports the libraries a command
needs inside its handler (:mod:`dpecnn.lazy`); ``tests/test_structure.py`` checks that no heavy
library is imported on these paths, this benchmark how long the answer takes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd

from dpecnn import io

CASES = {
    "python -c pass": ["-c", "pass"],
    "python -m dpecnn --help": ["-m", "dpecnn", "--help"],
    "python -m dpecnn train --help": ["-m", "dpecnn", "train", "--help"],
    "python -m dpecnn train --arch c7 (usage error)": ["-m", "dpecnn", "train", "--arch", "c7"],
}
SAVED = Path("results/startup")


def run(repeats: int = 5) -> dict:
    times = {}
    for name, argv in CASES.items():
        times[name] = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, *argv], capture_output=True, check=False)
            times[name].append(time.perf_counter() - start)
    return {
        "seconds": {name: statistics.median(t) for name, t in times.items()},
        "runs": [{"case": name, "repeat": i, "seconds": s} for name, t in times.items() for i, s in enumerate(t)],
        "repeats": repeats,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "date": date.today().isoformat(),
        "command": f"python -m dpecnn.bench startup --repeats {repeats} --save",
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dpecnn.bench startup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--save", action="store_true", help=f"also write {SAVED}/")
    args = parser.parse_args(argv)
    result = run(args.repeats)
    for name, s in result["seconds"].items():
        print(f"{s:7.3f} s  {name}")
    if args.save:
        runs = result.pop("runs")
        io.write_bytes(SAVED / "runs.csv", pd.DataFrame(runs).to_csv(index=False).encode())
        io.write_json(SAVED / "startup.json", result)
        io.write_bytes(SAVED / "COMMAND", (result["command"] + "\n").encode())
        print(json.dumps({"saved": str(SAVED)}))
