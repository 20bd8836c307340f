#!/usr/bin/env bash
# Issue 18's privacy–utility curve on BloodMNIST with the paper recipe (train --preset paper; the
# same hyper-parameters at every ε, σ calibrated for each target with the PRV accountant):
# e and C4 at ε ∈ {1, 2, 4, 7.42} (δ = 1e-5) and without DP, and O(2) at ε = 7.42, on the reported
# seeds (100–104; O(2): 100–102), never those of the recipe search (0–2). Writes
# results/privacy_utility/: runs.csv (one row per run), privacy_curve.csv, privacy_gaps.csv,
# privacy_utility.md (tables and verdicts with Welch 95 % intervals) and privacy_utility.png.
# ENGINE=ray trains two runs at once with one CPU each (scripts/ray_throughput.sh measures the gain).
# Re-running resumes (finished runs are kept).
# Usage: [ENGINE=local|ray] scripts/privacy_utility.sh [OUT]   (about 5 h on 2 CPU cores)
set -euo pipefail
OUT=${1:-results/privacy_utility/runs}
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results/privacy_utility}
ENGINE=(--engine "${ENGINE:-local}" --cpus-per-run 1)
mkdir -p "$RESULTS"  # the command first, so that a folder of partial results says what makes it
echo "DPECNN_DATA_ROOT=<medmnist folder> ENGINE=${ENGINE[1]} scripts/privacy_utility.sh${1:+ $1}" > "$RESULTS/COMMAND"
"$PY" -m dpecnn sweep --preset privacy-utility --archs e --runs-dir "$OUT" "${ENGINE[@]}"
"$PY" -m dpecnn privacy-utility "$OUT" --out "$RESULTS"
# The paper's comparisons first, for they need no other budget: C4 at ε = 7.42 and without DP,
# O(2) at ε = 7.42; then C4 at the other budgets
"$PY" -m dpecnn sweep --preset privacy-utility --archs C4 --epsilons 7.42 --runs-dir "$OUT" "${ENGINE[@]}"
"$PY" -m dpecnn privacy-utility "$OUT" --out "$RESULTS"
"$PY" -m dpecnn sweep --preset privacy-utility --archs O2 --dp true --epsilons 7.42 --seeds 100,101,102 \
    --runs-dir "$OUT" "${ENGINE[@]}"
"$PY" -m dpecnn privacy-utility "$OUT" --out "$RESULTS"
"$PY" -m dpecnn sweep --preset privacy-utility --archs C4 --runs-dir "$OUT" "${ENGINE[@]}"
"$PY" -m dpecnn privacy-utility "$OUT" --out "$RESULTS"
