#!/usr/bin/env bash
# The recipe search on BloodMNIST (issues 11 and 18), scored on the *validation* split after the
# last epoch. This tuning reads the validation data and is not covered by ε (as usual in the DP
# literature; see README). Search seeds: 0, 1, 2 only — reported results use other seeds
# (scripts/privacy_utility.sh: 100–104), so no run of this search is a reported run.
#  1. DP half: the conventional model (e), DP at ε = 7.42, δ = 1e-5, seed 0, eleven configurations
#     (issue 11); then the learning-rate schedule for the winner (SGD-momentum 0.5, batch 1024):
#     constant against cosine at seeds 0, 1, 2.
#  2. Non-DP half (NAdam 1e-2, batch 256, 12 epochs): constant against cosine, e and C4, seeds
#     0, 1, 2 (under constant NAdam, C4 seed 2 had collapsed from 94.7 % to 47.7 % in the last epoch).
#  3. C4 under DP (issue 33, equal tuning): the same configurations as e's DP search (seed 0) and
#     the same schedule comparison (seeds 0, 1, 2), run names prefixed C4-; a configuration above the
#     recipe at seed 0 (a candidate, dpecnn.analysis.pages.tuning) then at seeds 1 and 2 as well.
#  4. O(2) under DP (issue 33; a run costs about 45 min on one core): e's three best configurations
#     (SGD-momentum at learning rates 0.5 and 1.0, NAdam at 5e-3; batch 1024, 12 epochs), seed 0,
#     run names prefixed O2-; then its candidate and the recipe at seeds 1 and 2.
# Each configuration is one run folder under $OUT; `dpecnn table` then lists them all (runs.csv: one
# row per run). Usage: scripts/recipe_search.sh [OUT]   (re-running resumes). On a machine with 2
# cores, two shards side by side with one thread each train twice as fast as one process:
#   OMP_NUM_THREADS=1 SHARD=0/2 scripts/recipe_search.sh & OMP_NUM_THREADS=1 SHARD=1/2 scripts/recipe_search.sh
# (shard k of n trains every n-th configuration from the k-th; the last to finish writes the table).
set -euo pipefail
OUT=${1:-results/recipe_search/runs}
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results/recipe_search}
SHARD=${SHARD:-0/1}
[[ $SHARD =~ ^[0-9]+/[1-9][0-9]*$ ]] && [ "${SHARD%/*}" -lt "${SHARD#*/}" ] \
    || { echo "error: SHARD must be k/n with 0 <= k < n, got '$SHARD'" >&2; exit 2; }
SHARD_INDEX=${SHARD%/*} SHARD_COUNT=${SHARD#*/} CONFIG_INDEX=-1
run() {  # run NAME FLAGS…: train unless finished (re-running the script resumes the search)
    local name=$1; shift
    CONFIG_INDEX=$((CONFIG_INDEX + 1))
    [ $((CONFIG_INDEX % SHARD_COUNT)) -eq "$SHARD_INDEX" ] || return 0
    [ -f "$OUT/$name/summary.json" ] && return
    if [ -f "$OUT/$name/checkpoint.pt" ]; then
        "$PY" -m dpecnn train --resume "$OUT/$name" --dataset bloodmnist "$@" >/dev/null
    else
        rm -rf "${OUT:?}/$name"  # killed before its first checkpoint: start over
        "$PY" -m dpecnn train --dataset bloodmnist --out "$OUT/$name" "$@" >/dev/null
    fi
}
DP_SGD=(--batch-size 1024 --epochs 12 --lr 0.5 --optimizer sgd --accountant prv)
NON_DP=(--no-dp --batch-size 256 --epochs 12 --lr 1e-2 --optimizer nadam)
for seed in 0 1 2; do  # the schedule first: it decides the recipe of the reported runs
    run "b1024-e12-prv-sgd-s$seed"     --seed "$seed" --arch e "${DP_SGD[@]}"
    run "b1024-e12-prv-sgd-cos-s$seed" --seed "$seed" --arch e "${DP_SGD[@]}" --lr-schedule cosine
