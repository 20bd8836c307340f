#!/usr/bin/env bash
# Issue 12's results: the symmetry probe, then DP e against C4 with both readouts, on the real
# MedMNIST sets we have (BloodMNIST, BreastMNIST, RetinaMNIST), seeds 0, 1, 2, ε = 7.42, δ = 1e-5.
# Budget (2 CPU cores): BloodMNIST with today's default (NAdam 1e-2, batch 256) for 6 epochs;
# the two small sets (546 and 1080 training images) at batch 64 for 10 epochs (~80 and ~170 steps).
# The probe reads raw images and trains without DP: its outputs are not covered by ε.
# Probe reports go to results/symmetry/probe_<dataset>.{txt,json}; the accuracy table (mean ± std
# over seeds) and the seed-paired C4 − e differences to results/symmetry/.
# Usage: scripts/symmetry_results.sh [OUT]   (about 50 min on 2 CPU cores; re-running resumes)
set -euo pipefail
OUT=${1:-outputs/symmetry}
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results/symmetry}
mkdir -p "$RESULTS"
for dataset in bloodmnist breastmnist retinamnist; do
    [ -f "$RESULTS/probe_$dataset.json" ] && continue
    "$PY" -m dpecnn probe "$dataset" --out "$RESULTS/probe_$dataset.json" > "$RESULTS/probe_$dataset.txt"
done
train() {  # train DATASETS FLAGS…: e and both C4 readouts, 3 seeds
    "$PY" -m dpecnn sweep --datasets "$1" --archs e,C4 --dp true --seeds 0,1,2 --runs-dir "$OUT" "${@:2}"
    "$PY" -m dpecnn sweep --datasets "$1" --archs C4 --readout orientation --dp true --seeds 0,1,2 \
        --runs-dir "$OUT" "${@:2}"
}
train breastmnist,retinamnist --batch-size 64 --epochs 10
train bloodmnist --epochs 6
"$PY" -m dpecnn table "$OUT" --out "$RESULTS"
