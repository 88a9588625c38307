"""Where a model looks: Grad-CAM for any Keras classifier, and Coordinate Attention's gates.

- `grad_cam(model, images)`: Selvaraju et al.'s Grad-CAM (ICCV 2017), the
  heat maps the CA paper draws in its Figure 5: the class score's gradient,
  averaged over each feature map of a late layer, weights those maps; their
  positive sum, upsampled to the image, is the map.
- `coord_attention_gates(model, images, layer)`: a CA layer's two gates,
  ``g_h`` (one value per row) and ``g_w`` (per column), averaged over the
  channels, and their product on the image (the mean over channels of
  ``g_h * g_w``, which is what the layer multiplies its input by).
- `explain_figure` draws both beside the image, each on a fixed colour
  scale with its colour bar; `explain_images` reads image files, runs both
  and writes one PNG per image (``keras-coordatt explain``).

Grad-CAM takes gradients with the backend's own machinery: TensorFlow's tape
(any layer), JAX's ``grad`` and PyTorch's autograd (a layer every path to
the output passes, as the default one does); the gates run on any backend.
"""

import os

import keras
import numpy as np
from keras import ops

from keras_coordatt.layers import CoordAttention
from keras_coordatt.models.attention_statistics import gate_statistics
from keras_coordatt.models.identity import attention_layers
from keras_coordatt.preprocessing import preprocessing_of


def feature_layer(model):
    """The last layer with a 4D output: the default layer Grad-CAM reads."""
    for layer in reversed(model.layers):
        if _rank(layer) == 4 and not isinstance(layer, keras.layers.InputLayer):
            return layer
    raise ValueError(f"grad_cam: model '{model.name}' has no layer with a 4D (image) output")


def grad_cam(model, images, layer=None, class_index=None):
    """Grad-CAM heat maps of ``model``'s class scores on ``images``.

    Args:
        model: a functional Keras classifier (logits or probabilities out).
        images: ``(N, H, W, 3)`` images, preprocessed as the model expects.
        layer: the layer (or its name) whose feature maps are weighted;
            default: the last layer with a 4D output (``out_relu`` in
            MobileNetV2).
        class_index: the class to explain, an int for all images or one per
            image; default: each image's top class.

    Returns:
        ``(maps, classes)``: maps ``(N, H, W)`` float32 in [0, 1] (each
        image's map divided by its maximum; all zero where no position speaks
        for the class), and the class index each map explains.
    """
    maps, classes, _ = _grad_cam(model, images, layer, class_index)
    return maps, classes


def _grad_cam(model, images, layer, class_index):
    """`grad_cam`'s maps and classes, and the model's outputs ``(N, classes)`` it computed."""
    layer = _layer(model, layer) if layer is not None else feature_layer(model)
    if _rank(layer) != 4:
        raise ValueError(
            f"grad_cam: layer '{layer.name}' has output shape {tuple(layer.output.shape)}; "
            "Grad-CAM needs a 4D (batch, height, width, channels) feature map")
    images = np.asarray(images, "float32")
    features, scores, classes, gradients = _class_gradients(model, layer, images, class_index)
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    maps = np.maximum((weights * features).sum(axis=-1), 0.0)
    peak = maps.max(axis=(1, 2), keepdims=True)
    maps = np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)
    maps = ops.image.resize(maps[..., None], images.shape[1:3], interpolation="bilinear")
    return np.clip(ops.convert_to_numpy(maps)[..., 0], 0.0, 1.0), classes, scores


