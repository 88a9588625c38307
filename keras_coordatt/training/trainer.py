"""Train a classification network with the paper's recipe.

    keras-coordatt train --dataset elpv --model mobilenet_v2 --attention ca --image_size 96
    keras-coordatt train --config training/configs/elpv_mobilenet_v2_ca.json --epochs 5

What a run leaves in ``output_dir``:

- ``checkpoints/``: model + optimizer + position (epoch, step in epoch), written
  at every epoch end, every ``checkpoint_every_steps`` steps, and when the run
  is interrupted (SIGINT / SIGTERM). A restarted run picks up from the newest
  one (``--resume false`` starts over); with ``--deterministic true`` it ends
  with the same weights as a run that was never stopped. A stop inside an
  epoch ends it at once, without validating the part epoch; the checkpoint
  carries the part's metric sums and seconds, so the resumed epoch's history
  row covers the whole epoch.
- ``best.weights.h5`` (best held-out accuracy) and ``last.weights.h5``;
  ``model.keras`` and ``metrics.json`` at the end.
- ``history.csv``, ``training_curves.png``, ``tensorboard/``, ``config.json``.
- ``attention.csv`` and ``attention.png``: the attention layers' gates and
  gradients at the start and after each epoch (`AttentionMonitor`; off with
  ``--attention_monitor false``).

A NaN or infinite loss stops the run with an error naming the step and batch;
the checkpoints written before it are kept.
"""

import contextlib
import json
import os
import sys
import time

import keras
import numpy as np

from keras_coordatt.data.core.batches import first_batch
from keras_coordatt.data.core.batches import tensorflow_available
from keras_coordatt.models.families import build_model
from keras_coordatt.models.macs import count_trainable_params
from keras_coordatt.models.identity import attention_layers
from keras_coordatt.training.attention_monitor import AttentionMonitor
from keras_coordatt.training.callbacks import EpochProgress
from keras_coordatt.training.callbacks import StepWatch
from keras_coordatt.training.callbacks import StopRequests
from keras_coordatt.training.callbacks import StoppedMidEpoch
from keras_coordatt.training.checkpoints import run_checkpoint
from keras_coordatt.training.config import TrainConfig
from keras_coordatt.training.config import config_from_args
from keras_coordatt.training.distribute import is_chief
from keras_coordatt.training.distribute import is_multi_worker
from keras_coordatt.training.distribute import make_strategy
from keras_coordatt.training.distribute import work_around_keras_multi_worker
from keras_coordatt.training.distribute import worker_dir
from keras_coordatt.training.history import append_history
from keras_coordatt.training.history import plot_curves
from keras_coordatt.training.history import truncate_history
from keras_coordatt.training.networks import load_init_weights
from keras_coordatt.training.networks import task_model
from keras_coordatt.training.networks import weights_architecture
from keras_coordatt.training import run_folder
from keras_coordatt.training.recipe import compile_for_training
from keras_coordatt.training.recipe import label_transform
from keras_coordatt.training.tasks import compile_task
from keras_coordatt.training.tasks import evaluate_detection
from keras_coordatt.training.tasks import evaluate_segmentation
from keras_coordatt.training.tasks import load_task_data
from keras_coordatt.training.tasks import monitored

# Held-out images the attention monitor records the gates on, every epoch the same.
PROBE_IMAGES = 16


