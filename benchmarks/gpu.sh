#!/usr/bin/env bash
# The GPU check in one command, on a machine with one NVIDIA GPU where JAX with
# CUDA is installed and TensorFlow may be absent: MobileNetV2 none / SE / CBAM / CA
# training throughput at 224 px, batch 128, float32 and bfloat16, on the Keras
# JAX backend.
#
#   bash benchmarks/gpu.sh                 # from the repository root
#   WHEELS=/path/to/wheels bash benchmarks/gpu.sh   # offline: keras and its small
#                                                  # pure-Python requirements there
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
export KERAS_BACKEND=jax PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
$PYTHON benchmarks/backend_throughput.py --image-size 224 --batch-size 128 \
  --precision float32,mixed_bfloat16 "$@"
