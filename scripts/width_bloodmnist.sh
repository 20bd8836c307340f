#!/usr/bin/env bash
# Issue 33's Fig. 1 left on BloodMNIST: accuracy against parameter count under DP (ε = 7.42,
# δ = 1e-5, the paper recipe: train --preset paper) for the paper's two groups, e and C4, at five
# widths each from 4-4-8 to 32-64-128 (sweep --preset fig1-width), on the reported seeds 100–102
# (never the recipe search's 0–2). Cheapest widths first; 32-64-128 (1–2 h a run on one core)
# last, C4's after e's. The e and C4 runs at 8-16-32 are Table 1's (results/table1/runs): finished
# ones of the same identity are copied in rather than trained again.
# After each width: results/width/ (runs.csv: one row per run; accuracy_vs_params.{csv,png};
# width.md: test and validation accuracy per point and the paper's claim with Welch 95 % intervals;
# PLAN.md: every run of the sweep and the projected training time still to spend on it).
# Re-running resumes (finished runs are kept).
# Usage: [ENGINE=local|ray] scripts/width_bloodmnist.sh [OUT]
set -euo pipefail
OUT=${1:-results/width/runs}
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results/width}
ENGINE=(--engine "${ENGINE:-local}" --cpus-per-run 1)
mkdir -p "$RESULTS" "$OUT"
echo "DPECNN_DATA_ROOT=<medmnist folder> ENGINE=${ENGINE[1]} scripts/width_bloodmnist.sh${1:+ $1}" > "$RESULTS/COMMAND"
"$PY" scripts/reuse_finished_runs.py "$OUT" fig1-width '{}' results/table1/runs/bloodmnist-*-dp-k1-w8-16-32-s10[0-2]-*
plan() {  # every run of the sweep, finished or not, and the training time still to spend on it
    {
        echo "# Fig. 1 left, BloodMNIST: the runs and their projected cost"
        echo
        echo "\`sweep --plan\` on $(date -u +%F): training steps only, at the saved step costs of the 2-core"
        echo "reference machine. Runs trained so far on one core took longer (evaluation, diagnostics, one thread)."
        echo
        echo '```'
        "$PY" -m dpecnn sweep --preset fig1-width --runs-dir "$OUT" --plan
        echo '```'
    } > "$RESULTS/PLAN.md"
}
width() {  # LAYOUT ARCHS
    "$PY" -m dpecnn sweep --preset fig1-width --layouts "$1" --archs "$2" --runs-dir "$OUT" "${ENGINE[@]}"
    "$PY" -m dpecnn width "$OUT" --out "$RESULTS"
    plan
}
width "8,16,32" e,C4
width "4,4,8;4,8,16" e,C4
width "16,32,64" e,C4
width "32,64,128" e
width "32,64,128" C4
