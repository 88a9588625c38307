"""Train a classification network with the paper's recipe.

    python -m training.train --config imagenet_mobilenet_v2_10_ca --data_dir ~/tfds
    keras-coordatt train --config elpv_mobilenet_v2_ca --epochs 5

What a run leaves in ``output_dir``:

- ``checkpoints/``: model + optimizer + position (epoch, step in epoch), written
  at every epoch end, every ``checkpoint_every_steps`` steps, and when the run
  is interrupted (SIGINT / SIGTERM). A restarted run picks up from the newest
  one (``--resume false`` starts over); with ``--deterministic true`` it ends
  with the same weights as a run that was never stopped.
- ``best.weights.h5`` (best held-out accuracy) and ``last.weights.h5``;
  ``model.keras`` and ``metrics.json`` at the end.
- ``history.csv``, ``training_curves.png``, ``tensorboard/``, ``config.json``.

A NaN or infinite loss stops the run with an error naming the step and batch;
the checkpoints written before it are kept.
"""

import argparse
import csv
import json
import math
import os
import signal
import sys
import time

import numpy as np

from training.config import TrainConfig
from training.config import add_config_arguments
from training.config import config_from_args


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def _tf():
    import tensorflow as tf

    return tf


def make_strategy(config):
    """The tf.distribute strategy that ``config.strategy`` names.

    auto: MirroredStrategy over all GPUs when there are several, else the
    default strategy. mirrored: MirroredStrategy over ``config.devices`` (a
    comma-separated list) or all GPUs. multiworker: MultiWorkerMirroredStrategy
    configured by the TF_CONFIG environment variable.
    """
    tf = _tf()
    devices = config.devices.split(",") if config.devices else None
    if config.strategy == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if config.strategy == "default":
        return tf.distribute.get_strategy()
    if config.strategy == "mirrored":
        if devices:
            _split_cpu(tf, sum("cpu" in device.lower() for device in devices))
        return tf.distribute.MirroredStrategy(devices=devices)
    if "TF_CONFIG" not in os.environ:
        raise ValueError(
            "strategy=multiworker needs the TF_CONFIG environment variable "
            '(for example {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}) on every worker.'
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def _split_cpu(tf, count):
    """Splits the CPU into ``count`` logical devices (distribution on a CPU box).

    Must run before TensorFlow initializes its devices; the CLI calls it first.
    """
    if count <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    existing = tf.config.get_logical_device_configuration(cpu)
    if existing and len(existing) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as error:
        raise RuntimeError(
            f"devices asks for {count} CPU devices, but TensorFlow already started "
            "with one; pass --devices in a fresh process (the train command does)."
        ) from error


def is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0)


def pixel_range_for(model_name):
    # keras.applications' EfficientNet rescales inside the model; the others
    # take pixels in [-1, 1] (mobilenet_v2.preprocess_input).
    return (0.0, 255.0) if model_name == "efficientnet_b0" else (-1.0, 1.0)


def build_model(config, num_classes):
    """The config's network with a logits head for ``num_classes``."""
    from keras_coordatt.models import build_model as build

    model = build(
        config.model,
        alpha=config.alpha,
        input_shape=(config.image_size, config.image_size, 3),
        attention=config.attention,
        classes=num_classes,
        classifier_activation=None,
        dropout_rate=config.dropout_rate,
        bn_momentum=config.bn_momentum,
    )
    if config.sync_batchnorm:
        synchronize_batchnorm(model)
    if config.init_weights:
        load_pretrained(model, config.init_weights)
    return model


def synchronize_batchnorm(model):
    """BatchNorm statistics over the global batch, across all replicas.

    The paper trains detection with synchronized BatchNorm; with it a
    multi-replica run computes what one device would on the same global batch.
    Keras reads the flag when the layer is traced, so setting it after
    construction takes effect.
    """
    import keras

    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            count += 1
    return count


def _legacy_h5_layers(path):
    """{layer name: weights} of a legacy Keras ``.h5`` file, or None if it is not one.

    keras.applications ships its ImageNet weights in this format (one group
    per layer, in the attribute ``layer_names``).
    """
    import h5py

    def text(value):
        return value.decode("utf8") if isinstance(value, bytes) else str(value)

    with h5py.File(path, "r") as f:
        group = f
        if "layer_names" not in group.attrs and "model_weights" in group:
            group = group["model_weights"]
        if "layer_names" not in group.attrs:
            return None
        layers = {}
        for name in map(text, group.attrs["layer_names"]):
            names = [text(w) for w in group[name].attrs.get("weight_names", [])]
            layers[name] = [np.asarray(group[name][w]) for w in names]
        return layers


