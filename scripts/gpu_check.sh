#!/usr/bin/env bash
# On an offline GPU node: install the wheels from scripts/gpu_wheels.sh (no network needed),
# then run python -m dpecnn.gpucheck: the CUDA tests, the benchmark (e, C1, C4, C8, C16, O2:
# non-DP and DP step, ratio, images/s, peak GPU memory), one DP epoch of BloodMNIST per
# architecture and the projected Table 1 time on this GPU, printed as one JSON report.
#
# Usage, in the repository root, with bloodmnist.npz copied into $DPECNN_DATA_ROOT (default .data):
#   [WHEELS=.whl] [DPECNN_DATA_ROOT=.data] [PYTHON=python3] scripts/gpu_check.sh [REPORT]   (REPORT: gpu_check.json)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
wheels=${WHEELS:-.whl}
site=${SITE:-/tmp/dpecnn-site}
export DPECNN_DATA_ROOT=${DPECNN_DATA_ROOT:-.data}
if [ ! -f "$DPECNN_DATA_ROOT/bloodmnist.npz" ]; then
    echo "error: $DPECNN_DATA_ROOT/bloodmnist.npz is missing (the node cannot download it: copy it there)" >&2
    exit 2
fi
"$python" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$site" "$wheels"/*.whl
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$python" -m dpecnn.gpucheck --out "${1:-gpu_check.json}"
