#!/usr/bin/env bash
# The GPU figures in one command (within about 5 minutes) on a machine with a CUDA device:
#   bash benchmarks/gpu_check.sh
# It uses the python3 that already has a CUDA build of torch (or installs one), puts this
# checkout on the path without touching that torch, and runs `mnist-cnn bench` on the GPU.
# Data: $MNIST_CNN_DATA, else ../shared/data beside the checkout, else the tool's lookup.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "no CUDA-enabled torch in $PY; installing one" >&2
    "$PY" -m pip install -q torch numpy pillow safetensors matplotlib
fi
for pkg in numpy safetensors PIL matplotlib; do
    "$PY" -c "import $pkg" 2>/dev/null || "$PY" -m pip install -q "${pkg/PIL/pillow}"
done
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${MNIST_CNN_DATA:-}" ] && [ -d ../shared/data ]; then
    export MNIST_CNN_DATA="$(cd ../shared/data && pwd)"
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
timeout 280 "$PY" -m mnist_cnn bench --device cuda --recipes fast,seed --runs 3 --no-peer
