#!/usr/bin/env bash
# The JAX training iteration on a GPU beside the official PyTorch iteration on the same GPU, on a
# machine with JAX + CUDA and PyTorch but no TensorFlow and no network (issue #28's GPU check).
#
#   bash bench/gpu_check.sh fetch    # here, with network: Keras and its missing needs as wheels in .whl/
#   bash bench/gpu_check.sh run      # there, from the repository root, with .whl/ beside it
#
# `run` installs the wheels into /tmp/site (no network, no dependencies resolved), puts the package
# and runner/ on the path, and times the reference iteration at 256x256, ngf = ndf = 64, 9 blocks,
# ins_max 4, ins_per 2 (bench/train_step.py --backend jax --official_device cuda). The last line it
# prints is bench/train_step.py's JSON summary: seconds per iteration (JAX, the whole iteration one
# jitted program), the first step's seconds (compilation included), the GPU's peak memory, and the
# official iteration's seconds on the same GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

KERAS_VERSION=3.15.1
case "${1:-}" in
fetch)
    grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >>.git/info/exclude
    platforms=()
    for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
        platforms+=(--platform "$p")
    done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platforms[@]}" -d .whl "keras==$KERAS_VERSION" namex optree
    du -sh .whl
    ;;
run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD:$PWD/runner" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
    python3 -c "import jax; assert jax.devices()[0].platform == 'gpu', jax.devices(); print(jax.devices())"
    python3 bench/train_step.py --backend jax --official_device cuda --reference_only \
        --size 256 --ngf 64 --n_blocks 9 --steps 10 --warmup 2
    ;;
*)
    echo "usage: bash bench/gpu_check.sh fetch|run" >&2
    exit 2
    ;;
esac
