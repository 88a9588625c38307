"""Which devices a run trains on: ``tf.distribute`` strategies by name."""

import os


def make_strategy(config):
    """The tf.distribute strategy that ``config.strategy`` names.

    auto: MirroredStrategy over all GPUs when there are several, else the
    default strategy. mirrored: MirroredStrategy over ``config.devices`` (a
    comma-separated list) or all GPUs. multiworker: MultiWorkerMirroredStrategy
    configured by the TF_CONFIG environment variable.
    """
    import tensorflow as tf

    devices = config.devices.split(",") if config.devices else None
    if config.strategy == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if config.strategy == "default":
        return tf.distribute.get_strategy()
    if config.strategy == "mirrored":
        if devices:
            split_cpu(sum("cpu" in device.lower() for device in devices))
        return tf.distribute.MirroredStrategy(devices=devices)
    if "TF_CONFIG" not in os.environ:
        raise ValueError(
            "strategy=multiworker needs the TF_CONFIG environment variable "
            '(for example {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}) on every worker.'
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


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


def is_chief(strategy):
    """Whether this process writes the run's files (the only one, or worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
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
