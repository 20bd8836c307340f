#!/usr/bin/env bash
# Issue 33's Table 1, BloodMNIST block, with the paper recipe (train --preset paper): e, C1, C4, C8,
# C16, O(2) × {no augmentation, augmentation multiplicity K = 4} × {non-DP, DP at ε = 7.42, δ = 1e-5}
# on the reported seeds 100–104 (never the recipe search's 0–2). Cheap cells first, in the order
# the issue asks: every group without augmentation, then augmentation for e and C4, then the other
# groups with augmentation. Five seeds where a run costs under an hour on one core (e, C1, C4), three
# for O(2), C8 and C16 (1–7 h a run), whose seeds 103–104 come last. Finished runs of the same
# configuration in results/privacy_utility/runs (e, C4 and O(2) at ε = 7.42 and without DP) are
# copied in rather than trained again (same identity).
# After each group: results/table1/ (runs.csv: one row per run; table1.{csv,md,tex} and paired.csv
# of test accuracy; PLAN.md: every run of the block and what is left to train) and
# results/table1/val_acc/ (the same tables of validation accuracy, for the paper).
# Re-running resumes (finished runs are kept).
# Usage: [ENGINE=local|ray] scripts/table1_bloodmnist.sh [OUT]
set -euo pipefail
OUT=${1:-results/table1/runs}
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results/table1}
ENGINE=(--engine "${ENGINE:-local}" --cpus-per-run 1)
mkdir -p "$RESULTS" "$OUT"
echo "DPECNN_DATA_ROOT=<medmnist folder> ENGINE=${ENGINE[1]} scripts/table1_bloodmnist.sh${1:+ $1}" > "$RESULTS/COMMAND"
"$PY" scripts/reuse_finished_runs.py "$OUT" table1 '{"datasets": ["bloodmnist"], "seeds": [100, 101, 102, 103, 104]}' \
    results/privacy_utility/runs/bloodmnist-*-w8-16-32-s10[0-4]-*
tables() {
    "$PY" -m dpecnn table "$OUT" --metric test_acc --out "$RESULTS"
    "$PY" -m dpecnn table "$OUT" --metric val_acc --out "$RESULTS/val_acc"
}
FIVE=100,101,102,103,104
THREE=100,101,102
plan() {  # every run of the block, finished or not, and the training time still to spend on it
    {
        echo "# Table 1, BloodMNIST block: the runs and their projected cost"
        echo
        echo "\`sweep --plan\` on $(date -u +%F): training steps only, at the saved step costs of the 2-core"
        echo "reference machine. Runs trained so far on one core took longer (evaluation, diagnostics, one thread)."
        echo
        echo '```'
        "$PY" -m dpecnn sweep --preset table1 --datasets bloodmnist --archs e,C1,C4 --aug 1,4 --seeds "$FIVE" \
            --runs-dir "$OUT" --plan
        echo
        "$PY" -m dpecnn sweep --preset table1 --datasets bloodmnist --archs O2,C8,C16 --aug 1,4 --seeds "$THREE" \
            --runs-dir "$OUT" --plan
        echo '```'
        echo
        echo "On one GPU: not projected, for this plan uses CPU step costs only. On a GPU,"
        echo "\`python -m dpecnn.bench --device cuda --save\` (scripts/gpu_check.sh runs the benchmark too) measures them,"
        echo "and the same \`sweep ... --plan --bench outputs/bench/cuda-<device>.json\` projects this block there."
    } > "$RESULTS/PLAN.md"
}
cell() {  # ARCHS AUG SEEDS
    "$PY" -m dpecnn sweep --preset table1 --datasets bloodmnist --archs "$1" --aug "$2" --seeds "$3" \
        --runs-dir "$OUT" "${ENGINE[@]}"
    tables
    plan
}
cell C1 1 "$FIVE"
cell e,C4 1 "$FIVE"
cell O2,C8 1 "$THREE"
cell C16 1 "$THREE"
cell e,C4 4 "$FIVE"
cell C1 4 "$FIVE"
cell C8,O2,C16 4 "$THREE"
cell O2,C8 1 "$FIVE"
