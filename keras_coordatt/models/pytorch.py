"""Convert PyTorch MobileNetV2 checkpoints into keras_coordatt models.

Two checkpoint layouts are known:

- ``"coordatt"``: the official Coordinate Attention release (``mbv2_ca.pth``),
  a flat ``nn.Sequential``: ``features.0`` the stem, ``features.1`` the
  expansion-1 block (``conv.{0,1,3,4}``: depthwise, BN, projection, BN),
  ``features.2``-``features.17`` the other blocks (``conv.0`` expand, ``.1``
  BN, ``.3`` depthwise, ``.4`` BN, ``.6`` CoordAtt with ``conv1``/``bn1``/
  ``conv2``/``conv3``, ``.7`` projection, ``.8`` BN), then ``conv.{0,1}``
  (the 1x1 conv to 1280 and its BN) and ``classifier.1`` (after Dropout 0.1).
- ``"torchvision"``: ``torchvision.models.mobilenet_v2``, whose conv-BN-ReLU6
  units are nested (``features.N.conv.0.0``), with the last 1x1 conv in
  ``features.18`` and ``classifier.1`` (after Dropout 0.2).

Both become `keras_coordatt.models.MobileNetV2` with PyTorch's symmetric
padding and BatchNorm epsilon, so the Keras model computes the PyTorch
model's logits (to float32 round-off).
"""

import collections
import os
import pickle
from collections.abc import Mapping

import keras
import numpy as np

from keras_coordatt.layers import CoordAttention
from keras_coordatt.models.common import blocks
from keras_coordatt.models.common import STEM_CHANNELS
from keras_coordatt.models.common import make_divisible
from keras_coordatt.models.identity import start_attention_as_identity
from keras_coordatt.models.mobilenet_v2 import LAST_CHANNELS
from keras_coordatt.models.mobilenet_v2 import STAGES
from keras_coordatt.models.mobilenet_v2 import MobileNetV2
from keras_coordatt.models.torch_files import UnsupportedCheckpoint
from keras_coordatt.models.torch_files import read_state_dict
from keras_coordatt.preprocessing import imagenet_normalization

# Where each Keras layer's weights live in a checkpoint. `block` maps the
# part of `block_{i}_<part>` to its index inside `features.{i + 1}.conv`;
# `first_block` does the same for the expansion-1 block `expanded_conv_*`.
Layout = collections.namedtuple(
    "Layout", ["stem", "first_block", "block", "head", "attention", "dropout_rate"]
)
LAYOUTS = {
    "coordatt": Layout(
        stem=("features.0.0", "features.0.1"),
        first_block={"depthwise": "0", "depthwise_BN": "1", "project": "3", "project_BN": "4"},
        block={
            "expand": "0",
            "expand_BN": "1",
            "depthwise": "3",
            "depthwise_BN": "4",
            "attention": "6",
            "project": "7",
            "project_BN": "8",
        },
        head=("conv.0", "conv.1"),
        attention="ca",
        dropout_rate=0.1,
    ),
    "torchvision": Layout(
        stem=("features.0.0", "features.0.1"),
        first_block={
            "depthwise": "0.0",
            "depthwise_BN": "0.1",
            "project": "1",
            "project_BN": "2",
        },
        block={
            "expand": "0.0",
            "expand_BN": "0.1",
            "depthwise": "1.0",
            "depthwise_BN": "1.1",
            "project": "2",
            "project_BN": "3",
        },
        head=("features.18.0", "features.18.1"),
        attention=None,
        dropout_rate=0.2,
    ),
}
CLASSIFIER = "classifier.1"
# The first inverted-residual block's depthwise conv (features.0 is the
# stem): a bare Conv2d in the official code, nested in a conv-BN-ReLU6
# unit (Conv2dNormActivation) in torchvision's.
LAYOUT_MARKERS = {
    "coordatt": "features.1.conv.0.weight",
    "torchvision": "features.1.conv.0.0.weight",
}
# Wrappers written by common training scripts around the state dict.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
DATA_PARALLEL_PREFIX = "module."
# Widths tried first when the checkpoint's channels fit several, so that the
# model gets the usual name; then every width from 0.05 to 4 in steps of 0.01.
USUAL_ALPHAS = (1.0, 0.75, 0.5, 0.35, 1.3, 1.4)