def train(config: TrainConfig, callbacks=()):
    """Runs (or resumes) one training run and returns its final metrics.

    Everything that can be checked before training is checked first, each
    problem a ValueError naming it: the config, the run folder (another
    config's run there is refused unless ``overwrite``), the devices, the
    data. A run that fails before its first checkpoint leaves no folder
    behind.

    Args:
        config: a `TrainConfig`.
        callbacks: more Keras callbacks for every epoch's ``fit``.
    """
    config.validate()
    use_compilation_cache(config.compilation_cache)
    created = run_folder.claim(config)
    strategy = make_strategy(config)
    os.makedirs(config.output_dir, exist_ok=True)
    previous_policy = keras.config.dtype_policy()
    if config.precision == "float64" and keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)  # else JAX computes float64 in float32
    keras.config.set_dtype_policy(config.precision)
    # On JAX the Keras distribution holds for the whole run (fit splits batches by it);
    # TensorFlow's strategy is entered where the model is built.
    whole_run = (strategy.scope() if keras.backend.backend() != "tensorflow"
                 else contextlib.nullcontext())
    try:
        with whole_run:
            return Trainer(config, strategy, callbacks).run()
    except BaseException:
        run_folder.release_if_empty(config, created)
        raise
    finally:
        # The policy is process-wide; a notebook or a test that trains next
        # should not inherit mixed precision from this run.
        keras.config.set_dtype_policy(previous_policy)


def use_compilation_cache(folder):
    """Points JAX's persistent compilation cache at ``folder`` (None: leaves it as it is).

    Every program that took at least a second to compile is kept there: the
    train, eval and monitor steps of a run, which on a GPU took most of a short
    run's time. JAX also reads ``JAX_COMPILATION_CACHE_DIR`` by itself.
    """
    if not folder:
        return
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(f"compilation_cache={folder!r}: the persistent compilation cache is "
                         f"JAX's; the {backend} backend has none (leave it unset)")
    import jax

    os.makedirs(folder, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(folder))


def model_for_config(config, num_classes):
    """The config's network with a logits head for ``num_classes``, from its starting weights."""
    return prepare_model(classifier_for_config(config, num_classes), config)[0]


def classifier_for_config(config, num_classes):
    """The config's network with a logits head for ``num_classes`` (random weights), built
    with the padding and BatchNorm epsilon of ``init_weights`` (`weights_architecture`)."""
    model = build_model(
        config.model,
        alpha=config.alpha,
        input_shape=(config.image_size, config.image_size, 3),
        attention=config.attention,
        classes=num_classes,
        classifier_activation=None,
        dropout_rate=config.dropout_rate,
        bn_momentum=config.bn_momentum,
        **weights_architecture(config),
    )
    if model.preprocessing != config.preprocessing:  # saved with the model, so exports follow
        model.backbone.preprocessing = config.preprocessing
    return model


def prepare_model(model, config):
    """Synchronized BatchNorm and the config's starting weights (new attention as the identity).

    Returns:
        ``(model, new layers)``: the layers the starting weights did not provide.
    """
    if config.sync_batchnorm:
        synchronize_batchnorm(model)
    return model, load_init_weights(model, config)


def synchronize_batchnorm(model):
    """BatchNorm statistics over the global batch, across all replicas.

    The paper trains detection with synchronized BatchNorm; with it a
    multi-replica run computes what one device would on the same global batch.
    Keras reads the flag when the layer is traced, so setting it after
    construction takes effect. Returns the number of layers changed (none
    on JAX and PyTorch: JAX's DataParallel computes every BatchNorm over the
    global batch already, and the PyTorch trainer uses one device).
    """
    if keras.backend.backend() != "tensorflow":
        return 0
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            count += 1
    return count


