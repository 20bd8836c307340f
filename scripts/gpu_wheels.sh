#!/usr/bin/env bash
# Where pip works: download the wheels an offline GPU node needs for dpecnn beyond what such
# nodes usually have (torch, torchvision, numpy, scipy, matplotlib, pandas, scikit-learn,
# scikit-image, pillow, tqdm, pytest, absl-py, attrs, mpmath, opt-einsum, safetensors, joblib).
# lie_learn is not among them: where it cannot be imported (numpy 2, Python 3.12) dpecnn
# imports escnn without it (dpecnn/models/escnn_import.py).
#
# Usage, in the repository root:  [PYTHON_VERSION=3.12] scripts/gpu_wheels.sh [DEST]   (DEST: .whl)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
python_version=${PYTHON_VERSION:-3.12}
packages=(escnn==1.0.11 pymanopt==2.2.1 autograd==1.9.1 opacus==1.6.0 captum==0.9.0 medmnist==3.0.2 fire==0.7.1
          termcolor==3.3.0 dp-accounting==0.6.0 dm-tree==0.1.10)
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" --implementation cp \
    "${platforms[@]}" -d "$dest" "${packages[@]}"
ls -1 "$dest"
