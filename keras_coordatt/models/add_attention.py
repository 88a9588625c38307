"""Insert attention into a pretrained keras.applications network.

The paper puts Coordinate Attention inside every inverted-residual block:
after the depthwise conv -> BN -> ReLU6 of MobileNetV2 (not in the first,
expansion-1 block) and in place of the Squeeze-and-Excitation module of
EfficientNet (Table 5). `add_attention` does that to an existing model, so
ImageNet weights from keras.applications (or any weights file) become the
starting point of a fine-tuning run.
"""

import re

import keras

from keras_coordatt.layers import get_attention
from keras_coordatt.layers.base import AttentionLayer
from keras_coordatt.models.backbone import Backbone
from keras_coordatt.models.classifier import ImageClassifier
from keras_coordatt.models.classifier import rebuild
from keras_coordatt.models.identity import all_layers
from keras_coordatt.models.identity import start_attention_as_identity
from keras_coordatt.models.weights import copy_weights_by_name

SUPPORTED_FAMILIES = (
    "keras.applications MobileNetV2 (any alpha), EfficientNet B0-B7 and "
    "EfficientNetV2; also keras_coordatt's MobileNetV2 and MobileNeXt with "
    "attention=None and EfficientNetB0 with its own SE"
)

# MobileNetV2: the attention goes on the input of every `block_{i}_project`,
# which is the block's depthwise -> BN -> ReLU6 output. The expansion-1 block
# is named `expanded_conv_*` and is left alone, as in the paper.
MOBILENET_V2_PROJECT = re.compile(r"^block_(\d+)_project$")
# EfficientNet: `{block}se_squeeze -> se_reshape -> se_reduce -> se_expand`
# computes the SE gate and `{block}se_excite` multiplies it onto the
# activated depthwise output; the attention replaces that whole sub-graph.
EFFICIENTNET_SE_EXCITE = re.compile(r"^(block\w+_)se_excite$")