class Trainer:
    """One run: data, model, checkpoints, the epoch loop and what it writes."""

    def __init__(self, config, strategy, callbacks=()):
        self.config = config
        self.strategy = strategy
        self.callbacks = list(callbacks)
        self.chief = is_chief(strategy)
        self.output_dir = worker_dir(config.output_dir, strategy, self.chief)
        self.history_path = os.path.join(config.output_dir, "history.csv")

    def run(self):
        self.run_started = time.perf_counter()  # the deadline's clock
        self.stopped_at_deadline = False
        if self.config.deadline_minutes is not None and is_multi_worker(self.strategy):
            raise ValueError(
                f"deadline_minutes={self.config.deadline_minutes:g}: not with several workers "
                "(each worker's clock could stop it after another epoch); give it --epochs")
        keras.utils.set_random_seed(self.config.seed)
        if self.config.deterministic and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        self.datasets = self._load_data()
        self._build_model()
        start_epoch, start_step = self._restore()
        self.trained_steps = 0
        self.step_rates = []  # images/s of this session's epochs, steady steps only
        self.started = time.perf_counter()
        with StopRequests() as stops:
            for epoch in range(start_epoch, self.config.epochs):
                skip = start_step if epoch == start_epoch else 0
                step = self._train_epoch(epoch, skip, stops)
                if stops.requested:
                    print(f"Stopped {self._position(epoch, step)}; the same command continues "
                          "from there.", flush=True)
                    return {"interrupted": True, "epoch": epoch + 1, "step": step,
                            "steps_per_epoch": self.steps_per_epoch}
                if self._past_deadline(epoch):
                    break
        return self._finish()

    def _past_deadline(self, epoch):
        """Whether ``deadline_minutes`` have passed by the end of epoch ``epoch`` (from 0)
        with epochs still to go; says so in one line."""
        minutes, config = self.config.deadline_minutes, self.config
        if minutes is None or epoch + 1 >= config.epochs:
            return False
        elapsed = (time.perf_counter() - self.run_started) / 60
        if elapsed < minutes:
            return False
        self.stopped_at_deadline = True
        print(f"Deadline: {elapsed:.1f} of {minutes:g} minutes passed after epoch {epoch + 1} of "
              f"{config.epochs}; evaluating and saving what there is (the same command "
              "continues the run).", flush=True)
        return True

    def _position(self, epoch, step):
        """Where the run stands, in the words every message uses: epochs from 1, and the
        steps done in it (``epoch`` counts from 0, as Keras does)."""
        return (f"after step {step} of {self.steps_per_epoch} in epoch {epoch + 1} of "
                f"{self.config.epochs}")

    def _load_data(self):
        config = self.config
        if config.task == "classification":
            from keras_coordatt.data import PipelineOptions  # tf.data: TensorFlow needed
            from keras_coordatt.data import load_datasets

            options = PipelineOptions(
                image_size=config.image_size,
                batch_size=config.batch_size,
                preprocessing=config.preprocessing,
                crop_scale=(config.crop_scale_min, 1.0),
                cache=config.cache,
                deterministic=config.deterministic,
                seed=config.seed,
            )
            datasets = load_datasets(
                config.dataset, options, train_split=config.train_split,
                eval_split=config.eval_split, data_dir=config.data_dir,
                limit_train=config.limit_train, limit_eval=config.limit_eval,
            )
        else:
            datasets = load_task_data(config)
        self.steps_per_epoch = datasets.train_examples // config.batch_size
        if config.task != "classification" and self.steps_per_epoch < 1:
            raise ValueError(f"{config.dataset}: {datasets.train_examples} training examples "
                             f"make no batch of {config.batch_size}; lower --batch_size")
        if self.chief:
            print(datasets.describe())
            run_folder.write_text(os.path.join(config.output_dir, run_folder.CONFIG_FILE),
                                  config.to_json())
        return datasets

    def _build_model(self):
        task, num_classes = self.config.task, self.datasets.num_classes
        with self.strategy.scope():
            network = (classifier_for_config if task == "classification" else task_model)(
                self.config, num_classes)
            self.model, new_layers = prepare_model(network, self.config)
            if task == "classification":
                one_hot = compile_for_training(self.model, self.config, self.steps_per_epoch,
                                               new_layers)
            else:
                compile_task(self.model, self.config, self.steps_per_epoch, num_classes,
                             new_layers)
                one_hot = False
            self.model.optimizer.build(self.model.trainable_variables)
        self.transform = label_transform(self.config, num_classes, one_hot)
        self.eval_data = self._labelled(self.datasets.eval)
        if self.config.strategy == "multiworker":
            work_around_keras_multi_worker(
                self.model, self.strategy, self._labelled(self.datasets.train_for_epoch(0)).element_spec)
        self.tensorboard = []
        if tensorflow_available():  # Keras writes TensorBoard logs with tf.summary
            self.tensorboard = [keras.callbacks.TensorBoard(
                os.path.join(self.config.output_dir, "tensorboard"))]
        elif self.chief:
            print("No TensorBoard logs: they need TensorFlow, which is not installed here "
                  "(history.csv and training_curves.png have every epoch's numbers)", flush=True)
        self.monitor = self._attention_monitor()

    def _attention_monitor(self):
        """The monitor on the first held-out images (a fixed batch), or None."""
        if not (self.config.attention_monitor and self.chief and attention_layers(self.model)):
            return None
        x, y = first_batch(self.eval_data)[:2]
        # NumPy, so the probe feeds any backend's model (and JAX's jit) as it is.
        probe = keras.tree.map_structure(lambda t: t[:PROBE_IMAGES], (x, y))
        return AttentionMonitor(probe, self.config.output_dir,
                                os.path.join(self.config.output_dir, "tensorboard", "attention"))

    def _labelled(self, dataset):
        return dataset.map(self.transform) if self.transform else dataset

    def _restore(self):
        """Opens the run's checkpoints; returns where training continues."""
        self.checkpoint = run_checkpoint(
            self.model, os.path.join(self.output_dir, "checkpoints"), self.config.keep_checkpoints)
        latest = self.checkpoint.restore_latest() if self.config.resume else None
        epoch, step = self.checkpoint.position
        if latest:
            # A checkpoint at an epoch's end is stored as the next epoch's step 0.
            done = (epoch - 1, self.steps_per_epoch) if step == 0 and epoch else (epoch, step)
            print(f"Resumed from {latest}: {self._position(*done)}", flush=True)
        if self.chief:
            truncate_history(self.history_path, epoch)
        return epoch, step

    def _train_epoch(self, epoch, skip, stops):
        """Trains epoch ``epoch`` from step ``skip``; returns its steps done (all of them, or
        those before a stop: then nothing of the epoch's end runs, not even validation)."""
        # Epoch k's shuffle and augmentation depend on (seed, k) only, so a
        # resumed epoch sees the batches an unbroken run would have.
        train_data = self._labelled(self.datasets.train_for_epoch(epoch))
        if skip:
            train_data = train_data.skip(skip)
        watch = StepWatch(self.checkpoint, stops, epoch, skip, self.steps_per_epoch,
                          self.config.checkpoint_every_steps, self.checkpoint.epoch_part)
        try:
            fit = self.model.fit(
                # shuffle=False: the pipeline shuffles (by seed and epoch); Keras' default True
                # only earned a warning that it is ignored for a tf.data.Dataset.
                train_data, validation_data=self.eval_data, initial_epoch=epoch,
                epochs=epoch + 1, shuffle=False,
                callbacks=[watch, EpochProgress(self.config.epochs), *self.tensorboard,
                           *([self.monitor] if self.monitor else []), *self.callbacks],
                verbose=_verbosity(self.config),
            )
        except StoppedMidEpoch as stop:
            self.trained_steps += stop.step_in_epoch - skip
            return stop.step_in_epoch
        # A stop asked for during validation (or on the last step) lets the
        # epoch finish: its checkpoint, weights and history row are written.
        self.trained_steps += self.steps_per_epoch - skip
        logs = {key: float(values[-1]) for key, values in fit.history.items()}
        self._end_epoch(epoch, logs, watch.seconds, watch.steady_step_seconds)
        return self.steps_per_epoch

    def _end_epoch(self, epoch, logs, seconds, step_seconds):
        """Weights, history row, plot and one line of progress, then the epoch's checkpoint.

        The checkpoint goes last: it is what a resumed run starts from, so a run
        killed before it is written redoes the epoch's end from the step
        checkpoint before (its history cut back to that epoch), and one killed
        after it has everything of the epoch on disk.
        """
        improved = self.checkpoint.improved(monitored(self.config.task, logs))
        os.makedirs(self.output_dir, exist_ok=True)
        last = os.path.join(self.output_dir, "last.weights.h5")
        run_folder.save_weights(self.model, last)
        if improved:  # the same weights: a copy is 50x faster than saving them again
            run_folder.copy_file(last, os.path.join(self.output_dir, "best.weights.h5"))
        if self.chief:
            self._report_epoch(epoch, logs, seconds, improved, step_seconds)
        self.checkpoint.save(epoch + 1, 0, (epoch + 1) * self.steps_per_epoch)

    def _report_epoch(self, epoch, logs, seconds, improved, step_seconds):
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        # images_per_second: the training steps alone, after the epoch's first (which
        # compiles); what benchmarks/train_throughput.py reports.
        rate = ""
        if step_seconds is not None:
            rate = round(self.config.batch_size / step_seconds, 2)
            self.step_rates.append(rate)
        append_history(self.history_path, {"epoch": epoch + 1, **logs,
                                           "learning_rate": learning_rate,
                                           "seconds": round(seconds, 2),
                                           "images_per_second": rate})
        self._plot()
        metric = {"classification": "accuracy", "segmentation": "mean_iou"}.get(self.config.task)
        nan = float("nan")
        train_part = f"loss {logs.get('loss', nan):.4f}"
        eval_part = f"held-out loss {logs.get('val_loss', nan):.4f}"
        if metric:
            train_part += f" {metric} {logs.get(metric, nan):.4f}"
            eval_part += f" {metric} {logs.get('val_' + metric, nan):.4f}"
        print(f"epoch {epoch + 1}/{self.config.epochs}: {train_part} | {eval_part}"
              f" | lr {learning_rate:.5f} | {seconds:.1f}s"
              f"{' | best' if improved else ''}", flush=True)

    def _finish(self):
        """Evaluates, saves ``model.keras`` and writes ``metrics.json``; returns the metrics."""
        config, datasets = self.config, self.datasets
        train_seconds = time.perf_counter() - self.started
        evaluation = self.model.evaluate(self.eval_data, verbose=0, return_dict=True)
        epoch, step = self.checkpoint.position
        if config.task != "classification":
            return self._finish_task(evaluation, train_seconds, epoch, step)
        metrics = {
            **self._run_facts(),
            "eval_examples": datasets.eval_examples,
            "global_steps": epoch * self.steps_per_epoch + step,
            "optimizer_updates": int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)),
            "trainable_params": count_trainable_params(self.model),
            "eval_accuracy": float(evaluation["accuracy"]),
            "eval_loss": float(evaluation["loss"]),
            "best_eval_accuracy": float(self.checkpoint.best_accuracy),
            **self._speed(train_seconds),
        }
        return self._save(metrics, f"held-out accuracy {metrics['eval_accuracy']:.4f}")

    def _run_facts(self):
        """What every task's metrics.json says first: the network, the data, the classes."""
        config = self.config
        return {"model": config.model, "attention": config.attention, "alpha": config.alpha,
                "image_size": config.image_size, "dataset": config.dataset,
                "epochs": config.epochs, "class_names": list(self.datasets.class_names),
                "train_examples": self.datasets.train_examples,
                "epochs_trained": self.checkpoint.position[0],
                **({} if config.deadline_minutes is None else {
                    "deadline_minutes": config.deadline_minutes,
                    "stopped_at_deadline": self.stopped_at_deadline})}

    def _speed(self, train_seconds):
        """Training time and throughput of this session, and what the attention monitor cost."""
        monitor = {} if self.monitor is None else {
            "attention_monitor_seconds": round(self.monitor.seconds, 1)}
        steady = {} if not self.step_rates else {
            "train_step_images_per_second": round(float(np.median(self.step_rates)), 1)}
        return {**monitor, "train_seconds_this_session": round(train_seconds, 1),
                "train_images_per_second": round(
                    self.trained_steps * self.config.batch_size / max(train_seconds, 1e-9), 1),
                **steady}

    def _save(self, metrics, headline):
        """``model.keras`` and ``metrics.json``, and one line saying where they are."""
        model_path = os.path.join(self.output_dir, "model.keras")
        run_folder.save_model(self.model, model_path)
        if self.chief:
            run_folder.write_text(os.path.join(self.config.output_dir, "metrics.json"),
                                  json.dumps(metrics, indent=2, default=_plain))
            preset = self._save_preset(metrics)
            print(f"Saved {model_path} ({headline}); metrics.json, history.csv, "
                  f"training_curves.png{' and the preset folder' if preset else ''} are beside it.")
        return metrics

    def _save_preset(self, metrics):
        """The final model as ``preset/`` (`keras_coordatt.from_preset`), the run's metrics in
        its model card; a failure is one line, the run's other files stay."""
        config = self.config
        card_metrics = {key: metrics[key] for key in (
            "eval_accuracy", "best_eval_accuracy", "AP", "AP50", "mIoU", "eval_loss")
            if isinstance(metrics.get(key), (int, float))}
        split = "eval split" if config.task == "classification" else metrics.get("eval_split")
        try:
            return run_folder.save_preset(
                self.model, os.path.join(config.output_dir, "preset"),
                class_names=list(self.datasets.class_names), metrics=card_metrics,
                source=f"keras-coordatt train, run folder {os.path.abspath(config.output_dir)} "
                       f"(its config.json has every setting)",
                description=f"Trained on {config.dataset} for {config.epochs} epochs from "
                            f"{config.init_weights or 'random weights'}; metrics on the "
                            f"{split} ({metrics.get('eval_examples', metrics.get('eval_images'))} "
                            f"images) at the end of the run.")
        except (OSError, ValueError, TypeError) as error:
            print(f"preset/ not written: {error}")
            return None

    def _finish_task(self, evaluation, train_seconds, epoch, step):
        """Scores the eval images with the task's tools, saves the model, writes metrics.json."""
        config, datasets = self.config, self.datasets
        evaluate = evaluate_detection if config.task == "detection" else evaluate_segmentation
        scores, _ = evaluate(self.model, datasets, config)
        metrics = {
            "task": config.task,
            **self._run_facts(),
            "eval_split": datasets.eval_split,
            "seed": config.seed,
            "init_weights": config.init_weights,
            "eval_images": datasets.eval_count,
            "global_steps": epoch * self.steps_per_epoch + step,
            "params": int(self.model.count_params()),
            "eval_loss": float(evaluation["loss"]),
            **scores,
            "best_eval_monitor": float(self.checkpoint.best_accuracy),
            **self._speed(train_seconds),
        }
        return self._save(metrics, ", ".join(f"{key} {metrics[key]:.4f}" for key in
                                             ("AP", "AP50", "mIoU") if key in metrics))

    def _plot(self):
        try:
            plot_curves(self.history_path,
                        os.path.join(self.config.output_dir, "training_curves.png"))
        except ImportError as error:
            if not getattr(self, "_plot_skipped", False):
                print(f"training_curves.png not drawn: {error}")
            self._plot_skipped = True


def train_from_args(args, search_dirs=()):
    """Trains the config that parsed ``args`` describe; returns the exit status.

    Shared by ``keras-coordatt train`` and the repository's
    ``python -m training.train`` (which passes its configs folder).
    """
    config = config_from_args(args, search_dirs)
    metrics = train(config)
    print(json.dumps(metrics, indent=2))
    return 130 if metrics.get("interrupted") else 0


def _plain(value):
    """JSON for NumPy numbers and arrays in the metrics."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _verbosity(config):
    if config.verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return {"bar": 1, "line": 2, "quiet": 0}[config.verbose]