def convert(
    checkpoint,
    output=None,
    layout="auto",
    classes=None,
    input_shape=None,
    classifier_activation=None,
    attention="checkpoint",
    identity_init=True,
):
    """Converts a PyTorch MobileNetV2 checkpoint into a Keras model.

    Reference: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile
    Network Design", CVPR 2021 (arXiv:2103.02907), official release
    ``mbv2_ca.pth``; torchvision's ``mobilenet_v2`` ImageNet weights.

    The official Coordinate Attention checkpoint becomes
    ``MobileNetV2(attention="ca", padding="pytorch", bn_epsilon=1e-5,
    bn_momentum=0.9, dropout_rate=0.1)``; a torchvision one the same with
    ``attention=None`` and ``dropout_rate=0.2``. The width (``alpha``) and
    the number of classes are read from the weights' shapes. PyTorch weights
    are transposed to Keras' layouts: convolutions OIHW -> HWIO, depthwise
    (C, 1, kh, kw) -> (kh, kw, C, 1), Linear (out, in) -> (in, out); BN
    ``weight``/``bias``/``running_mean``/``running_var`` become ``gamma``/
    ``beta``/``moving_mean``/``moving_variance``; ``num_batches_tracked``
    holds no weights and is ignored.

    Every Keras weight must find its key and every key must be used, with
    the same shape: otherwise a ValueError names the keys (and both shapes),
    and nothing is loaded.

    Args:
        checkpoint: path of a ``.pth`` file (read with
            ``torch.load(map_location="cpu", weights_only=True)``), or an
            already loaded mapping of names to tensors or arrays. A state
            dict wrapped as ``{"state_dict": ...}`` or ``{"model": ...}``,
            and ``module.`` prefixes (``nn.DataParallel``), are unwrapped.
        output: optional path of a ``.keras`` file to save the model to.
        layout: ``"auto"`` (default: told from the keys), ``"coordatt"`` or
            ``"torchvision"``.
        classes: None (default) keeps the checkpoint's classifier; another
            number builds a new, randomly initialised ``predictions`` layer
            of that size (for fine-tuning) and leaves ``classifier.1`` unused.
        input_shape: the model's ``(height, width, 3)``; defaults to
            ``(224, 224, 3)``. ``(None, None, 3)`` accepts any size.
        classifier_activation: the ``predictions`` activation; None
            (default) gives logits, as the PyTorch model does.
        attention: ``"checkpoint"`` (default): the checkpoint's own (CA for
            the official release, none for torchvision's). A torchvision
            checkpoint also takes any attention `keras_coordatt.get_attention`
            knows (``"ca"``, ``"se"``, ``"cbam"``, ...): the ImageNet network
            with new attention layers ``block_{i}_attention``, placed as in
            `MobileNetV2`, every other weight from the checkpoint.
        identity_init: with a new ``attention``, start it as the identity
            (`start_attention_as_identity`; default True): the converted
            model then gives the checkpoint's logits, and fine-tuning starts
            from its accuracy.

    Returns:
        The `keras.Model`, channels-last (NHWC) input. Its ``preprocessing``
        is PyTorch's ImageNet normalisation (RGB / 255, minus
        `IMAGENET_MEAN`, divided by `IMAGENET_STD`, per channel), which the
        weights were trained with; it is saved with the model.

    Example:

    >>> from keras_coordatt.models import convert
    >>> model = convert("mbv2_ca.pth", "mbv2_ca.keras")  # doctest: +SKIP
    >>> model.get_layer("block_1_attention").__class__.__name__  # doctest: +SKIP
    'CoordAttention'
    """
    if output is not None and not os.fspath(output).endswith(".keras"):
        raise ValueError(
            f"convert: output must be a .keras file, got {os.fspath(output)!r}."
        )
    state = load_state_dict(checkpoint)
    layout = detect_layout(state) if layout == "auto" else layout
    if layout not in LAYOUTS:
        raise ValueError(
            f"convert: unknown layout={layout!r}. Expected 'auto', "
            f"{', '.join(repr(name) for name in LAYOUTS)}."
        )
    spec = LAYOUTS[layout]
    new_attention = _new_attention(spec, layout, attention)
    prefixes = module_prefixes(spec)
    checkpoint_classes = _require(state, f"{CLASSIFIER}.weight").shape[0]
    keep_classifier = classes is None or classes == checkpoint_classes
    model = MobileNetV2(
        input_shape=input_shape,
        alpha=infer_alpha(state, prefixes),
        classes=checkpoint_classes if classes is None else classes,
        classifier_activation=classifier_activation,
        attention=spec.attention if new_attention is None else new_attention,
        padding="pytorch",
        # PyTorch's BatchNorm defaults: eps 1e-5, momentum 0.1 (0.9 in Keras'
        # convention), so that fine-tuning continues as it was trained.
        bn_epsilon=1e-5,
        bn_momentum=0.9,
        dropout_rate=spec.dropout_rate,
    )
    if not keep_classifier:
        prefixes["predictions"] = None
        state = {k: v for k, v in state.items() if not k.startswith(f"{CLASSIFIER}.")}
    added = []
    if new_attention is not None:
        added = [layer for layer in model.layers if layer.name.endswith("_attention")]
        prefixes.update({layer.name: None for layer in added})
    load_into(model, state, prefixes)
    if added and identity_init:
        start_attention_as_identity(model, added)
    # the input the weights were trained on; saved with the model, so predict, explain,
    # the exports and a preset apply it
    model.backbone.preprocessing = imagenet_normalization()
    if output is not None:
        model.save(output)
    return model