def load_pretrained(model, path):
    """Copies every weight of ``path`` whose layer name and shape match.

    ``path`` is a ``.keras`` model, a Keras 3 ``.weights.h5`` file of the same
    architecture, or a legacy ``.h5`` weights file such as keras.applications'
    ImageNet MobileNetV2 files (read by layer name, so a network with attention
    layers inserted still gets every backbone layer). The classifier is
    skipped when the class count differs. Returns the number of layers copied.
    """
    import keras

    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"init_weights: no file {path!r}")
    if path.endswith(".keras"):
        source = keras.saving.load_model(path, compile=False)
        source_weights = {layer.name: layer.get_weights() for layer in source.layers}
    elif path.endswith(".weights.h5"):
        source = keras.models.clone_model(model)
        source.load_weights(path, skip_mismatch=True)
        source_weights = {layer.name: layer.get_weights() for layer in source.layers}
    elif path.endswith((".h5", ".hdf5")):
        source_weights = _legacy_h5_layers(path)
        if source_weights is None:
            raise ValueError(f"init_weights: {path!r} is not a Keras weights file (no layer_names)")
    else:
        raise ValueError(
            f"init_weights: {path!r} is neither a .keras model nor a .h5 weights file"
        )
    copied, skipped = 0, []
    for layer in model.layers:
        weights = source_weights.get(layer.name)
        if weights is None or not layer.weights:
            continue
        if [tuple(w.shape) for w in weights] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(weights)
            copied += 1
        else:
            skipped.append(layer.name)
    if copied == 0:
        raise ValueError(f"init_weights: no layer of {path!r} matches the model by name and shape")
    print(f"init_weights: copied {copied} layers from {path}"
          + (f"; kept the new {', '.join(skipped)} (shapes differ)" if skipped else ""))
    return copied


class RunState:
    """Where the run is: the epoch and the step inside it, and why it stopped."""

    def __init__(self):
        self.interrupted = False

    def request_stop(self, signum, frame):
        self.interrupted = True
        print(f"\nSignal {signum}: saving a checkpoint at the end of this step, then stopping.",
              flush=True)


def _make_callbacks(config, run, checkpoint, manager, epoch, start_step, steps_per_epoch):
    import keras

    tf = _tf()

    class Watch(keras.callbacks.Callback):
        """Checks the loss, writes step checkpoints, honours stop requests."""

        def on_train_batch_end(self, batch, logs=None):
            step_in_epoch = start_step + batch + 1
            # Counted here, not read from optimizer.iterations: under
            # mixed_float16 the loss-scale optimizer skips the updates whose
            # scaled gradients overflow, and those steps still happened.
            global_step = epoch * steps_per_epoch + step_in_epoch
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise TrainingDiverged(
                    f"the loss became {loss} at global step "
                    f"{global_step} (epoch {epoch + 1}, "
                    f"batch {step_in_epoch} of {steps_per_epoch}); the checkpoints in "
                    f"{os.path.join(config.output_dir, 'checkpoints')} from before it are kept. "
                    "Lower the learning rate or check the data."
                )
            every = config.checkpoint_every_steps
            if run.interrupted or (every and step_in_epoch % every == 0
                                   and step_in_epoch < steps_per_epoch):
                checkpoint.epoch.assign(epoch)
                checkpoint.step_in_epoch.assign(step_in_epoch)
                manager.save(checkpoint_number=global_step)
            if run.interrupted:
                self.model.stop_training = True

    class Progress(keras.callbacks.ProgbarLogger):
        """Keras' bar, told the run's epoch count: fit() is called once per epoch."""

        def set_params(self, params):
            super().set_params({**params, "epochs": config.epochs})

    return [Watch(), Progress()]


