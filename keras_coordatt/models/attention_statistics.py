"""What a network's attention layers do: their gates on a batch, and how fast they learn.

`gate_statistics(model, images)` summarises each attention layer's gates on
``images`` (one row a layer: mean, spread over positions and over channels,
distance from the value the identity start gives, share saturated);
`gradient_norms(model, x, y)` adds the norm of the loss's gradient on the
layer's weights beside that on the convolution reading its output. Both run
on every Keras backend. The trainer's `AttentionMonitor` records them each
epoch, and ``keras-coordatt explain --statistics`` prints them for a saved model.

An attention whose gates sit at their start value (0.5 for the sigmoid) after
training multiplies its input by a constant: the network then computes what
it would without the attention, at the attention's cost.
"""

import contextlib

import keras
import numpy as np
from keras import ops

from keras_coordatt.layers.base import AttentionLayer
from keras_coordatt.models.identity import attention_layers
from keras_coordatt.models.identity import reader_of

# A sigmoid gate this close to 0 or 1 passes almost no gradient (slope < 0.02).
SATURATED = (0.02, 0.98)
STATISTICS = ("mean", "std", "position_std", "channel_std", "from_start", "saturated",
              "mode_gap")


def attention_inputs(model, images):
    """``{layer name: its input}`` on ``images`` for every attention layer of ``model``.

    Searches the models nested in ``model`` too (a detector's backbone), with
    the layers in inference mode.
    """
    found = {}
    _collect_inputs(model, images, found)
    return found


def _collect_inputs(model, inputs, found):
    direct = [layer for layer in model.layers if isinstance(layer, AttentionLayer)]
    nested = [layer for layer in model.layers
              if isinstance(layer, keras.Model) and attention_layers(layer)]
    if not direct and not nested:
        return
    targets = [layer.input for layer in direct]
    targets += [layer._inbound_nodes[0].input_tensors[0] for layer in nested]
    model_inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    values = keras.Model(model_inputs, targets)(inputs, training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    for layer, value in zip(direct, values):
        found[layer.name] = value
    for layer, value in zip(nested, values[len(direct):]):
        _collect_inputs(layer, value, found)


def gate_statistics(model, images):
    """One dict a layer summarising its gates on ``images``, in the model's order.

    Keys: ``layer``, ``type`` (the class name), and over all the layer's
    gates: ``mean``, ``std`` (over batch, positions and channels),
    ``position_std`` (the spread along the positions a gate varies over,
    averaged over images and channels: 0 for SE, whose gate has no positions),
    ``channel_std`` (the spread over channels at one position, averaged),
    ``from_start`` (mean |gate - its value at logit 0|: 0.5 for the sigmoid,
    where the identity start puts every gate), ``saturated`` (the share of
    gates below 0.02 or above 0.98) and ``mode_gap`` (mean |gate in training
    mode - gate at inference| on the same input: what the layer's own batch
    statistics change between the two; 0 for a layer without any, such as SE,
    CBAM or ``"ca_ln"``; the moving statistics are left as they were).

    Raises:
        ValueError: ``model`` has no attention layer of this package.
    """
    layers = attention_layers(model)
    if not layers:
        raise ValueError(f"model '{model.name}' has no attention layer (CoordAttention, "
                         "SqueezeExcite, CBAM) to summarise")
    inputs = attention_inputs(model, np.asarray(images, "float32"))
    return [_summary(layer, inputs[layer.name]) for layer in layers]


@contextlib.contextmanager
def statistics_kept(variables):
    """Puts ``variables`` (a network's moving statistics) back as they were when the block
    ends: a training-mode pass taken only to look moves them."""
    saved = [ops.convert_to_numpy(v) for v in variables]
    try:
        yield
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)


def gate_values(layer, inputs, training=False):
    """The layer's gates on ``inputs`` as float32 arrays, one per gate.

    With ``training=True`` the layer runs in training mode (its BatchNorm on the batch's
    statistics); the moving statistics that call updates are put back.
    """
    with statistics_kept(layer.non_trainable_variables if training else []):
        return [ops.convert_to_numpy(ops.cast(gate, "float32"))
                for gate in layer.gates(inputs, training=training).values()]


