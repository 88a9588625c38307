"""``weights="imagenet"``: keras.applications' ImageNet files, loaded by layer name.

The files are keras.applications' own (MobileNetV2 and EfficientNetB0, the
same graphs and layer names as ours), downloaded once into Keras' cache
(``$KERAS_HOME/models``, by default ``~/.keras/models``) and read by layer
name, so a network with attention keeps every ImageNet weight and its new
attention layers start as the identity (`start_attention_as_identity`).
Offline, the download fails within seconds with the file's address and the
path to put it at.
"""

import os
import re
import socket
from urllib.parse import urlparse

from keras_coordatt.models.identity import attention_layers
from keras_coordatt.models.identity import start_new_attention_as_identity
from keras_coordatt.models.weights import copy_weights_by_name
from keras_coordatt.models.weights import layer_weights_of

MOBILENET_V2_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
EFFICIENTNET_URL = "https://storage.googleapis.com/keras-applications/"
MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)
# Seconds to wait for the download server to answer before calling it offline.
CONNECT_TIMEOUT = 5.0


def mobilenet_v2_file(alpha, rows, include_top):
    """keras.applications' MobileNetV2 ImageNet file: ``(name, url)``."""
    if float(alpha) not in MOBILENET_V2_ALPHAS:
        raise ValueError(
            f"MobileNetV2: weights='imagenet' exists for alpha in {MOBILENET_V2_ALPHAS}, "
            f"got alpha={alpha}")
    rows = rows if rows in MOBILENET_V2_SIZES else 224  # the convolutions fit any size
    name = (f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}"
            f"{'' if include_top else '_no_top'}.h5")
    return name, MOBILENET_V2_URL + name


def efficientnet_b0_file(include_top):
    """keras.applications' EfficientNetB0 ImageNet file: ``(name, url)``."""
    name = "efficientnetb0.h5" if include_top else "efficientnetb0_notop.h5"
    return name, EFFICIENTNET_URL + name


def cache_path(name):
    """Where Keras keeps a downloaded model file (``$KERAS_HOME/models/NAME``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models", name)


def fetch(name, url, builder):
    """The cached file, downloaded first if needed; a ValueError says what to do offline."""
    path = cache_path(name)
    if os.path.isfile(path):
        return path
    host = urlparse(url).hostname
    advice = (f"download {url} on a machine that can and put it at {path} (or pass "
              f"weights='/path/to/{name}')")
    try:
        socket.create_connection((host, 443), timeout=CONNECT_TIMEOUT).close()
    except OSError as error:
        raise ValueError(f"{builder}: weights='imagenet' cannot reach {host} ({error}); "
                         f"{advice}") from None
    import keras

    try:
        return keras.utils.get_file(name, url, cache_dir=os.path.dirname(os.path.dirname(path)),
                                    cache_subdir="models")
    except Exception as error:  # network errors of several kinds, from urllib
        raise ValueError(f"{builder}: downloading {url} failed ({error}); {advice}") from None


def load_imagenet(builder, model, name, url, classes, include_top):
    """Loads the ImageNet file into ``model`` by layer name; new attention starts as the identity."""
    if include_top and classes != 1000:
        raise ValueError(
            f"{builder}: weights='imagenet' with include_top=True needs classes=1000 (the "
            f"ImageNet classifier), got classes={classes}; for another class count use "
            "include_top=False and a new head, or the trainer's init_weights")
    path = fetch(name, url, builder)
    layer_weights = layer_weights_of(path, model)
    # keras.applications leaves EfficientNet's Normalization layer's name to
    # Keras' counter (normalization, normalization_1, ...): match it by kind.
    counted = [key for key in layer_weights if re.fullmatch(r"normalization(_\d+)?", key)]
    if "normalization" not in layer_weights and len(counted) == 1:
        layer_weights["normalization"] = layer_weights.pop(counted[0])
    copied, skipped = copy_weights_by_name(layer_weights, model)
    attention = attention_layers(model)
    missing = [layer.name for layer in model.layers
               if layer.weights and layer.name not in copied and layer not in attention]
    if missing or skipped:
        raise ValueError(
            f"{builder}: {path} does not fit this network: no ImageNet weights for "
            f"{(missing + skipped)[:5]}; is it keras.applications' file for the same width?")
    start_new_attention_as_identity(model, copied)
    return path