def _new_attention(spec, layout, attention):
    """The attention to insert, or None to keep the checkpoint's own."""
    if isinstance(attention, str) and attention.lower() in ("checkpoint", spec.attention or ""):
        return None
    if spec.attention is not None:
        raise ValueError(
            f"convert: a {layout!r} checkpoint has its own attention ({spec.attention}), "
            f"trained with the network; attention={attention!r} would drop it. Pass "
            "attention='checkpoint', or start from a checkpoint without attention "
            "(torchvision's)."
        )
    if attention is None or (isinstance(attention, str) and attention.lower() == "none"):
        return None
    return attention


def load_state_dict(checkpoint):
    """Returns ``{key: numpy array}`` from a ``.pth`` path or a loaded mapping.

    Unwraps ``{"state_dict": ...}``-style wrappers and ``module.`` prefixes
    and drops ``num_batches_tracked`` counters.
    """
    if isinstance(checkpoint, Mapping):
        state = checkpoint
    else:
        path = os.fspath(checkpoint)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"convert: no checkpoint file {path!r}")
        if os.path.getsize(path) == 0:
            raise ValueError(f"convert: {path!r} is empty (0 bytes), not a PyTorch checkpoint")
        state = _read_without_torch(path)
    if state is None:
        torch = _torch()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - whatever torch.load says, the file is unusable
            if isinstance(error, pickle.UnpicklingError) and "Weights only" in str(error):
                # weights_only=True refuses pickled objects (a whole nn.Module,
                # an optimizer with custom classes): never run their code.
                raise ValueError(
                    f"convert: {path!r} is not a plain state dict of "
                    "tensors (torch.load(weights_only=True) refused it); save "
                    "model.state_dict() instead."
                ) from error
            # A text file, a truncated download, another format: torch.load's
            # own message (a zip or pickle detail) does not say that.
            detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ValueError(
                f"convert: {path!r} is not a readable PyTorch checkpoint (torch.save's "
                f"zip or pickle file; torch.load says {type(error).__name__}: {detail}). "
                "Is the download complete?"
            ) from error
    if not isinstance(state, Mapping):
        raise ValueError(
            f"convert: {path!r} holds a {type(state).__name__}, "
            "not a state dict; save model.state_dict() instead of the model."
        )
    for wrapper in WRAPPER_KEYS:
        if isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
            break
    if state and all(key.startswith(DATA_PARALLEL_PREFIX) for key in state):
        state = {key[len(DATA_PARALLEL_PREFIX):]: value for key, value in state.items()}
    return {
        key: _to_numpy(value)
        for key, value in state.items()
        if not key.endswith("num_batches_tracked")
    }


