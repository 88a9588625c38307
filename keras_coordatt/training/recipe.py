"""The paper's optimisation recipe as Keras objects: schedule, optimizer, loss, mixup."""

import keras

from keras_coordatt.layers.base import AttentionLayer
from keras_coordatt.optimizers import LayerwiseSGD


def new_layer_multipliers(config, new_layers):
    """``{variable path: multiple of the learning rate}`` of the layers the start lacked.

    Inserted attention layers take ``config.attention_lr_multiplier`` (when
    set), the other new layers (a new head) ``config.new_layer_lr_multiplier``;
    a multiple of 1 is left out.
    """
    multipliers = {}
    for layer in new_layers:
        multiple = config.new_layer_lr_multiplier
        if isinstance(layer, AttentionLayer) and config.attention_lr_multiplier is not None:
            multiple = config.attention_lr_multiplier
        if multiple != 1.0:
            multipliers.update({variable.path: multiple for variable in layer.trainable_weights})
    return multipliers


def adam_paths(config, new_layers):
    """Paths of the inserted attention's variables when they take Adam's step."""
    if config.attention_optimizer != "adam":
        return []
    return [variable.path for layer in new_layers if isinstance(layer, AttentionLayer)
            for variable in layer.trainable_weights]


def make_optimizer(config, steps_per_epoch, new_layers=()):
    """The config's SGD with momentum, decoupled weight decay and warm-up + cosine schedule
    (and gradients clipped to ``clip_global_norm`` where it is set).

    ``new_layers`` (those the starting weights did not provide) learn at the
    multiples `new_layer_multipliers` gives them; inserted attention takes
    Adam's step with ``attention_optimizer="adam"``.
    """
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
    return LayerwiseSGD(
        lr_multipliers=new_layer_multipliers(config, new_layers),
        adam_paths=adam_paths(config, new_layers), learning_rate=schedule,
        momentum=config.momentum, weight_decay=config.weight_decay,
        global_clipnorm=config.clip_global_norm,
    )


def compile_for_training(model, config, steps_per_epoch, new_layers=()):
    """Compiles ``model`` with the config's SGD, cosine schedule, loss and accuracy.

    ``new_layers``: what `make_optimizer` gives the new layers' rates to.

    Returns:
        Whether the labels must be one-hot (label smoothing or mixup).
    """
    optimizer = make_optimizer(config, steps_per_epoch, new_layers)
    one_hot = config.label_smoothing > 0 or config.mixup_alpha > 0
    if one_hot:
        loss = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=config.label_smoothing
        )
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile(config))
    return one_hot


def jit_compile(config):
    """Whether ``fit`` compiles its step: ``--jit`` on TensorFlow and PyTorch (whole-model
    XLA is slower on CPUs there), always on JAX, whose steps run op by op otherwise."""
    return True if keras.backend.backend() == "jax" else config.jit


def label_transform(config, num_classes, one_hot):
    """One-hot labels and optional mixup, as a tf.data map over batches; None if not needed."""
    if not one_hot:
        return None
    import tensorflow as tf

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
