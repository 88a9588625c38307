#!/usr/bin/env bash
# The GPU check in one command, on a machine with one NVIDIA GPU where JAX with
# CUDA is installed and TensorFlow may be absent: MobileNetV2 none / SE / CA
# training throughput at 224 px, batch 128, float32 and bfloat16, on the Keras
# JAX backend, with the official PyTorch network beside it on the same GPU when
# torch is installed.
#
#   bash benchmarks/gpu.sh                          # from the repository root
#   WHEELS=/path/to/wheels bash benchmarks/gpu.sh   # offline: wheels of keras and
#                                                   # its small pure-Python needs
#   bash benchmarks/gpu.sh --attentions none,se,cbam,ca --rounds 10   # more rows / rounds
#
# It installs nothing that is already importable: keras (pure Python) and its
# small requirements, from PyPI or from $WHEELS; the repository itself is used in
# place through PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
$PYTHON -c "import jax; print('JAX', jax.__version__, jax.devices())"
if ! $PYTHON -c "import keras" 2>/dev/null; then
  if [ -n "${WHEELS:-}" ]; then
    $PYTHON -m pip install --quiet --no-index --find-links "$WHEELS" keras
  else
    $PYTHON -m pip install --quiet keras
  fi
fi
official=()
if $PYTHON -c "import torch" 2>/dev/null; then
  official=(--official-pytorch)
fi
# JAX takes 75% of the GPU's memory at start-up by default; leave room for the
# PyTorch process that takes turns with it.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.45}
export KERAS_BACKEND=jax PYTHONPATH="$PWD:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
$PYTHON benchmarks/backend_throughput.py --image-size 224 --batch-size 128 \
  --precision float32,mixed_bfloat16 --attentions none,se,ca "${official[@]}" "$@"
