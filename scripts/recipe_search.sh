#!/usr/bin/env bash
# The DP recipe search on BloodMNIST (issue 11): conventional model (e), DP at ε = 7.42,
# δ = 1e-5, seed 0, full splits, scored on the *validation* split. This tuning reads the
# validation data and is not covered by ε (as usual in the DP literature; see README).
# Each configuration is one run folder under $OUT; `dpecnn table` then lists them all.
# Usage: scripts/recipe_search.sh [OUT]   (about 30 min on 2 CPU cores)
set -euo pipefail
OUT=${1:-outputs/recipe-search}
PY=${PY:-.venv/bin/python}
run() {  # run NAME FLAGS…: train unless finished (re-running the script resumes the search)
    local name=$1; shift
    [ -f "$OUT/$name/summary.json" ] && return
    "$PY" -m dpecnn train --dataset bloodmnist --arch e --seed 0 --out "$OUT/$name" "$@" >/dev/null
}
run b256-e6-rdp        --batch-size 256  --epochs 6  --lr 1e-2
run b256-e6-prv        --batch-size 256  --epochs 6  --lr 1e-2 --accountant prv
run b1024-e12-prv      --batch-size 1024 --epochs 12 --lr 1e-2 --accountant prv
run b1024-e12-prv-lr2  --batch-size 1024 --epochs 12 --lr 2e-2 --accountant prv
run b1024-e12-prv-lr5  --batch-size 1024 --epochs 12 --lr 5e-3 --accountant prv
run b1024-e12-prv-ema  --batch-size 1024 --epochs 12 --lr 1e-2 --accountant prv --ema 0.99
run b1024-e12-prv-sgd  --batch-size 1024 --epochs 12 --lr 0.5 --optimizer sgd --accountant prv
run b1024-e12-prv-c05  --batch-size 1024 --epochs 12 --lr 1e-2 --accountant prv --max-grad-norm 0.5
run b2048-e24-prv      --batch-size 2048 --epochs 24 --lr 1e-2 --accountant prv
# second round, around the best of the first (SGD with momentum at batch 1024)
run b1024-e12-prv-sgd-lr1  --batch-size 1024 --epochs 12 --lr 1.0 --optimizer sgd --accountant prv
run b1024-e12-rdp-sgd      --batch-size 1024 --epochs 12 --lr 0.5 --optimizer sgd --accountant rdp
"$PY" -m dpecnn table "$OUT" --out "${RESULTS:-results}/recipe_search"
