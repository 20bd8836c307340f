#!/usr/bin/env bash
# Issue 17's results: one-run privacy audits (Steinke, Nasr & Jagielski 2023) on BloodMNIST, e and
# C4 (layout 8-16-32), 1000 gradient canaries and 1000 input canaries, at ε = 1 and ε = 7.42
# (δ = 1e-5, RDP) and without DP; seed 0; today's default optimiser (NAdam 1e-2), batch 256,
# 3 epochs on the whole training split (a small budget: the audit tests the mechanism, not the
# recipe). Default DP runs: the mechanism's randomness is secret (no --reproducible).
# Every audit folder (results/audit/runs/<name>) holds audit.json (scores, membership, guesses: the
# bound can be recomputed) and its run's config, summary and epoch log (weights are not kept in
# git); results/audit gets runs.csv (one row per audit run), audit.md and privacy_audit.{png,pdf}.
# Usage: [ARCHS="e C4"] scripts/audit_results.sh [OUT]   (re-running resumes: finished audits are kept)
set -euo pipefail
OUT=${1:-results/audit/runs}
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results/audit}
mkdir -p "$RESULTS"
for arch in ${ARCHS:-e C4}; do
    for kind in gradient input; do
        for privacy in "--epsilon 1" "--epsilon 7.42" "--no-dp"; do
            name="$arch-$kind-$(echo "$privacy" | tr -d ' -')"
            [ -f "$OUT/$name/audit.json" ] && continue
            # shellcheck disable=SC2086
            "$PY" -m dpecnn audit --dataset bloodmnist --arch "$arch" $privacy --canaries 1000 --canary-kind "$kind" \
                --epochs 3 --sparsity-every 50 --out "$OUT/$name"
        done
    done
done
"$PY" -m dpecnn audit-report "$OUT" --out "$RESULTS"
echo "ARCHS=\"${ARCHS:-e C4}\" DPECNN_DATA_ROOT=<medmnist folder> scripts/audit_results.sh $OUT" > "$RESULTS/COMMAND"