def _summary(layer, inputs):
    gates = gate_values(layer, inputs, training=False)
    in_training = gate_values(layer, inputs, training=True)
    starts = layer.gate_midpoints()
    values = np.concatenate([gate.ravel() for gate in gates])
    distance = np.concatenate([np.abs(gate - start).ravel() for gate, start in zip(gates, starts)])
    # A gate is (N, positions..., C) channels-last; positions are its axes of size > 1.
    position_std = [gate.std(axis=(1, 2)).mean() for gate in gates if gate.shape[1] * gate.shape[2] > 1]
    channel_std = [gate.std(axis=-1).mean() for gate in gates if gate.shape[-1] > 1]
    return {
        "layer": layer.name,
        "type": type(layer).__name__,
        "mean": float(values.mean()),
        "std": float(values.std()),
        "position_std": float(np.mean(position_std)) if position_std else 0.0,
        "channel_std": float(np.mean(channel_std)) if channel_std else 0.0,
        "from_start": float(distance.mean()),
        "saturated": float(np.mean((values < SATURATED[0]) | (values > SATURATED[1]))),
        "mode_gap": float(np.mean(np.concatenate(
            [np.abs(a - b).ravel() for a, b in zip(in_training, gates)]))),
    }


def gradient_norms(model, x, y):
    """``{layer name: (attention norm, reader norm)}``: the loss's gradient norms.

    The attention norm is over the layer's trainable weights; the reader norm
    over the kernel of the one convolution that reads the layer's output (its
    block's projection; NaN where there is no single such convolution). One
    training-mode forward and backward pass on ``(x, y)`` with the model's
    compiled loss; the BatchNorm statistics it moves are put back.

    Raises:
        ValueError: the model is not compiled (no loss to differentiate).
    """
    if not getattr(model, "compiled", False) or getattr(model, "loss", None) is None:
        raise ValueError(f"gradient_norms: model '{model.name}' is not compiled; compile it "
                         "with its loss (or load it with compile=True)")
    variables = model.trainable_variables
    computed = gradients(model, variables, x, y)
    norm_of = {id(variable): float(np.sqrt(np.sum(np.square(
        ops.convert_to_numpy(ops.cast(gradient, "float32"))))))
        for variable, gradient in zip(variables, computed) if gradient is not None}
    norms = {}
    for layer in attention_layers(model):
        squares = [norm_of.get(id(v), 0.0) ** 2 for v in layer.trainable_weights]
        reader = _reader(layer)
        reader_norm = norm_of.get(id(reader.kernel), float("nan")) if reader else float("nan")
        norms[layer.name] = (float(np.sqrt(sum(squares))), reader_norm)
    return norms


def _reader(layer):
    try:
        return reader_of(layer)
    except ValueError:
        return None


def gradients(model, variables, x, y):
    """The gradients of the compiled model's loss on ``(x, y)`` for ``variables``, on any
    backend: one training-mode pass; the BatchNorm statistics it moves are put back."""
    backend = keras.backend.backend()
    with statistics_kept(model.non_trainable_variables):
        if backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                y_pred = model(x, training=True)
                loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            return tape.gradient(loss, variables)
        if backend == "jax":
            optimizer = getattr(model, "optimizer", None)
            return _jax_gradient_function(model)(
                [v.value for v in variables], [v.value for v in model.non_trainable_variables],
                [v.value for v in model.metrics_variables],
                [v.value for v in optimizer.variables] if optimizer else None, x, y)
        if backend == "torch":
            for variable in variables:
                variable.value.grad = None
            y_pred = model(x, training=True)
            model.compute_loss(x=x, y=y, y_pred=y_pred, training=True).backward()
            gradients = [variable.value.grad for variable in variables]
            for variable in variables:
                variable.value.grad = None
            return gradients
        raise ValueError(f"gradient_norms: the {backend!r} backend is not supported "
                         "(TensorFlow, JAX and PyTorch are)")


def _jax_gradient_function(model):
    """The model's jitted loss gradient, made once a model: a monitor calls it every epoch,
    and each new ``jax.jit`` would compile the whole network again."""
    function = getattr(model, "_keras_coordatt_gradients", None)
    if function is None:
        import jax

        def loss_of(trainable, non_trainable, metrics, optimizer_variables, x, y):
            loss, _ = model.compute_loss_and_updates(
                trainable, non_trainable, metrics, x, y, None, training=True,
                optimizer_variables=optimizer_variables)
            return loss

        function = jax.jit(jax.grad(loss_of))
        model._keras_coordatt_gradients = function
    return function
