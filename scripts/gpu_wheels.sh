#!/usr/bin/env bash
# Where pip works: download the wheels an offline GPU node needs for dpecnn beyond what such
# nodes usually have (torch, torchvision, numpy, scipy, matplotlib, pandas, scikit-learn,
# scikit-image, pillow, tqdm, pytest, absl-py, attrs, mpmath, opt-einsum, safetensors, joblib).
# Every version is read from requirements.txt / requirements-nodeps.txt (one source of truth);
# a package missing there is an error. lie_learn, pymanopt and autograd (escnn's requirements) are
# not among them: the planar groups never import the last two, and where lie_learn cannot be imported
# (numpy 2, Python 3.12) dpecnn imports escnn without it (dpecnn/models/escnn_import.py).
#
# Usage, in the repository root:  [PYTHON_VERSION=3.12] scripts/gpu_wheels.sh [DEST]   (DEST: .whl)
#                                 scripts/gpu_wheels.sh --print   (the pins only, no download)
set -euo pipefail
cd "$(dirname "$0")/.."
names=(escnn opacus captum medmnist fire termcolor dp-accounting dm-tree)
packages=()
for name in "${names[@]}"; do
    pin=$(grep -h -i -E "^${name}==" requirements.txt requirements-nodeps.txt || true)
    if [ -z "$pin" ]; then
        echo "error: $name is not pinned (name==version) in requirements.txt or requirements-nodeps.txt" >&2
        exit 2
    fi
    packages+=("$pin")
done
if [ "${1:-}" = "--print" ]; then
    printf '%s\n' "${packages[@]}"
    exit 0
fi
dest=${1:-.whl}
python_version=${PYTHON_VERSION:-3.12}
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" --implementation cp \
    "${platforms[@]}" -d "$dest" "${packages[@]}"
ls -1 "$dest"
