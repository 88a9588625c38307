"""What the detection and segmentation pipelines share: example order, epoch seeds, batching."""

import numpy as np
import tensorflow as tf

STREAM_SHUFFLE_BUFFER = 1024  # examples, for sources that stream


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


def finish_batches(dataset, prepare, batch_size, train, count):
    """``prepare`` mapped in order, 2 calls at a time, then batched (training drops the last
    partial batch), deterministic and without tf.data's autotuner (see `PipelineOptions`).

    ``count`` is how many examples ``dataset`` (a generator's) yields: stated, so the
    batches have a known length. Without it Keras runs one more, empty, step per pass,
    and its per-output losses (``val_boxes_loss``, ``val_classes_loss``) average that
    step's zeros in: one batch of validation reported them at half their value.
    """
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))
    dataset = dataset.map(prepare, num_parallel_calls=2, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=train)
    tf_options = tf.data.Options()
    tf_options.deterministic = True
    tf_options.autotune.enabled = False
    return dataset.with_options(tf_options).prefetch(1)
