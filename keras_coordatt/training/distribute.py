"""Which devices a run trains on: ``tf.distribute`` strategies by name on TensorFlow,
``keras.distribution.DataParallel`` on JAX, one device on PyTorch."""

import contextlib
import os
import re

# "/cpu:0", "/gpu:1", "/device:GPU:0" (any case).
DEVICE_PATTERN = re.compile(r"^/(?:device:)?(cpu|gpu):(\d+)$", re.IGNORECASE)


def make_strategy(config):
    """The tf.distribute strategy that ``config.strategy`` names.

    auto: MirroredStrategy over all GPUs when there are several, else the
    default strategy. mirrored: MirroredStrategy over ``config.devices`` (a
    comma-separated list) or all GPUs. multiworker: MultiWorkerMirroredStrategy
    configured by the TF_CONFIG environment variable.

    On JAX the same names give a `KerasDistribution`: DataParallel over the
    GPUs (auto, when there are several), over ``config.devices`` or every
    device (mirrored); multiworker is TensorFlow's. On PyTorch the trainer
    uses one device, and asking for more is an error saying so.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return keras_distribution(config)
    import tensorflow as tf

    devices = check_devices(config.strategy, config.devices)
    if config.strategy == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if config.strategy == "default":
        return tf.distribute.get_strategy()
    if config.strategy == "mirrored":
        if devices:
            split_cpu(sum(kind == "cpu" for kind, _ in map(_parse_device, devices)))
        return tf.distribute.MirroredStrategy(devices=devices)
    if "TF_CONFIG" not in os.environ:
        raise ValueError(
            "strategy=multiworker needs the TF_CONFIG environment variable "
            '(for example {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}) on every worker.'
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_devices(strategy, devices):
    """The ``--devices`` list, checked against this machine before any device is touched.

    A device that is not there would leave MirroredStrategy waiting for it
    forever, so every problem is a ValueError naming the device and what the
    machine has.

    Returns:
        The device strings, or None when none were given.
    """
    if not devices:
        return None
    if strategy != "mirrored":
        raise ValueError(
            f"devices={devices!r} is used only with strategy=mirrored (strategy is "
            f"{strategy!r}); add --strategy mirrored or leave out --devices"
        )
    names = [name.strip() for name in devices.split(",")]
    parsed = [_parse_device(name) for name in names]
    if len(set(parsed)) != len(parsed):
        raise ValueError(f"devices={devices!r} names a device twice")
    gpus = _gpu_count()
    for name, (kind, index) in zip(names, parsed):
        if kind == "gpu" and index >= gpus:
            have = f"GPUs /gpu:0 to /gpu:{gpus - 1}" if gpus else "no GPU the backend can use"
            raise ValueError(f"devices: there is no {name} on this machine; it has {have}")
    import keras

    if keras.backend.backend() == "jax":
        import jax

        have = len(jax.devices("cpu"))
        for name, (kind, index) in zip(names, parsed):
            if kind == "cpu" and index >= have:
                raise ValueError(
                    f"devices: JAX has {have} CPU device{'s' if have > 1 else ''} here, so no "
                    f"{name}; start the process with XLA_FLAGS="
                    f"--xla_force_host_platform_device_count={index + 1} for more")
    cpus = sorted(index for kind, index in parsed if kind == "cpu")
    if cpus and cpus != list(range(len(cpus))):
        raise ValueError(
            f"devices: the CPU is split into as many logical devices as you list, numbered "
            f"from 0; for {len(cpus)} CPU replicas write "
            f"{','.join(f'/cpu:{i}' for i in range(len(cpus)))}"
        )
    return names


def _gpu_count():
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        try:
            return len(jax.devices("gpu"))
        except RuntimeError:  # no GPU platform in this JAX
            return 0
    import torch

    return torch.cuda.device_count()


class KerasDistribution:
    """What the trainer needs of a strategy, on JAX and PyTorch.

    ``scope()`` makes ``distribution`` (a ``keras.distribution`` one, or
    None for one device) the distribution inside it: the trainer opens it
    around the whole run, so ``fit`` splits each batch across the devices.
    """

    cluster_resolver = None  # one process: it is the chief

    def __init__(self, distribution=None):
        self.distribution = distribution

    @property
    def num_replicas_in_sync(self):
        return len(self.distribution.device_mesh.devices.ravel()) if self.distribution else 1

    def scope(self):
        return self.distribution.scope() if self.distribution else contextlib.nullcontext()


def keras_distribution(config):
    """`make_strategy` on JAX and PyTorch: a `KerasDistribution`."""
    import keras

    backend = keras.backend.backend()
    if config.strategy == "multiworker":
        raise ValueError(
            f"strategy=multiworker is TensorFlow's MultiWorkerMirroredStrategy; the "
            f"{backend} backend trains in one process here (KERAS_BACKEND=tensorflow for "
            "several machines)")
    devices = check_devices(config.strategy, config.devices)
    if backend != "jax":
        if config.strategy == "mirrored":
            raise ValueError(
                f"strategy=mirrored: the {backend} backend trains on one device here; several "
                "devices need KERAS_BACKEND=jax (keras.distribution) or tensorflow")
        return KerasDistribution()
    if config.strategy == "default":
        return KerasDistribution()
    if devices:
        chosen = [f"{kind}:{index}" for kind, index in map(_parse_device, devices)]
    else:
        gpus = keras.distribution.list_devices("gpu") if _gpu_count() else []
        if config.strategy == "auto":
            chosen = gpus if len(gpus) > 1 else []
        else:
            chosen = gpus or keras.distribution.list_devices("cpu")
    if len(chosen) < 2:
        return KerasDistribution()
    return KerasDistribution(keras.distribution.DataParallel(devices=chosen))


def _parse_device(name):
    match = DEVICE_PATTERN.match(name.strip())
    if not match:
        raise ValueError(
            f"devices: {name!r} is not a device; write /cpu:N or /gpu:N, comma-separated "
            "(e.g. /gpu:0,/gpu:1)"
        )
    return match.group(1).lower(), int(match.group(2))


def split_cpu(count):
    """Splits the CPU into ``count`` logical devices (distribution on a CPU box).

    Must run before TensorFlow initializes its devices; the train command
    runs it first.
    """
    import tensorflow as tf

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


def is_multi_worker(strategy):
    """Whether ``strategy`` spans several processes (MultiWorkerMirroredStrategy's cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is not None and bool(resolver.cluster_spec().as_dict())


def is_chief(strategy):
    """Whether this process writes the run's files (the only one, or worker 0)."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0)


def worker_dir(output_dir, strategy, chief):
    """Where this worker writes: ``output_dir`` for the chief, a scratch folder otherwise.

    Under MultiWorkerMirroredStrategy saving reads distributed variables, a
    collective step every worker must join; the other workers write to a
    scratch folder of their own, and only the chief's files are kept.
    """
    if chief:
        return output_dir
    return os.path.join(output_dir, f".worker_{strategy.cluster_resolver.task_id}")


def work_around_keras_multi_worker(model, strategy, element_spec):
    """Builds metrics and loss from the dataset's spec instead of a real batch.

    Keras 3 (keras-team/keras#20585) peeks at the first batch in fit() and
    averages it across replicas with ``strategy.reduce``, which fails under
    MultiWorkerMirroredStrategy ("Attempt to convert a value (PerReplica ...)").
    Building from the spec first makes that peek unnecessary.
    """
    import tensorflow as tf
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