def _class_gradients(model, layer, images, class_index):
    """``(features, scores, classes, gradients)`` as float32 NumPy: the layer's feature maps,
    the model's outputs, the class explained per image, and its score's gradient with
    respect to the feature maps."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        probe = keras.Model(model.input, [layer.output, model.output])
        with tf.GradientTape() as tape:
            features, scores = (tf.cast(t, tf.float32) for t in probe(images, training=False))
            classes = _classes(scores.numpy(), class_index)
            chosen = tf.gather(scores, classes, axis=1, batch_dims=1)
        gradients = tape.gradient(chosen, features)
        return features.numpy(), scores.numpy(), classes, gradients.numpy()
    if backend not in ("jax", "torch"):
        raise ValueError(f"grad_cam needs gradients, which the {backend} backend does not "
                         "take; run it with KERAS_BACKEND=tensorflow, jax or torch")
    try:
        rest = keras.Model(layer.output, model.output)
    except ValueError:
        raise ValueError(
            f"grad_cam on {backend}: the model's output is reached around '{layer.name}' too "
            "(a skip connection); pick a layer every path passes (--layer, e.g. the last "
            "convolution's), or run on TensorFlow, which takes any layer") from None
    features = keras.Model(model.input, layer.output)(images, training=False)
    scores = ops.convert_to_numpy(ops.cast(rest(features, training=False), "float32"))
    classes = _classes(scores, class_index)

    def chosen_sum(maps):
        return ops.sum(ops.take_along_axis(ops.cast(rest(maps, training=False), "float32"),
                                           ops.convert_to_tensor(classes[:, None]), axis=1))

    if backend == "jax":
        import jax

        gradients = jax.grad(chosen_sum)(features)
    else:
        features = features.detach().requires_grad_(True)
        chosen_sum(features).backward()
        gradients = features.grad
    return (ops.convert_to_numpy(ops.cast(features, "float32")), scores, classes,
            ops.convert_to_numpy(ops.cast(gradients, "float32")))


def _classes(scores, class_index):
    """Each image's class to explain: its top class, or ``class_index`` (one or one each)."""
    if class_index is None:
        return scores.argmax(axis=-1).astype("int32")
    return np.broadcast_to(np.asarray(class_index, "int32"), scores.shape[:1]).copy()


def coord_attention_layers(model):
    """The model's CoordAttention layers, in order."""
    return [layer for layer in model.layers if isinstance(layer, CoordAttention)]


def default_gate_layer(model):
    """The last CoordAttention layer whose map is at least 1/16 of the input's height.

    (In MobileNetV2 at 224: ``block_12_attention``, 14x14; the deeper 7x7 ones
    are too coarse to see much.)
    """
    layers = coord_attention_layers(model)
    if not layers:
        raise ValueError(f"model '{model.name}' has no CoordAttention layer")
    height = model.input.shape[1]
    large = [layer for layer in layers
             if height is None or (layer.input.shape[1] or 0) * 16 >= height]
    return (large or layers)[-1]


def coord_attention_gates(model, images, layer=None):
    """A CoordAttention layer's gates on ``images``, averaged over channels.

    Args:
        model: a functional model holding the layer.
        images: ``(N, H, W, 3)``, preprocessed as the model expects.
        layer: a `CoordAttention` layer of the model or its name; default
            `default_gate_layer`.

    Returns:
        dict with ``"g_h"`` ``(N, h)`` (one value per row of the layer's
        input), ``"g_w"`` ``(N, w)``, ``"product"`` ``(N, h, w)``: the mean
        over channels of ``g_h * g_w``, the factor the layer applies at each
        position; ``"layer"`` the layer's name. A direction the layer does
        not gate is all ones.
    """
    layer = default_gate_layer(model) if layer is None else _layer(model, layer)
    if not isinstance(layer, CoordAttention):
        raise ValueError(f"'{layer.name}' is a {type(layer).__name__}, not a CoordAttention layer")
    probe = keras.Model(model.input, layer.input)
    inputs = probe(np.asarray(images, "float32"), training=False)
    logits_h, logits_w = layer.gate_logits(inputs, training=False)
    channels_last = layer.data_format == "channels_last"
    height, width = (inputs.shape[1], inputs.shape[2]) if channels_last else (
        inputs.shape[2], inputs.shape[3])
    batch = inputs.shape[0]

    def gate(logits, size):
        if logits is None:
            return np.ones((batch, size, layer.channels), "float32")
        return ops.convert_to_numpy(ops.cast(ops.sigmoid(logits), "float32"))[:, :, 0, :]

    g_h, g_w = gate(logits_h, height), gate(logits_w, width)  # (N, h, C), (N, w, C)
    product = np.einsum("nhc,nwc->nhw", g_h, g_w) / layer.channels
    return {"g_h": g_h.mean(-1), "g_w": g_w.mean(-1), "product": product, "layer": layer.name}


