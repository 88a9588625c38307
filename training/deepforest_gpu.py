"""The DeepForest none / SE / CA comparison with longer training, on a GPU through Keras' JAX backend.

`training.deepforest_demo` trains for what a 2-core CPU allows (156 steps of
8 tiles), too little to train a tree detector. This script runs the same
comparison (SSDLite320 on MobileNetV2 1.0 from torchvision's ImageNet
weights, attention added as the identity, anchors x0.6, the Yellowstone
training image cut into 210 tiles of 320 px with 50% overlap, the two other
sites for testing, DeepForest's protocol) for as many epochs as you ask, each
run a process of its own, three at a time on one GPU. It needs no TensorFlow on
the GPU machine:

    # 1. where the deepforest wheel is installed (TensorFlow or not): the images,
    #    boxes and the converted ImageNet weights into one folder (~30 MB)
    python -m training.deepforest_gpu prepare --data gpu_data
    # 2. on the GPU machine (Keras, JAX with CUDA, pycocotools, scipy, pillow, matplotlib)
    KERAS_BACKEND=jax python -m training.deepforest_gpu train --data gpu_data \\
        --output demo_output/deepforest_gpu --seeds 0 1 2 --epochs 40
    # or on a CPU through TensorFlow: two runs at a time, one thread each
    TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python -m training.deepforest_gpu \\
        train --data gpu_data --seeds 0 1 2 --epochs 16 --parallel 2

Differences from the CPU demo: without TensorFlow, the augmentation is the
same kind (any of the 8 flips and quarter turns, SSD's
colour distortions with the same ranges and probabilities) done in NumPy,
with saturation as a blend with the grey image and hue as a rotation of the
YIQ chroma plane rather than TensorFlow's HSV adjustments; the last partial
batch of an epoch is dropped (26 steps of 8 per epoch). The recipe is the
demo's (batch 8, SGD, half an epoch of warm-up, cosine) at lr 0.005 instead of
0.02: at 0.02 the CA detector's box loss stalls near 2.3 (on a GPU with JAX
and on a CPU with TensorFlow alike) while none's and SE's keep falling; at
0.005 all three learn. A batch of 16
at lr 0.04 (linear scaling) trained far worse here (the training loss stalled
near 4.2 for 60 epochs; AP50 0.017 +- 0.006 over 3 seeds, against 0.278 for
one seed at batch 8 and lr 0.02 after 40 epochs). Nine XLA compilations at once took up
to 4.4 minutes on the GPU machine's 16 cores, so by default three runs go at
a time (one seed's none / SE / CA) and later seeds reuse their compiled
steps from the JAX compilation cache in ``--output``. Writes per run
``test_metrics.json`` / ``test_detections.npz`` / ``last.weights.h5`` / ``log.txt``, and
``results.md`` / ``.json`` / ``.png`` and ``predictions.png`` under
``--output``.
"""

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import types

import keras
import numpy as np

from keras_coordatt.errors import run_reporting_errors
from training.task_demo import ATTENTIONS