done
for arch in e C4; do
    for seed in 0 1 2; do
        run "nodp-$arch-b256-e12-nadam-s$seed"     --seed "$seed" --arch "$arch" "${NON_DP[@]}"
        run "nodp-$arch-b256-e12-nadam-cos-s$seed" --seed "$seed" --arch "$arch" "${NON_DP[@]}" --lr-schedule cosine
    done
done
dp_search() {  # dp_search ARCH PREFIX: issue 11's DP configurations for ARCH at seed 0
    local a=(--arch "$1" --seed 0) p=$2
    run "${p}b256-e6-rdp"        "${a[@]}" --batch-size 256  --epochs 6  --lr 1e-2
    run "${p}b256-e6-prv"        "${a[@]}" --batch-size 256  --epochs 6  --lr 1e-2 --accountant prv
    run "${p}b1024-e12-prv"      "${a[@]}" --batch-size 1024 --epochs 12 --lr 1e-2 --accountant prv
    run "${p}b1024-e12-prv-lr2"  "${a[@]}" --batch-size 1024 --epochs 12 --lr 2e-2 --accountant prv
    run "${p}b1024-e12-prv-lr5"  "${a[@]}" --batch-size 1024 --epochs 12 --lr 5e-3 --accountant prv
    run "${p}b1024-e12-prv-ema"  "${a[@]}" --batch-size 1024 --epochs 12 --lr 1e-2 --accountant prv --ema 0.99
    run "${p}b1024-e12-prv-c05"  "${a[@]}" --batch-size 1024 --epochs 12 --lr 1e-2 --accountant prv --max-grad-norm 0.5
    run "${p}b2048-e24-prv"      "${a[@]}" --batch-size 2048 --epochs 24 --lr 1e-2 --accountant prv
    run "${p}b1024-e12-prv-sgd-lr1"  "${a[@]}" --batch-size 1024 --epochs 12 --lr 1.0 --optimizer sgd --accountant prv
    run "${p}b1024-e12-rdp-sgd"      "${a[@]}" --batch-size 1024 --epochs 12 --lr 0.5 --optimizer sgd --accountant rdp
}
dp_search e ""
for seed in 0 1 2; do  # C4: the schedule comparison, then the configurations
    run "C4-b1024-e12-prv-sgd-s$seed"     --seed "$seed" --arch C4 "${DP_SGD[@]}"
    run "C4-b1024-e12-prv-sgd-cos-s$seed" --seed "$seed" --arch C4 "${DP_SGD[@]}" --lr-schedule cosine
done
dp_search C4 C4-
# C4's candidate (above the recipe at seed 0 alone, by dpecnn.analysis.pages.tuning's rule: val
# 90.71 against 89.72) at the other search seeds, so that the rule can judge it against the recipe
for seed in 1 2; do
    run "C4-b1024-e12-prv-sgd-lr1-s$seed" --seed "$seed" --arch C4 "${DP_SGD[@]}" --lr 1.0
done
run "O2-b1024-e12-prv-sgd-s0"         --seed 0 --arch O2 "${DP_SGD[@]}"
run "O2-b1024-e12-prv-sgd-lr1"        --seed 0 --arch O2 "${DP_SGD[@]}" --lr 1.0
run "O2-b1024-e12-prv-lr5"            --seed 0 --arch O2 --batch-size 1024 --epochs 12 --lr 5e-3 --accountant prv
# O(2)'s candidate (SGD lr 1.0, above the recipe at seed 0 alone: val 93.05 against 92.82) and the
# recipe at the other search seeds, so that the rule can judge the one against the other
for seed in 1 2; do
    run "O2-b1024-e12-prv-sgd-s$seed"     --seed "$seed" --arch O2 "${DP_SGD[@]}"
    run "O2-b1024-e12-prv-sgd-lr1-s$seed" --seed "$seed" --arch O2 "${DP_SGD[@]}" --lr 1.0
done
"$PY" -m dpecnn table "$OUT" --out "$RESULTS"
echo "DPECNN_DATA_ROOT=<medmnist folder> scripts/recipe_search.sh $OUT" > "$RESULTS/COMMAND"