def overlay(image, heat, colormap="jet", opacity=0.45):
    """``image`` (H, W, 3) uint8 with ``heat`` (any size, values in [0, 1]) blended over it."""
    from matplotlib import colormaps

    image = np.asarray(image)
    heat = np.asarray(heat, "float32")
    if heat.shape != image.shape[:2]:
        heat = ops.convert_to_numpy(ops.image.resize(heat[..., None], image.shape[:2],
                                                     interpolation="bilinear"))[..., 0]
    colours = colormaps[colormap](np.clip(heat, 0, 1))[..., :3] * 255
    return np.clip((1 - opacity) * image + opacity * colours, 0, 255).astype("uint8")


# Grad-CAM's and the gates' colour maps; both scales are fixed at [0, 1].
CAM_COLORMAP, GATE_COLORMAP = "jet", "viridis"


def explain_figure(image, cam, gates=None, title=""):
    """A matplotlib figure: the image, its Grad-CAM and (with ``gates``) CA's gates.

    Both maps are drawn on a fixed [0, 1] scale with a colour bar under
    them: Grad-CAM as a share of its image's peak, the gates' product as the
    factor it is (a flat product stays one colour; the title gives its range).

    Args:
        image: ``(H, W, 3)`` uint8, as shown (the model's crop).
        cam: ``(H, W)`` Grad-CAM map in [0, 1].
        gates: one image's entry of `coord_attention_gates` (``g_h (h,)``,
            ``g_w (w,)``, ``product (h, w)``, ``layer``), or None.
        title: a line above the panels.
    """
    from keras_coordatt.plotting import pyplot

    plt = pyplot()
    panels = 3 if gates is not None else 2
    figure, axes = plt.subplots(1, panels, figsize=(3.3 * panels + 0.6, 4.6))
    axes[0].imshow(image)
    axes[0].set_title("image")
    axes[1].imshow(overlay(image, cam, colormap=CAM_COLORMAP))
    axes[1].set_title("Grad-CAM")
    _colour_bar(figure, axes[1], CAM_COLORMAP, "share of the image's peak", -0.12)
    if gates is not None:
        axis = axes[2]
        product = np.asarray(gates["product"])
        axis.imshow(overlay(image, product, colormap=GATE_COLORMAP, opacity=0.55))
        axis.set_title(f"CA gates ({gates['layer']})\ng_h x g_w from {product.min():.3f} to "
                       f"{product.max():.3f}", fontsize=8)
        _colour_bar(figure, axis, GATE_COLORMAP, "g_h x g_w", -0.36)
        # g_h beside the map (one value per row), g_w under it (per column).
        rows = np.arange(len(gates["g_h"]))
        side = axis.inset_axes([1.03, 0.0, 0.18, 1.0])
        side.barh(rows, gates["g_h"], height=0.9, color="tab:green")
        side.set_ylim(len(rows) - 0.5, -0.5)
        side.set_xlim(0, 1)
        side.set_yticks([])
        side.tick_params(labelsize=6)
        side.set_title("g_h", fontsize=8)
        columns = np.arange(len(gates["g_w"]))
        below = axis.inset_axes([0.0, -0.24, 1.0, 0.18])
        below.bar(columns, gates["g_w"], width=0.9, color="tab:green")
        below.set_xlim(-0.5, len(columns) - 0.5)
        below.set_ylim(0, 1)
        below.set_xticks([])
        below.tick_params(labelsize=6)
        below.set_ylabel("g_w", fontsize=8)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.02, right=0.93, top=0.84, bottom=0.27, wspace=0.12)
    return figure