TILE = 320
OVERLAP = 0.5
ANCHOR_SCALE = 0.6
DATA_FILE = "deepforest.npz"
WEIGHTS_FILE = "imagenet_mobilenet_v2.keras"
METRICS = ("AP", "AP50", "precision_at_iou0.4", "recall_at_iou0.4")
HEADERS = ("AP", "AP50", "P@0.4", "R@0.4")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.deepforest_gpu",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="the images, boxes and ImageNet weights "
                                                  "into --data (needs the deepforest wheel)")
    prepare.add_argument("--data", required=True)
    for name in ("train", "one"):
        sub = commands.add_parser(name, help="all runs at once (train) or one run (one)")
        sub.add_argument("--data", required=True, help="the folder `prepare` wrote")
        sub.add_argument("--output", default="demo_output/deepforest_gpu")
        sub.add_argument("--epochs", type=int, default=40)
        sub.add_argument("--batch_size", type=int, default=8)
        sub.add_argument("--learning_rate", type=float, default=0.005,
                         help="per 8 tiles, scaled linearly with --batch_size (default 0.005: "
                              "at the CPU demo's 0.02 the CA detector does not train)")
        sub.add_argument("--deadline_minutes", type=float, default=None,
                         help="stop training (after an epoch) this long after the start and "
                              "score what there is; the run records how many epochs it had")
        sub.add_argument("--limit_tiles", type=int, default=None, help="(for quick checks)")
        sub.add_argument("--identity_start", choices=("on", "off"), default="on",
                         help="new attention layers start as the identity (on) or at random")
        if name == "train":
            sub.add_argument("--seeds", type=int, nargs="+", default=[0])
            sub.add_argument("--attentions", nargs="+", choices=ATTENTIONS,
                             default=list(ATTENTIONS))
            sub.add_argument("--parallel", type=int, default=3,
                             help="runs at once (default 3: one seed's none / SE / CA; later "
                                  "seeds reuse their compiled steps from the JAX cache)")
        else:
            sub.add_argument("--seed", type=int, required=True)
            sub.add_argument("--attention", choices=ATTENTIONS, required=True)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    command = {"prepare": prepare_data, "train": train_all, "one": train_one}[args.command]
    return run_reporting_errors("python -m training.deepforest_gpu", lambda: command(args),
                                args.debug)


def prepare_data(args):
    """Writes ``deepforest.npz`` (train and test images with boxes) and the ImageNet weights."""
    from keras_coordatt.data.detection.deepforest import read_split
    from training.elpv_recipe import imagenet_weights

    os.makedirs(args.data, exist_ok=True)
    arrays = {}
    for split in ("train", "test"):
        for number, example in enumerate(read_split(split)):
            arrays[f"{split}_image_{number}"] = example["image"]
            arrays[f"{split}_boxes_{number}"] = np.asarray(example["boxes"], np.float32)
            arrays[f"{split}_id_{number}"] = np.array(example["id"])
    np.savez_compressed(os.path.join(args.data, DATA_FILE), **arrays)
    shutil.copyfile(imagenet_weights(os.path.join(args.data, "cache")),
                    os.path.join(args.data, WEIGHTS_FILE))
    shutil.rmtree(os.path.join(args.data, "cache"))
    print(f"wrote {DATA_FILE} and {WEIGHTS_FILE} in {args.data}")
    return 0


def read_examples(data, split):
    """The split's examples from ``deepforest.npz``, as `read_split` gives them."""
    path = os.path.join(data, DATA_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing; write it with "
                                f"`python -m training.deepforest_gpu prepare --data {data}`")
    saved = np.load(path)
    examples, number = [], 0
    while f"{split}_image_{number}" in saved:
        boxes = saved[f"{split}_boxes_{number}"]
        examples.append({"image": saved[f"{split}_image_{number}"], "boxes": boxes,
                         "labels": np.zeros(len(boxes), np.int32),
                         "id": str(saved[f"{split}_id_{number}"])})
        number += 1
    return examples


def demo_args(args, seeds=None, attentions=None):
    """The `training.deepforest_demo` arguments naming the same runs (folders, config)."""
    return types.SimpleNamespace(output=args.output, start="imagenet", alpha=None,
                                 tile_overlap=OVERLAP, anchor_scale=ANCHOR_SCALE,
                                 epochs=args.epochs, seeds=seeds, attentions=attentions)


def run_config(args, attention, seed):
    """The run's `TrainConfig`: the CPU demo's, with this script's batch and epochs."""
    from training.deepforest_demo import demo_config

    config = demo_config(demo_args(args), attention, seed,
                         os.path.join(args.data, WEIGHTS_FILE))
    return dataclasses.replace(config, batch_size=args.batch_size, epochs=args.epochs,
                               learning_rate=args.learning_rate)


