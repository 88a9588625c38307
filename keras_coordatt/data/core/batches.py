"""What the detection and segmentation pipelines share: example order, epoch seeds, batching.

Each pipeline prepares one example at a time in NumPy (read, augment, resize,
targets), and the same prepared examples reach the network through one of
two loaders:

- ``"tf.data"``: the examples stream through ``tf.data``, each prepared
  inside ``tf.numpy_function``, two at a time, then batched (TensorFlow needed);
- ``"python"``: a ``keras.utils.PyDataset`` (`ExampleBatches`) builds each
  batch in threads, for machines without TensorFlow (a GPU machine with JAX
  or PyTorch only).

``"auto"`` (the default) takes ``tf.data`` where TensorFlow imports and the
PyDataset where it does not. Both give the same batches, value for value:
every random draw is a function of (seed, epoch, position in the epoch).
"""

import math

import keras
import numpy as np

from keras_coordatt.data.core.optional import tensorflow_available

STREAM_SHUFFLE_BUFFER = 1024  # examples, for sources that stream
LOADERS = ("auto", "tf.data", "python")


def seed_of_epoch(seed, epoch):
    """The shuffle and augmentation seed of one epoch: a function of (seed, epoch), < 2**63."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] >> 1)


def in_order(examples, order):
    """``(index, example)`` in ``order``; a sequence that streams (a tensorflow-datasets split,
    where ``examples[i]`` reads through the first ``i``) is read once in its own order instead."""
    if isinstance(examples, list):
        for index in order:
            yield index, examples[index]
    else:
        yield from enumerate(examples)


def resolve_loader(loader):
    """``"tf.data"`` or ``"python"``: what ``loader`` (one of `LOADERS`) means on this machine."""
    if loader not in LOADERS:
        raise ValueError(f"loader must be one of {LOADERS}, got {loader!r}")
    if loader == "auto":
        return "tf.data" if tensorflow_available() else "python"
    if loader == "tf.data" and not tensorflow_available():
        raise ImportError("loader='tf.data' needs TensorFlow, which is not installed here; "
                          "use loader='python' (a keras.utils.PyDataset) or 'auto'")
    return loader


class PreparedExamples:
    """How a pipeline turns examples into network inputs, one at a time, in NumPy.

    Args:
        read: ``read(example, index)`` -> a tuple of arrays (image and labels
            as the source holds them).
        prepare: ``prepare(*read(...), seed)`` -> a tuple of arrays of fixed
            shapes (``seed``: ``(epoch seed, position)``, or None for eval).
        dtypes: the NumPy dtypes ``prepare`` returns.
        shapes: their shapes.
        pack: ``pack(*batched arrays)`` -> what the network's ``fit`` reads
            (``(x, y)``).
        read_dtypes: the dtypes ``read`` returns (``tf.data``'s generator).
        read_shapes: their shapes, None for a size that varies.
    """

    def __init__(self, read, prepare, dtypes, shapes, pack, read_dtypes, read_shapes):
        self.read, self.prepare, self.pack = read, prepare, pack
        self.dtypes, self.shapes = tuple(dtypes), tuple(shapes)
        self.read_dtypes, self.read_shapes = tuple(read_dtypes), tuple(read_shapes)

    def finish(self, read, seed):
        """``prepare`` on what ``read`` gave: a tuple of arrays of the stated dtypes."""
        return tuple(np.asarray(a, d) for a, d in zip(self.prepare(*read, seed), self.dtypes))

    def one(self, example, index, seed):
        """One example read and prepared: a tuple of arrays."""
        return self.finish(self.read(example, index), seed)


def example_batches(examples, order, pipeline, batch_size, train, epoch_seed, loader="auto"):
    """The batches of ``examples`` in ``order`` through ``pipeline`` (a `PreparedExamples`).

    Training batches drop the last partial batch and augment with the seed
    ``(epoch_seed, position)``; eval batches keep every example, unaugmented.
    A source that streams (not a list) is read once in its own order, and for
    training shuffled in a seeded buffer (``tf.data`` only).
    """
    loader = resolve_loader(loader)
    streamed = not isinstance(examples, list)
    if loader == "python":
        if streamed and not hasattr(examples, "__getitem__"):
            raise ValueError("the python loader needs examples it can index; this source "
                             "streams (tensorflow-datasets): use loader='tf.data'")
        if streamed:
            order = np.arange(len(examples))
        return ExampleBatches(examples, order, pipeline, batch_size, train,
                              epoch_seed if train else None)
    return _tf_batches(examples, order, pipeline, batch_size, train, epoch_seed, streamed)


def _tf_batches(examples, order, pipeline, batch_size, train, epoch_seed, streamed):
    import tensorflow as tf

    def generate():
        for position, (index, example) in enumerate(in_order(examples, order)):
            yield pipeline.read(example, index) + (np.int64(position),)

    signature = tuple(tf.TensorSpec(shape, dtype) for shape, dtype in
                      zip(pipeline.read_shapes, pipeline.read_dtypes))
    dataset = tf.data.Dataset.from_generator(
        generate, output_signature=signature + (tf.TensorSpec((), tf.int64),))
    if train and streamed:
        dataset = dataset.shuffle(STREAM_SHUFFLE_BUFFER, seed=epoch_seed % 2**31)
    count = len(examples) if streamed else len(order)
    # Stated, so the batches have a known length. Without it Keras runs one more, empty,
    # step per pass, and its per-output losses (``val_boxes_loss``) average that step's
    # zeros in: one batch of validation reported them at half their value.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))

    def prepare(*arrays):
        *read, position = arrays
        return pipeline.finish(read, (epoch_seed, int(position)) if train else None)

    def mapped(*arrays):
        out = tf.numpy_function(prepare, list(arrays), [tf.as_dtype(d) for d in pipeline.dtypes],
                                stateful=False)
        return tuple(tf.ensure_shape(t, s) for t, s in zip(out, pipeline.shapes))

    dataset = dataset.map(mapped, num_parallel_calls=2, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=train)
    dataset = dataset.map(pipeline.pack)
    tf_options = tf.data.Options()
    tf_options.deterministic = True
    tf_options.autotune.enabled = False
    return dataset.with_options(tf_options).prefetch(1)


class ExampleBatches(keras.utils.PyDataset):
    """Batches built in Python threads (a ``keras.utils.PyDataset``): the loader for machines
    without TensorFlow. Batch ``i`` is the same whichever thread builds it, and when.

    Supports ``skip(n)`` (a resumed epoch's remaining batches) as ``tf.data`` does.
    """

    def __init__(self, examples, order, pipeline, batch_size, train, epoch_seed, start=0,
                 workers=2):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=4)
        self.examples, self.order, self.pipeline = examples, np.asarray(order), pipeline
        self.batch_size, self.train, self.epoch_seed, self.start = (
            batch_size, train, epoch_seed, start)

    @property
    def _total(self):
        count = len(self.order) / self.batch_size
        return int(count) if self.train else math.ceil(count)

    def __len__(self):
        return max(0, self._total - self.start)

    @property
    def num_batches(self):
        return len(self)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        first = (index + self.start) * self.batch_size
        rows = []
        for position in range(first, min(first + self.batch_size, len(self.order))):
            example_index = int(self.order[position])
            seed = None if self.epoch_seed is None else (self.epoch_seed, position)
            rows.append(self.pipeline.one(self.examples[example_index], example_index, seed))
        return self.pipeline.pack(*(np.stack(column) for column in zip(*rows)))

    def skip(self, count):
        """The batches after the first ``count``."""
        return ExampleBatches(self.examples, self.order, self.pipeline, self.batch_size,
                              self.train, self.epoch_seed, self.start + count, self.workers)


def first_batch(batches):
    """The first batch of a ``tf.data.Dataset`` or an `ExampleBatches`, as NumPy arrays."""
    batch = batches[0] if isinstance(batches, keras.utils.PyDataset) else next(iter(batches))
    return keras.tree.map_structure(np.asarray, batch)