def _colour_bar(figure, axis, colormap, label, below):
    """A horizontal colour bar of ``colormap`` on [0, 1], ``below`` (axes units) under ``axis``."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = axis.inset_axes([0.0, below, 1.0, 0.04])
    figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), colormap), cax=bar,
                    orientation="horizontal")
    bar.tick_params(labelsize=6)
    bar.set_xlabel(label, fontsize=7, labelpad=1)


def read_image(path):
    """An image file as (H, W, 3) uint8 RGB; a ValueError names a file that is not one."""
    import tensorflow as tf

    if not os.path.isfile(path):
        raise ValueError(f"explain: no image file {os.fspath(path)!r}")
    try:
        image = tf.io.decode_image(tf.io.read_file(os.fspath(path)), channels=3,
                                   expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        raise ValueError(f"explain: {os.fspath(path)!r} is not an image TensorFlow can read "
                         f"(JPEG, PNG, BMP or GIF): {error.message.splitlines()[0]}") from None
    return image.numpy()


def model_inputs(model, paths):
    """Image files as the model sees them, and as uint8 pictures of that.

    Each image gets the model's eval preprocessing (resize, center crop to
    the model's input size, its pixel range). Returns ``(inputs, shown)``.
    """
    import tensorflow as tf

    size = model.input.shape[1]
    if size is None:
        raise ValueError("explain: the model takes any input size; give it a fixed one")
    preprocessing = preprocessing_of(model)
    images = [read_image(path) for path in paths]  # every file checked before any work
    inputs = np.stack([preprocessing.for_eval(tf.constant(image), size).numpy()
                       for image in images])
    shown = np.clip(preprocessing.to_unit(inputs) * 255, 0, 255).astype("uint8")
    return inputs, shown


def attention_table(model, paths):
    """The attention layers' gate statistics on image files, as text lines (a table).

    What `keras_coordatt.models.attention_statistics.gate_statistics` gives,
    one line a layer: [] for a model without attention layers.
    """
    if not attention_layers(model):
        return []
    rows = gate_statistics(model, model_inputs(model, paths)[0])
    lines = [f"{'layer':<22} {'type':<15} {'mean':>6} {'std':>6} {'along':>6} {'across':>6} "
             f"{'moved':>6} {'saturated':>9} {'train/inf':>9}",
             f"{'':<22} {'':<15} {'':>6} {'':>6} {'pos.':>6} {'chan.':>6} {'':>6} {'':>9} "
             f"{'gap':>9}"]
    for row in rows:
        lines.append(f"{row['layer']:<22} {row['type']:<15} {row['mean']:6.3f} {row['std']:6.3f} "
                     f"{row['position_std']:6.3f} {row['channel_std']:6.3f} "
                     f"{row['from_start']:6.3f} {100 * row['saturated']:8.1f}% "
                     f"{row['mode_gap']:9.4f}")
    return lines


def explain_images(model, paths, output, layer=None, gate_layer=None, class_index=None,
                   class_names=None):
    """Writes ``<name>_explained.png`` per image into ``output``; returns one row per image.

    Each image gets the model's eval preprocessing (resize, center crop to
    the model's input size, its pixel range); the figure shows the crop.
    Rows: ``{"image", "png", "class", "name", "score"}``: the explained
    class, its name (from ``class_names``, else ``class_<i>``) and its model
    output.
    """
    from keras_coordatt.plotting import pyplot

    inputs, shown = model_inputs(model, paths)
    cams, classes, scores = _grad_cam(model, inputs, layer, class_index)
    gates = None
    if coord_attention_layers(model) and (gate_layer is not False):
        gates = coord_attention_gates(model, inputs, gate_layer)
    os.makedirs(output, exist_ok=True)
    plt = pyplot()
    rows = []
    for index, path in enumerate(paths):
        name = os.path.splitext(os.path.basename(path))[0]
        score = float(scores[index, classes[index]])
        one = None if gates is None else {
            "g_h": gates["g_h"][index], "g_w": gates["g_w"][index],
            "product": gates["product"][index], "layer": gates["layer"]}
        label = (class_names[classes[index]] if class_names is not None
                 else f"class_{classes[index]}")
        figure = explain_figure(shown[index], cams[index], one,
                                f"{os.path.basename(path)}: {label} (class {classes[index]}, "
                                f"output {score:.3g})")
        png = os.path.join(output, f"{name}_explained.png")
        figure.savefig(png, dpi=100)
        plt.close(figure)
        rows.append({"image": os.fspath(path), "png": png, "class": int(classes[index]),
                     "name": label, "score": score})
    return rows


def _layer(model, layer):
    if isinstance(layer, str):
        try:
            return model.get_layer(layer)
        except ValueError:
            names = [candidate.name for candidate in model.layers if _rank(candidate) == 4]
            raise ValueError(
                f"model '{model.name}' has no layer '{layer}'; layers with 4D outputs end with "
                f"{', '.join(names[-5:])}") from None
    return layer


def _rank(layer):
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError):
        return None