def train_all(args):
    """Every seed x attention as its own process, ``--parallel`` at a time; then the table."""
    from training.deepforest_demo import plot_predictions
    from training.task_demo import write_results

    started = time.perf_counter()
    read_examples(args.data, "test")  # fails at once, not in every run, without the data
    pending = [(seed, attention) for seed in args.seeds for attention in args.attentions]
    parallel = args.parallel or len(pending)
    running = []
    while pending or running:
        while pending and len(running) < parallel:
            seed, attention = pending.pop(0)
            running.append(_start_run(args, seed, attention, parallel))
        time.sleep(15)
        for run in list(running):
            if run["process"].poll() is not None:
                running.remove(run)
                print(f"{run['name']}: finished (exit {run['process'].returncode}) after "
                      f"{(time.perf_counter() - run['started']) / 60:.1f} min", flush=True)
        for run in running:
            print(f"  {run['name']}: {_last_line(run['log'])}", flush=True)
    runs, failed = [], []
    for seed in args.seeds:
        for attention in args.attentions:
            path = os.path.join(run_config(args, attention, seed).output_dir, "test_metrics.json")
            if os.path.exists(path):
                with open(path) as f:
                    runs.append(json.load(f))
            else:
                failed.append(f"{attention} seed {seed}")
    if runs:  # what finished, also when some runs failed
        write_results(runs, args.output, METRICS, HEADERS,
                      f"SSDLite320 on DeepForest test sites, {args.epochs} epochs (each dot a seed)")
        plotted = [a for a in args.attentions if os.path.exists(os.path.join(
            run_config(args, a, args.seeds[0]).output_dir, "test_detections.npz"))]
        plot_predictions(demo_args(args, args.seeds, plotted),
                         read_examples(args.data, "test"),
                         os.path.join(args.output, "predictions.png"),
                         os.path.join(args.data, WEIGHTS_FILE))
    print(f"\n{len(runs)} runs in {(time.perf_counter() - started) / 60:.1f} min"
          + (f"; failed (see their log.txt): {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _start_run(args, seed, attention, parallel):
    output_dir = run_config(args, attention, seed).output_dir
    os.makedirs(output_dir, exist_ok=True)
    log_path = os.path.join(output_dir, "log.txt")
    command = [sys.executable, "-m", "training.deepforest_gpu", "one", "--data", args.data,
               "--output", args.output, "--epochs", str(args.epochs),
               "--batch_size", str(args.batch_size), "--learning_rate", str(args.learning_rate),
               "--seed", str(seed), "--attention", attention]
    command += ["--identity_start", args.identity_start]
    for flag in ("deadline_minutes", "limit_tiles"):
        if getattr(args, flag) is not None:
            command += [f"--{flag}", str(getattr(args, flag))]
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               # Later seeds of an attention reuse the first one's compiled train step.
               JAX_COMPILATION_CACHE_DIR=os.environ.get(
                   "JAX_COMPILATION_CACHE_DIR", os.path.abspath(os.path.join(args.output, "jax_cache"))),
               # JAX would take 75% of the GPU's memory per process; share it out.
               XLA_PYTHON_CLIENT_MEM_FRACTION=f"{min(0.75, 0.9 / parallel):.3f}")
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    return {"process": process, "log": log_path, "name": f"{attention} seed {seed}",
            "started": time.perf_counter()}


def _last_line(path):
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f.read().replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1][:150] if lines else "(starting)"


