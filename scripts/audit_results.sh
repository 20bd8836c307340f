#!/usr/bin/env bash
# One-run privacy audits on BloodMNIST (issues 17 and 31), e and C4 (layout 8-16-32), 1000 gradient
# canaries (Dirac, on the coordinates the data move least; likelihood-ratio score, plain sum as the
# baseline) and 1000 input canaries (mislabelled images; loss against a reference model trained
# without any of them, the audited model's loss alone as the baseline), at ε = 1 and ε = 7.42
# (δ = 1e-5, RDP) and without DP; seed 0; the default optimiser (NAdam 1e-2), batch 256, 3 epochs
# on the whole training split (q·T ≈ 3: a small budget; the audit tests the mechanism, not the
# recipe). Bounds: Steinke et al. (2023) and the f-DP bound of Mahloujifar et al. (2025), 95 %.
# Then e's gradient audit with 5000 canaries (ε = 7.42 and without DP): what five times the canaries
# buy against the ceiling (memory: T × M observations, 138 × 5000 doubles = 5.5 MB).
# Default DP runs: the mechanism's randomness is secret (no --reproducible).
# Every audit folder (results/audit/runs/<name>) holds audit.json (every score and membership bit:
# each bound can be recomputed) and its runs' config, summary and epoch log; weights and
# observations.safetensors (gradient canaries: every step's released value on each canary's
# coordinate, up to 5.5 MB) stay out of git. results/audit gets runs.csv (one row per audit run),
# audit.md and privacy_audit.{png,pdf}.
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
for privacy in "--epsilon 7.42" "--no-dp"; do
    name="e-gradient-$(echo "$privacy" | tr -d ' -')-m5000"
    [ -f "$OUT/$name/audit.json" ] && continue
    # shellcheck disable=SC2086
    "$PY" -m dpecnn audit --dataset bloodmnist --arch e $privacy --canaries 5000 --canary-kind gradient \
        --epochs 3 --sparsity-every 50 --out "$OUT/$name"
done
"$PY" -m dpecnn audit-report "$OUT" --out "$RESULTS"
echo "ARCHS=\"${ARCHS:-e C4}\" DPECNN_DATA_ROOT=<medmnist folder> scripts/audit_results.sh $OUT" > "$RESULTS/COMMAND"
