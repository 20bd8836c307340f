#!/usr/bin/env bash
# Issue 11's seed table on BloodMNIST, seeds 0, 1, 2: the paper recipe (train --preset paper)
# for e, C1 and C4, under DP (ε = 7.42, δ = 1e-5) and without DP, and today's DP default
# (NAdam 1e-2, batch 256, 6 epochs, σ from RDP) for e and C4 at the same seeds.
# Validation accuracies; tables with mean ± std and seed-paired C_N − e differences go to results/.
# Usage: scripts/paper_seeds.sh [OUT]   (about 90 min on 2 CPU cores; re-running resumes)
set -euo pipefail
OUT=${1:-outputs/paper-seeds}
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results}
"$PY" -m dpecnn sweep --preset table1 --datasets bloodmnist --archs e,C4,C1 --aug 1 --dp true,false --seeds 0,1,2 \
    --runs-dir "$OUT/paper-recipe"
"$PY" -m dpecnn sweep --datasets bloodmnist --archs e,C4 --aug 1 --dp true --seeds 0,1,2 --epochs 6 \
    --runs-dir "$OUT/default"
"$PY" -m dpecnn table "$OUT/paper-recipe" --out "$RESULTS/paper_recipe"
"$PY" -m dpecnn table "$OUT/default" --out "$RESULTS/default_recipe"