def train_one(args):
    """One run: tiles, their 8 symmetric variants and targets, fit, test scores."""
    from keras_coordatt.tasks.evaluation import detection_scores
    from keras_coordatt.tasks.ssd_loss import SSDBoxLoss
    from keras_coordatt.tasks.ssd_loss import SSDClassificationLoss
    from keras_coordatt.tasks.tiling import predict_detections
    from keras_coordatt.tasks.tiling import tile_examples
    from keras_coordatt.training.networks import load_init_weights
    from keras_coordatt.training.networks import task_model
    from keras_coordatt.training.recipe import make_optimizer

    started = time.perf_counter()
    config = dataclasses.replace(run_config(args, args.attention, args.seed),
                                 identity_init=args.identity_start == "on")
    os.makedirs(config.output_dir, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    print(f"backend {keras.backend.backend()}, devices {_devices()}", flush=True)
    model = task_model(config, 1)
    load_init_weights(model, config)  # the trainer's network and start
    tiles = tile_examples(read_examples(args.data, "train"), TILE, OVERLAP)[:args.limit_tiles]
    images, classes, boxes = symmetric_variants(tiles, model.anchors.boxes(), config.match_iou)
    print(f"{len(tiles)} tiles x 8 variants, targets ready "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    batches = AugmentedTiles(images, classes, boxes, config.batch_size, args.seed,
                             config.preprocessing.pixel_range)
    model.compile(optimizer=make_optimizer(config, len(batches)),
                  loss={"classes": SSDClassificationLoss(config.detection_loss),
                        "boxes": SSDBoxLoss()})
    deadline = Deadline(started, args.deadline_minutes)
    fit_started = time.perf_counter()
    history = model.fit(batches, epochs=config.epochs, verbose=2, callbacks=[deadline])
    train_seconds = time.perf_counter() - fit_started
    model.save_weights(os.path.join(config.output_dir, "last.weights.h5"))

    test = read_examples(args.data, "test")
    detections = predict_detections(model, test, config.preprocessing, TILE)
    scores = detection_scores(test, detections, ["Tree"])
    result = {"attention": args.attention, "seed": args.seed, "start": "imagenet",
              "params": model.count_params(), **{key: scores[key] for key in METRICS},
              "AP75": scores["AP75"], "epochs": len(history.history["loss"]),
              "epochs_asked": config.epochs, "steps": len(history.history["loss"]) * len(batches),
              "batch_size": config.batch_size, "final_loss": float(history.history["loss"][-1]),
              "train_minutes": round(train_seconds / 60, 2),
              "minutes": round((time.perf_counter() - started) / 60, 2),
              "learning_rate": config.learning_rate, "identity_start": args.identity_start,
              "backend": keras.backend.backend(), "device": _devices()}
    np.savez(os.path.join(config.output_dir, "test_detections.npz"),
             **{f"{key}_{i}": d[key] for i, d in enumerate(detections) for key in d})
    with open(os.path.join(config.output_dir, "test_metrics.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"test: AP {result['AP']:.4f} AP50 {result['AP50']:.4f} "
          f"P {result['precision_at_iou0.4']:.3f} R {result['recall_at_iou0.4']:.3f} "
          f"after {result['epochs']} epochs ({result['minutes']:.1f} min)", flush=True)
    return 0


def _devices():
    if keras.backend.backend() == "jax":
        import jax

        return ", ".join(sorted({d.device_kind for d in jax.devices()}))
    return keras.backend.backend()


def dihedral_variant(image, boxes, k):
    """Symmetry ``k`` (0-7) of a square image and its pixel ``xyxy`` boxes: bit 0 transposes,
    bit 1 mirrors left-right, bit 2 top-bottom (in that order)."""
    side = image.shape[0]
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if k & 1:
        image, boxes = image.transpose(1, 0, 2), boxes[:, [1, 0, 3, 2]]
    if k & 2:
        image = image[:, ::-1]
        boxes = np.stack([side - boxes[:, 2], boxes[:, 1], side - boxes[:, 0], boxes[:, 3]], 1)
    if k & 4:
        image = image[::-1]
        boxes = np.stack([boxes[:, 0], side - boxes[:, 3], boxes[:, 2], side - boxes[:, 1]], 1)
    return np.ascontiguousarray(image), boxes.reshape(-1, 4)


def symmetric_variants(tiles, anchors, iou_threshold):
    """The 8 symmetric variants of every tile and their anchor targets, variant-major per
    tile: ``images (8T, S, S, 3) uint8, classes (8T, A), boxes (8T, A, 5)``."""
    from keras_coordatt.tasks.anchors import anchor_targets

    images, classes, boxes = [], [], []
    # Every tile's boxes padded to one count (label -1), so each op is compiled once.
    most = max(len(tile["boxes"]) for tile in tiles)
    for tile in tiles:
        side = tile["image"].shape[0]
        count = len(tile["boxes"])
        labels = np.concatenate([tile["labels"], -np.ones(most - count, np.int32)])
        for k in range(8):
            image, pixel_boxes = dihedral_variant(tile["image"], tile["boxes"], k)
            padded = np.concatenate([pixel_boxes / side, np.zeros((most - count, 4), np.float32)])
            target_classes, target_boxes = anchor_targets(padded, labels, anchors, iou_threshold)
            images.append(image)
            classes.append(keras.ops.convert_to_numpy(target_classes))
            boxes.append(keras.ops.convert_to_numpy(target_boxes))
    return np.stack(images), np.stack(classes), np.stack(boxes)


def photometric(images, rng):
    """SSD's colour distortions on a uint8 batch, each with probability 1/2 per image:
    brightness +-32, contrast and saturation x0.5-1.5, hue +-18 degrees. Float32 out, 0..255."""
    out = images.astype(np.float32)
    grey_weights = _RGB_TO_YIQ[0]
    for x in out:  # each image in place
        draws = rng.random(4) < 0.5
        shift, contrast, saturation, angle = rng.uniform([-32, 0.5, 0.5, -np.pi / 10],
                                                         [32, 1.5, 1.5, np.pi / 10])
        if draws[0]:
            x += shift
        if draws[1]:
            mean = x.mean(axis=(0, 1))
            x -= mean
            x *= contrast
            x += mean
        if draws[2]:
            grey = (x @ grey_weights)[..., None]
            x -= grey
            x *= saturation
            x += grey
        if draws[3]:
            x[...] = x @ _hue_rotation(angle).T
    return np.clip(out, 0.0, 255.0, out=out)


_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                       np.float32)


def _hue_rotation(angle):
    """The RGB matrix that rotates the chroma (I, Q) plane of YIQ by ``angle``."""
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)],
                         [0, np.sin(angle), np.cos(angle)]], np.float32)
    return (np.linalg.inv(_RGB_TO_YIQ) @ rotation @ _RGB_TO_YIQ).astype(np.float32)