def _work_around_keras_multi_worker(model, strategy, element_spec):
    """Builds metrics and loss from the dataset's spec instead of a real batch.

    Keras 3 (keras-team/keras#20585) peeks at the first batch in fit() and
    averages it across replicas with ``strategy.reduce``, which fails under
    MultiWorkerMirroredStrategy ("Attempt to convert a value (PerReplica ...)").
    Building from the spec first makes that peek unnecessary.
    """
    tf = _tf()
    from keras.src.backend.tensorflow import trainer as tf_trainer

    with strategy.scope():
        model._symbolic_build(data_batch=element_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    # The same code averages the scalar metrics of the workers with
    # reduce("MEAN", axis=0), which a scalar has no axis for.
    original = tf_trainer.reduce_per_replica
    if getattr(original, "multi_worker_scalars", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(
                lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.multi_worker_scalars = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def _verbosity(config):
    if config.verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return {"bar": 1, "line": 2, "quiet": 0}[config.verbose]


def plot_curves(history_path, png_path):
    """Training curves from history.csv: loss and accuracy, train and held-out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(history_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) for r in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for prefix, label in (("", "train"), ("val_", "held-out")):
            key = prefix + metric
            if key in rows[0] and rows[0][key] != "":
                axis.plot(epochs, [float(r[key]) for r in rows], marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)


def _append_history(path, row):
    exists = os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if not exists:
            writer.writeheader()
        writer.writerow(row)


def _truncate_history(path, epochs_done):
    """Drops rows of epochs a resumed run will redo."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= epochs_done]
    os.remove(path)
    for row in rows:
        _append_history(path, row)


def _compile(model, config, steps_per_epoch):
    import keras

    total_steps = config.epochs * steps_per_epoch
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    peak = config.scaled_learning_rate
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else peak,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=peak if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    # Keras' weight_decay is decoupled (w -= lr * wd * w); for SGD without
    # momentum that equals PyTorch's coupled L2 term of the paper's recipe.
    optimizer = keras.optimizers.SGD(
        learning_rate=schedule, momentum=config.momentum, weight_decay=config.weight_decay
    )
    one_hot = config.label_smoothing > 0 or config.mixup_alpha > 0
    if one_hot:
        loss = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=config.label_smoothing
        )
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=config.jit)
    return one_hot


def _label_transform(config, num_classes, one_hot):
    """One-hot labels and optional mixup, as a tf.data map over batches."""
    tf = _tf()
    if not one_hot:
        return None
    alpha = config.mixup_alpha

    def transform(images, labels):
        targets = tf.one_hot(labels, num_classes)
        if alpha <= 0:
            return images, targets
        gamma_a = tf.random.gamma([], alpha)
        gamma_b = tf.random.gamma([], alpha)
        lam = gamma_a / (gamma_a + gamma_b)
        order = tf.random.shuffle(tf.range(tf.shape(images)[0]))
        images = lam * images + (1 - lam) * tf.gather(images, order)
        targets = lam * targets + (1 - lam) * tf.gather(targets, order)
        return images, targets

    return transform


def train(config: TrainConfig):
    """Runs (or resumes) one training run and returns its final metrics."""
    import keras

    config.validate()
    os.makedirs(config.output_dir, exist_ok=True)
    strategy = make_strategy(config)
    chief = is_chief(strategy)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        return _train(config, strategy, chief)
    finally:
        # The policy is process-wide; a notebook or a test that trains next
        # should not inherit mixed precision from this run.
        keras.config.set_dtype_policy(previous_policy)


def _train(config, strategy, chief):
    import keras

    from training.data import load_datasets

    tf = _tf()
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()

    datasets = load_datasets(
        config.dataset,
        image_size=config.image_size,
        batch_size=config.batch_size,
        train_split=config.train_split,
        eval_split=config.eval_split,
        data_dir=config.data_dir,
        pixel_range=pixel_range_for(config.model),
        crop_scale=(config.crop_scale_min, 1.0),
        cache=config.cache,
        deterministic=config.deterministic,
        seed=config.seed,
        limit_train=config.limit_train,
        limit_eval=config.limit_eval,
    )
    steps_per_epoch = datasets.train_examples // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"batch_size={config.batch_size} is larger than the {datasets.train_examples} "
            f"training examples of {config.dataset} ({config.train_split})"
        )
    if chief:
        print(datasets.describe())
        with open(os.path.join(config.output_dir, "config.json"), "w") as f:
            f.write(config.to_json())

    with strategy.scope():
        model = build_model(config, datasets.num_classes)
        one_hot = _compile(model, config, steps_per_epoch)
        model.optimizer.build(model.trainable_variables)
    # The run's position lives outside the strategy: plain variables that
    # every worker holds the same value of.
    checkpoint = tf.train.Checkpoint(
        model=model,
        optimizer=model.optimizer,
        epoch=tf.Variable(0, dtype=tf.int64),
        step_in_epoch=tf.Variable(0, dtype=tf.int64),
        best_accuracy=tf.Variable(-1.0, dtype=tf.float64),
    )
    # Under MultiWorkerMirroredStrategy saving reads distributed variables,
    # a collective step every worker must join; the other workers write to a
    # scratch folder of their own, and only the chief's files are kept.
    output_dir = config.output_dir if chief else os.path.join(
        config.output_dir, f".worker_{strategy.cluster_resolver.task_id}")
    checkpoint_dir = os.path.join(output_dir, "checkpoints")
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=config.keep_checkpoints)
    if config.resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        print(f"Resumed from {manager.latest_checkpoint}: epoch {int(checkpoint.epoch) + 1}, "
              f"step {int(checkpoint.step_in_epoch)} of {steps_per_epoch}")
    start_epoch, start_step = int(checkpoint.epoch), int(checkpoint.step_in_epoch)

    history_path = os.path.join(config.output_dir, "history.csv")
    if chief:
        _truncate_history(history_path, start_epoch)
    tensorboard = keras.callbacks.TensorBoard(os.path.join(config.output_dir, "tensorboard"))
    run = RunState()
    previous_handlers = {
        sig: signal.signal(sig, run.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    transform = _label_transform(config, datasets.num_classes, one_hot)
    eval_data = datasets.eval.map(transform) if transform else datasets.eval
    if config.strategy == "multiworker":
        train_spec = datasets.train_for_epoch(0)
        _work_around_keras_multi_worker(model, strategy, (train_spec.map(transform) if transform
                                                 else train_spec).element_spec)
    started = time.perf_counter()
    trained_steps = 0
    logs = {}
    try:
        for epoch in range(start_epoch, config.epochs):
            # Epoch k's shuffle and augmentation depend on (seed, k) only, so
            # a resumed epoch sees the batches an unbroken run would have.
            train_data = datasets.train_for_epoch(epoch)
            if transform:
                train_data = train_data.map(transform)
            skip = start_step if epoch == start_epoch else 0
            if skip:
                train_data = train_data.skip(skip)
            callbacks = _make_callbacks(config, run, checkpoint, manager, epoch, skip,
                                        steps_per_epoch) + [tensorboard]
            epoch_start = time.perf_counter()
            fit = model.fit(
                train_data, validation_data=eval_data, initial_epoch=epoch, epochs=epoch + 1,
                callbacks=callbacks, verbose=_verbosity(config),
            )
            trained_steps += steps_per_epoch - skip
            if run.interrupted:
                print(f"Stopped in epoch {epoch + 1}; run the same command again to resume.")
                return {"interrupted": True, "epoch": epoch}
            logs = {key: float(values[-1]) for key, values in fit.history.items()}
            seconds = time.perf_counter() - epoch_start
            improved = logs.get("val_accuracy", -1.0) > float(checkpoint.best_accuracy)
            if improved:
                checkpoint.best_accuracy.assign(logs.get("val_accuracy", -1.0))
            checkpoint.epoch.assign(epoch + 1)
            checkpoint.step_in_epoch.assign(0)
            manager.save(checkpoint_number=(epoch + 1) * steps_per_epoch)
            os.makedirs(output_dir, exist_ok=True)
            model.save_weights(os.path.join(output_dir, "last.weights.h5"))
            if improved:
                model.save_weights(os.path.join(output_dir, "best.weights.h5"))
            if chief:
                learning_rate = float(keras.ops.convert_to_numpy(
                    model.optimizer.learning_rate))
                _append_history(history_path, {"epoch": epoch + 1, **logs,
                                               "learning_rate": learning_rate,
                                               "seconds": round(seconds, 2)})
                plot_curves(history_path, os.path.join(config.output_dir, "training_curves.png"))
                print(f"epoch {epoch + 1}/{config.epochs}: loss {logs.get('loss', float('nan')):.4f}"
                      f" accuracy {logs.get('accuracy', float('nan')):.4f}"
                      f" | held-out loss {logs.get('val_loss', float('nan')):.4f}"
                      f" accuracy {logs.get('val_accuracy', float('nan')):.4f}"
                      f" | lr {learning_rate:.5f} | {seconds:.1f}s"
                      f"{' | best' if improved else ''}", flush=True)
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)

    train_seconds = time.perf_counter() - started
    evaluation = model.evaluate(eval_data, verbose=0, return_dict=True)
    metrics = {
        "model": config.model,
        "attention": config.attention,
        "alpha": config.alpha,
        "image_size": config.image_size,
        "dataset": config.dataset,
        "epochs": config.epochs,
        "class_names": list(datasets.class_names),
        "train_examples": datasets.train_examples,
        "eval_examples": datasets.eval_examples,
        "global_steps": int(checkpoint.epoch) * steps_per_epoch + int(checkpoint.step_in_epoch),
        "optimizer_updates": int(model.optimizer.iterations.numpy()),
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "eval_accuracy": float(evaluation["accuracy"]),
        "eval_loss": float(evaluation["loss"]),
        "best_eval_accuracy": float(checkpoint.best_accuracy),
        "train_seconds_this_session": round(train_seconds, 1),
        "train_images_per_second": round(trained_steps * config.batch_size / max(train_seconds, 1e-9), 1),
    }
    model.save(os.path.join(output_dir, "model.keras"))
    if chief:
        with open(os.path.join(config.output_dir, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
    return metrics


def run(args):
    """Trains the config that parsed ``args`` describe; returns the exit status.

    Shared by ``python -m training.train`` and ``keras-coordatt train``.
    """
    metrics = train(config_from_args(args))
    print(json.dumps(metrics, indent=2))
    return 130 if metrics.get("interrupted") else 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="keras-coordatt train",
        description="Train a network with Coordinate Attention (or a baseline) by the paper's recipe.",
    )
    add_config_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