def detect_layout(state):
    """Tells ``"coordatt"`` from ``"torchvision"`` by the first block's keys."""
    for name, marker in LAYOUT_MARKERS.items():
        if marker in state:
            return name
    raise ValueError(
        "convert: cannot tell the checkpoint's layout: it has neither "
        + " nor ".join(f"{marker!r} ({name})" for name, marker in LAYOUT_MARKERS.items())
        + f". Its first keys: {list(state)[:5]}."
    )


def module_prefixes(spec):
    """``{Keras layer name: PyTorch module prefix}`` for a `Layout`.

    A prefix of None (set by the caller) keeps that layer's initialisation.
    """
    prefixes = {
        "Conv1": spec.stem[0],
        "bn_Conv1": spec.stem[1],
        "Conv_1": spec.head[0],
        "Conv_1_bn": spec.head[1],
        "predictions": CLASSIFIER,
    }
    for part, index in spec.first_block.items():
        prefixes[f"expanded_conv_{part}"] = f"features.1.conv.{index}"
    for block_id in range(1, _block_count()):
        for part, index in spec.block.items():
            prefixes[f"block_{block_id}_{part}"] = f"features.{block_id + 1}.conv.{index}"
    return prefixes


def infer_alpha(state, prefixes):
    """The width multiplier whose channels are the checkpoint's.

    MobileNetV2's widths are ``make_divisible(c * alpha)`` (the last conv
    stays 1280 up to alpha 1), the rule the official code, torchvision and
    the Keras builder share, so the output channels of the stem, every
    projection and the last conv pin alpha down up to an equivalent value.
    """
    block_names = ["expanded_conv_project"] + [
        f"block_{block_id}_project" for block_id in range(1, _block_count())
    ]
    names = ["Conv1"] + block_names + ["Conv_1"]
    found = [_require(state, f"{prefixes[name]}.weight").shape[0] for name in names]

    def channels(alpha):
        last = make_divisible(LAST_CHANNELS * alpha) if alpha > 1 else LAST_CHANNELS
        return (
            [make_divisible(STEM_CHANNELS * alpha)]
            + [make_divisible(stage.channels * alpha) for _, _, stage, _ in blocks(STAGES)]
            + [last]
        )

    for alpha in USUAL_ALPHAS + tuple(np.round(np.arange(0.05, 4.0, 0.01), 2)):
        if channels(float(alpha)) == found:
            return float(alpha)
    raise ValueError(
        "convert: no MobileNetV2 width multiplier gives the checkpoint's "
        f"channels {dict(zip(names, found, strict=True))} (stem, blocks, last conv)."
    )


def load_into(model, state, prefixes):
    """Assigns ``state``'s arrays to ``model``'s weights, all or nothing.

    Raises:
        ValueError: naming the missing keys, the unused keys, or a key whose
            shape does not fit its Keras weight.
    """
    pairs = []
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in prefixes:
            raise ValueError(
                f"convert: the Keras layer '{layer.name}' has no counterpart in "
                "the checkpoint layout."
            )
        if prefixes[layer.name] is not None:
            pairs.extend(_weight_pairs(layer, prefixes[layer.name]))

    used = {key for _, key, _ in pairs}
    missing = [key for key in used if key not in state]
    if missing:
        raise ValueError(
            f"convert: the checkpoint lacks {len(missing)} key(s) the model needs: "
            f"{sorted(missing)[:10]}."
        )
    unexpected = [key for key in state if key not in used]
    if unexpected:
        raise ValueError(
            f"convert: the checkpoint has {len(unexpected)} key(s) the model does "
            f"not use: {unexpected[:10]}."
        )
    values = []
    for variable, key, to_keras in pairs:
        value = to_keras(state[key])
        if value.shape != tuple(variable.shape):
            raise ValueError(
                f"convert: checkpoint key {key!r} has shape {state[key].shape}, "
                f"{value.shape} in Keras' layout, but the Keras weight "
                f"{variable.path!r} has shape {tuple(variable.shape)}."
            )
        values.append(value)
    for (variable, _, _), value in zip(pairs, values, strict=True):
        variable.assign(value)


