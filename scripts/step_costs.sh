#!/usr/bin/env bash
# Issue 33's step costs: `python -m dpecnn.bench` (every group, 8-16-32, batch 256, 2 threads) run
# RUNS times in fresh interpreters on a quiet machine; each run's JSON and results/step_costs/runs.csv
# (one row per run and group, the last run at one thread), then dpecnn/train/reference_cpu_step_costs.json:
# the median over the 2-thread runs of each step time (what `sweep --plan` and docs/benchmark.md use).
# Ratios are read within a run.
# Usage: RUNS=3 scripts/step_costs.sh   (about 4 min a run on 2 cores; stop other work first)
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=results/step_costs
RUNS=${RUNS:-3}
mkdir -p "$OUT"
for i in $(seq 1 "$RUNS"); do
    OMP_NUM_THREADS=2 "$PY" -m dpecnn.bench > "$OUT/run$i.json"
done
# and once at one thread, the setting of a sweep's runs (--cpus-per-run 1)
OMP_NUM_THREADS=1 "$PY" -m dpecnn.bench > "$OUT/one_thread.json"
echo "RUNS=$RUNS scripts/step_costs.sh" > "$OUT/COMMAND"
"$PY" - "$OUT" "$RUNS" <<'PY'
import json, statistics, sys
from pathlib import Path
import pandas as pd
out, runs = Path(sys.argv[1]), int(sys.argv[2])
results = [json.loads((out / f"run{i}.json").read_text()) for i in range(1, runs + 1)]
archs = [a for a in results[0] if isinstance(results[0][a], dict)]
one_thread = json.loads((out / "one_thread.json").read_text())
rows = [{"run": i + 1, "arch": a, **{k: r[k] for k in ("date", "threads", "torch", "batch")}, **r[a]}
        for i, r in enumerate(results + [one_thread]) for a in archs]
pd.DataFrame(rows).to_csv(out / "runs.csv", index=False)
reference = {k: v for k, v in results[0].items() if not isinstance(v, dict)}
reference["note"] = f"median over {runs} runs of `python -m dpecnn.bench` (warmup 2; DP and non-DP steps timed in alternation, at least 5 rounds and 2 s of each), scripts/step_costs.sh; 2-core development machine"
for a in archs:
    entry = {k: statistics.median(r[a][k] for r in results) if isinstance(results[0][a][k], float) else results[0][a][k]
             for k in results[0][a]}
    entry["dp_over_nondp"] = entry["dp_step_s"] / entry["nondp_step_s"]
    reference[a] = entry
Path("dpecnn/train/reference_cpu_step_costs.json").write_text(json.dumps(reference, indent=2, sort_keys=True) + "\n")
for a in archs:
    print(a, " ".join(f"{r[a]['dp_over_nondp']:.2f}" for r in results))
PY
