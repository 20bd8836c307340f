#!/usr/bin/env bash
# Does the Ray engine with one CPU per run raise throughput on this machine (issue 18)? Trains the
# same four short DP runs — e on BloodMNIST, the paper recipe cut to 4 epochs, seeds 0–3 (search
# seeds: these are timing runs, never reported accuracies) — once one after another with every core
# (--engine local) and once as Ray tasks with one CPU each, then writes results/ray_throughput/:
# runs.csv (one row per run, with its engine), throughput.md (elapsed time of each engine, Ray's
# start-up included, and the ratio) and COMMAND.
# Usage: scripts/ray_throughput.sh [SCRATCH]   (about 8 min on 2 CPU cores; reruns start afresh)
set -euo pipefail
SCRATCH=${1:-outputs/ray_throughput}
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results/ray_throughput}
GRID=(--preset privacy-utility --archs e --dp true --epsilons 7.42 --seeds 0,1,2,3 --epochs 4)
rm -rf "${SCRATCH:?}"
mkdir -p "$SCRATCH" "$RESULTS"
elapsed() {  # elapsed ENGINE: train the grid with ENGINE, print the seconds it took
    local start; start=$(date +%s.%N)
    "$PY" -m dpecnn sweep "${GRID[@]}" --runs-dir "$SCRATCH/$1" --engine "$1" --cpus-per-run 1 >/dev/null
    echo "$(date +%s.%N) - $start" | bc
}
LOCAL=$(elapsed local)
RAY=$(elapsed ray)
"$PY" - "$SCRATCH" "$RESULTS" "$LOCAL" "$RAY" "$(nproc)" <<'EOF'
import sys
from pathlib import Path

import pandas as pd

from dpecnn import io
from dpecnn.analysis.pages.runs_table import run_rows
from dpecnn.analysis.pages.table import collect_summaries

scratch, results, local, ray, cores = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
rows = pd.concat([run_rows(collect_summaries(scratch / engine)).assign(engine=engine) for engine in ("local", "ray")])
io.write_bytes(results / "runs.csv", rows.to_csv(index=False).encode())
per_run = rows.groupby("engine")["wall_time_s"].mean()
n = len(rows) // 2
io.write_bytes(results / "throughput.md", f"""# Ray engine against one run after another

{n} DP runs of e on BloodMNIST (paper recipe, 4 epochs, seeds 0–{n - 1}), {cores} CPU cores.

| engine | elapsed (s) | runs per hour | mean wall time of one run (s) |
|---|---|---|---|
| local (one run at a time, every core) | {local:.0f} | {3600 * n / local:.1f} | {per_run['local']:.0f} |
| ray (one CPU per run) | {ray:.0f} | {3600 * n / ray:.1f} | {per_run['ray']:.0f} |

Throughput of Ray relative to local: **{local / ray:.2f}×** (elapsed times include starting Ray and
loading the data in each run; one row per run in runs.csv).
""".encode())
print((results / "throughput.md").read_text())
EOF
echo "DPECNN_DATA_ROOT=<medmnist folder> scripts/ray_throughput.sh" > "$RESULTS/COMMAND"