class AugmentedTiles(keras.utils.PyDataset):
    """Epochs of whole batches: every tile once (the last partial batch dropped) as one of
    its 8 variants at random, colour-distorted; randomness a function of (seed, epoch)."""

    def __init__(self, images, classes, boxes, batch_size, seed, pixel_range):
        super().__init__(workers=4, use_multiprocessing=False)
        self.tiles = len(images) // 8
        if self.tiles < batch_size:
            raise ValueError(f"{self.tiles} tiles are fewer than one batch of {batch_size}")
        self.images, self.classes, self.boxes = images, classes, boxes
        self.batch_size, self.seed, self.pixel_range = batch_size, seed, pixel_range
        self.epoch = 0
        self._order()

    def _order(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        variants = rng.integers(0, 8, self.tiles)
        self.rows = (np.arange(self.tiles) * 8 + variants)[rng.permutation(self.tiles)]

    def __len__(self):
        return self.tiles // self.batch_size

    def __getitem__(self, index):
        rows = np.sort(self.rows[index * self.batch_size:(index + 1) * self.batch_size])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        low, high = self.pixel_range
        x = photometric(self.images[rows], rng) * ((high - low) / 255.0) + low
        return x.astype(np.float32), {"classes": self.classes[rows], "boxes": self.boxes[rows]}

    def on_epoch_end(self):
        self.epoch += 1
        self._order()


class Deadline(keras.callbacks.Callback):
    """Stops training after the epoch during which ``minutes`` (from ``started``) have passed."""

    def __init__(self, started, minutes):
        super().__init__()
        self.started, self.minutes = started, minutes

    def on_epoch_end(self, epoch, logs=None):
        if self.minutes is not None and time.perf_counter() - self.started > 60 * self.minutes:
            print(f"deadline: {self.minutes} min passed, stopping after epoch {epoch + 1}",
                  flush=True)
            self.model.stop_training = True


if __name__ == "__main__":
    sys.exit(main())