def _weight_pairs(layer, prefix):
    """``(Keras variable, checkpoint key, to-Keras transform)`` for one layer."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        # PyTorch: (channels * multiplier, 1, kh, kw) with groups=channels;
        # Keras: (kh, kw, channels, multiplier). The multiplier is 1 here.
        return [(layer.kernel, f"{prefix}.weight", lambda w: w.transpose(2, 3, 0, 1))]
    if isinstance(layer, keras.layers.Conv2D):
        # PyTorch (out, in, kh, kw) -> Keras (kh, kw, in, out).
        pairs = [(layer.kernel, f"{prefix}.weight", lambda w: w.transpose(2, 3, 1, 0))]
        if layer.use_bias:
            pairs.append((layer.bias, f"{prefix}.bias", _same))
        return pairs
    if isinstance(layer, keras.layers.BatchNormalization):
        return [
            (layer.gamma, f"{prefix}.weight", _same),
            (layer.beta, f"{prefix}.bias", _same),
            (layer.moving_mean, f"{prefix}.running_mean", _same),
            (layer.moving_variance, f"{prefix}.running_var", _same),
        ]
    if isinstance(layer, keras.layers.Dense):
        # PyTorch Linear (out, in) -> Keras Dense (in, out).
        return [
            (layer.kernel, f"{prefix}.weight", lambda w: w.T),
            (layer.bias, f"{prefix}.bias", _same),
        ]
    if isinstance(layer, CoordAttention):
        # The official CoordAtt's conv1/bn1/conv2/conv3 are the paper's
        # F1, BN, F_h and F_w (see CoordAttention's docstring).
        if layer.bn is None:
            raise ValueError(
                f"convert: '{layer.name}' normalises with normalization="
                f"{layer.normalization!r}; the official CoordAtt has a BatchNorm (bn1) there, "
                "so only normalization='batch' layers have official weights.")
        pairs = []
        for keras_name, torch_name in (
            ("conv_reduce", "conv1"),
            ("bn", "bn1"),
            ("conv_h", "conv2"),
            ("conv_w", "conv3"),
        ):
            pairs.extend(_weight_pairs(getattr(layer, keras_name), f"{prefix}.{torch_name}"))
        return pairs
    raise ValueError(
        f"convert: no PyTorch counterpart for the Keras layer '{layer.name}' of "
        f"type {type(layer).__name__}."
    )


def _block_count():
    return sum(1 for _ in blocks(STAGES))


def _same(value):
    return value


def _require(state, key):
    if key not in state:
        raise ValueError(f"convert: the checkpoint lacks the key {key!r}.")
    return state[key]


def _to_numpy(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype="float32")


def _read_without_torch(path):
    """The state dict read by `torch_files` (no PyTorch needed), or None to ask torch.

    torch.load, where installed, reads what this reader refuses (and words
    the refusal); without PyTorch the reader's reason is the error.
    """
    try:
        return read_state_dict(path)
    except UnsupportedCheckpoint as error:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ValueError(
                f"convert: {path!r} is not a readable PyTorch state dict ({error}); "
                "save model.state_dict() with torch.save. Is the download complete?"
            ) from error
        return None


def _torch():
    try:
        import torch
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "convert: this .pth checkpoint needs PyTorch to read: "
            "pip install 'keras-coordatt[torch]' (or pass a loaded state dict)."
        ) from error
    return torch
