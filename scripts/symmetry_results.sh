#!/usr/bin/env bash
# Issue 12's results, redone for issues 18 and 34: the symmetry probe of the real MedMNIST sets we have
# (BloodMNIST, BreastMNIST, RetinaMNIST; seeds 0, 1, 2 per arm, Holm-corrected tests across seeds and
# over images, group-consistent verdict), then DP e
# against C4 with both readouts on BreastMNIST, reported seeds 100, 101, 102, ε = 7.42, δ = 1e-5,
# today's default optimiser (NAdam 1e-2) at batch 64 for 10 epochs (546 training images: ~85 steps;
# not tuned on BreastMNIST). RetinaMNIST (1080 images) is left to DATASETS=breastmnist,retinamnist.
# The probe reads raw images and trains without DP: its outputs are not covered by ε.
# Probe reports go to results/symmetry/probe_<dataset>.{txt,json}; the accuracy table (mean ± std
# over seeds), runs.csv (one row per run) and the seed-paired C4 − e differences to results/symmetry/;
# each run's config, summary and epoch log stay in results/symmetry/runs/ (weights are not kept).
# Usage: scripts/symmetry_results.sh [OUT]   (about 1 h on one CPU core; re-running resumes)
set -euo pipefail
OUT=${1:-results/symmetry/runs}
PROBES=${PROBES:-outputs/symmetry-probe}  # scratch: the reports are copied to results/symmetry
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results/symmetry}
mkdir -p "$RESULTS" "$PROBES"
for dataset in bloodmnist breastmnist retinamnist; do
    [ -f "$RESULTS/probe_$dataset.json" ] && continue
    "$PY" -m dpecnn probe "$dataset" --out "$PROBES/$dataset.json" > "$PROBES/$dataset.txt"
    grep -v '^written: ' "$PROBES/$dataset.txt" > "$RESULTS/probe_$dataset.txt"  # that line names the scratch file
    cp "$PROBES/$dataset.json" "$RESULTS/probe_$dataset.json"
done
DATASETS=${DATASETS:-breastmnist}
SETTINGS=(--datasets "$DATASETS" --dp true --seeds 100,101,102 --batch-size 64 --epochs 10 --sparsity-every 20
          --runs-dir "$OUT")
"$PY" -m dpecnn sweep --archs e,C4 "${SETTINGS[@]}"
"$PY" -m dpecnn sweep --archs C4 --readout orientation "${SETTINGS[@]}"
"$PY" -m dpecnn table "$OUT" --out "$RESULTS"
echo "DPECNN_DATA_ROOT=<medmnist folder> DATASETS=$DATASETS scripts/symmetry_results.sh $OUT" > "$RESULTS/COMMAND"