def add_attention(model, attention="ca", attention_kwargs=None, identity_init=True):
    """Returns a copy of ``model`` with attention in every inverted-residual block.

    Reference: Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile
    Network Design", CVPR 2021 (arXiv:2103.02907), Section 4 and Table 5.

    - MobileNetV2: a new layer ``block_{i}_attention`` between
      ``block_{i}_depthwise_relu`` and ``block_{i}_project`` for every block
      with an expansion layer (the first block, ``expanded_conv``, has none
      and gets no attention, as in the paper). The names match
      ``keras_coordatt.models.MobileNetV2(attention=...)``.
    - EfficientNet / EfficientNetV2: every Squeeze-and-Excitation sub-graph
      (``{block}se_squeeze`` ... ``{block}se_excite``) is replaced by a layer
      ``{block}attention`` applied to the activated depthwise output
      (``{block}activation``). The SE weights are dropped; EfficientNetV2's
      fused blocks have no SE and stay as they are.

    Every other layer keeps its name, configuration, trainable flag and
    weights (copied by layer name). A model of this package (a `Backbone` or
    an `ImageClassifier`) is rebuilt from its own configuration with the
    attention set, so the result is of the same class, with its pyramid and
    preprocessing. With ``identity_init`` (the default) the new layers start
    as the identity (`start_attention_as_identity`): a MobileNetV2 gives the
    same outputs as before, bit for bit, and fine-tuning starts from its
    accuracy; an EfficientNet loses its SE blocks, which no initialisation
    of the new layers can stand in for. The original model is not modified
    and shares no weights with the result.

    Args:
        model: a functional `keras.Model` of a supported family, as built by
            ``keras.applications.MobileNetV2``, ``EfficientNetB0``-``B7`` or
            ``EfficientNetV2*`` (any weights, input size, ``include_top``).
        attention: what to insert, anything `keras_coordatt.get_attention`
            accepts except None: ``"ca"`` (default), ``"ca_h"``, ``"ca_w"``,
            ``"se"``, ``"cbam"``, a config dict, a Layer class or a callable.
        attention_kwargs: dict of constructor arguments for every attention
            layer, for example ``{"reduction": 16}``.
        identity_init: start the new layers as the identity (default True);
            False leaves them at their own random initialisation.

    Returns:
        A new model with the same inputs and outputs: of the same class for
        this package's models, a functional `keras.Model` otherwise.

    Raises:
        ValueError: the model is not of a supported family, already contains
            attention layers, or ``attention`` is None; with ``identity_init``,
            an attention that is not one of this package's layers (a callable
            or another Layer class) cannot start as the identity.

    Example:

    >>> import keras
    >>> from keras_coordatt.models import add_attention
    >>> base = keras.applications.MobileNetV2(
    ...     input_shape=(96, 96, 3), alpha=0.35, weights=None)
    >>> model = add_attention(base, "ca")
    >>> model.get_layer("block_1_attention").__class__.__name__
    'CoordAttention'
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "_run_through_graph"):
        raise ValueError(
            f"add_attention: expected a functional keras.Model, got "
            f"{type(model).__name__}. Supported: {SUPPORTED_FAMILIES}. For a "
            "model that wraps one of these as a sub-model, pass the sub-model."
        )
    _check_no_attention(model)
    if attention is None or (isinstance(attention, str) and attention.lower() == "none"):
        raise ValueError(
            "add_attention: attention=None adds nothing; pass 'ca', 'se', "
            "'cbam', a config dict, a Layer class or a callable."
        )
    if isinstance(model, (Backbone, ImageClassifier)):
        new_model = rebuild(model, attention=attention, attention_kwargs=attention_kwargs)
    else:
        new_model = _rewritten(model, attention, dict(attention_kwargs or {}))
    _copy_weights(model, new_model)
    if identity_init:
        old_names = {layer.name for layer in all_layers(model)}
        added = [layer for layer in all_layers(new_model)
                 if layer.name not in old_names
                 and not isinstance(layer, (keras.Model, keras.layers.InputLayer))]
        foreign = [layer for layer in added if not isinstance(layer, AttentionLayer)]
        if foreign:
            raise ValueError(
                f"add_attention: '{foreign[0].name}' ({type(foreign[0]).__name__}) is not one "
                "of keras_coordatt's attention layers, so it cannot start as the identity; "
                "pass identity_init=False to keep its own initialisation."
            )
        start_attention_as_identity(new_model, added)
    return new_model


def _rewritten(model, attention, attention_kwargs):
    """A copy of a keras.applications graph with attention layers inserted."""
    names = {layer.name for layer in model.layers}

    def make_attention(name):
        return get_attention(attention, name=name, **attention_kwargs)

    if any(MOBILENET_V2_PROJECT.match(name) for name in names):

        def call_function(layer, *args, **kwargs):
            match = MOBILENET_V2_PROJECT.match(layer.name)
            if match:
                gate = make_attention(f"block_{match.group(1)}_attention")
                return layer(gate(args[0]), *args[1:], **kwargs)
            return layer(*args, **kwargs)

    elif "stem_conv" in names and any(EFFICIENTNET_SE_EXCITE.match(n) for n in names):

        def call_function(layer, *args, **kwargs):
            match = EFFICIENTNET_SE_EXCITE.match(layer.name)
            if match:
                # The SE branch computed up to here is left dangling: the
                # functional model keeps only what leads to its outputs, so
                # se_squeeze ... se_expand disappear with their weights.
                block = match.group(1)
                features = [
                    tensor
                    for tensor in args[0]
                    if not _producer(tensor).endswith("se_expand")
                ]
                return make_attention(f"{block}attention")(features[0])
            return layer(*args, **kwargs)

    else:
        raise ValueError(
            f"add_attention: model '{model.name}' is not of a supported family. "
            f"Supported: {SUPPORTED_FAMILIES}, recognised by their layer names "
            "(block_{i}_project for MobileNetV2; stem_conv and "
            "block{n}{x}_se_excite for EfficientNet)."
        )

    # clone_model with a call_function is Keras' public way to rewrite a
    # functional graph: it walks the nodes in topological order, handles
    # multi-input layers (Add, Multiply) and keyword arguments, and builds
    # fresh layers from each layer's config, so the result shares no
    # variables with `model` (re-calling the original layers would tie the
    # two models' weights together, and walking `_inbound_nodes` by hand
    # would duplicate that logic on private API). Weights are then copied by
    # layer name, which also checks that every kept layer kept its shapes.
    # Inputs keep their names (clone_model would name them after the
    # symbolic tensors, "keras_tensor").
    inputs = keras.tree.map_structure(
        lambda x: keras.Input(batch_shape=x.shape, dtype=x.dtype, name=_producer(x)),
        model.input,
    )
    return keras.models.clone_model(model, input_tensors=inputs, call_function=call_function)


def _producer(tensor):
    """Name of the layer that produced a symbolic tensor."""
    return tensor._keras_history.operation.name


def _check_no_attention(model):
    attended = [
        layer.name
        for layer in model.layers
        if isinstance(layer, AttentionLayer) or layer.name.endswith("_attention")
    ]
    if attended:
        shown = ", ".join(attended[:3]) + (", ..." if len(attended) > 3 else "")
        raise ValueError(
            f"add_attention: model '{model.name}' already has attention layers "
            f"({shown}); start from the model without attention."
        )


def _copy_weights(source, target):
    """Copies every weight of ``source``'s layers into ``target``'s same-named layers."""
    _, skipped = copy_weights_by_name(
        {layer.name: layer.get_weights() for layer in source.layers}, target)
    if skipped:
        raise ValueError(
            f"add_attention: layers {skipped} have other weight shapes in the copy than in "
            "the original model."
        )
