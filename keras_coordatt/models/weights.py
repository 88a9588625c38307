"""Weights copied by layer name, so a network with attention inserted keeps its backbone's.

Keras' own ``load_weights`` matches layers by position in legacy ``.h5``
files (keras.applications' ImageNet files) and by path in ``.weights.h5``
files; both break once attention layers are inserted or the head changes.
Matching by layer name (and shape) does not.
"""

import json
import os
import zipfile

import numpy as np

from keras_coordatt.preprocessing import Preprocessing


def layer_weights_of(path, like):
    """``{layer name: [arrays]}`` of a weights file or saved model.

    Args:
        path: a ``.keras`` model, a Keras 3 ``.weights.h5`` file of the same
            architecture as ``like``, or a legacy ``.h5`` weights file such as
            keras.applications' ImageNet MobileNetV2 files.
        like: the model the weights are for; a ``.weights.h5`` file is read
            through a clone of it (that format has no layer names of its own).
    """
    import keras

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weights file {path!r}")
    if path.endswith(".keras"):
        source = keras.saving.load_model(path, compile=False)
        return {layer.name: layer.get_weights() for layer in source.layers}
    if path.endswith(".weights.h5"):
        source = keras.models.clone_model(like)
        source.load_weights(path, skip_mismatch=True)
        return {layer.name: layer.get_weights() for layer in source.layers}
    if path.endswith((".h5", ".hdf5")):
        layers = legacy_h5_layers(path)
        if layers is None:
            raise ValueError(f"{path!r} is not a Keras weights file (no layer_names)")
        return layers
    raise ValueError(f"{path!r} is neither a .keras model nor a .h5 weights file")


def saved_preprocessing(path):
    """The `Preprocessing` a ``.keras`` file's network was saved with when it is not its
    class's default (weights converted from PyTorch, another eval crop); else None."""
    found = _first_value(_saved_config(path), "preprocessing")
    return Preprocessing(**found) if isinstance(found, dict) else None


def _saved_config(path):
    """The model config inside a ``.keras`` file; {} for any other file."""
    path = os.fspath(path)
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        return {}
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            return {}
        return json.loads(archive.read("config.json"))


def saved_architecture(path):
    """``{"padding", "bn_epsilon"}`` of the backbone a ``.keras`` file was saved with; {} for
    other files (a ``.h5`` file records no architecture).

    Weights hold only for the network they were trained in: torchvision's
    MobileNetV2, converted, pads like PyTorch and normalises with epsilon 1e-5,
    where a Keras-built network pads "same" and uses 1e-3. A network built to
    take a file's weights should be built with these.
    """
    backbone = _first_dict_with(_saved_config(path), "bn_epsilon")
    if backbone is None:
        return {}
    return {key: backbone[key] for key in ("padding", "bn_epsilon") if key in backbone}


def _first_dict_with(tree, key, skip_none=False):
    """The first dict (depth first) in nested dicts and lists that has ``key`` (with
    ``skip_none``: not None there), or None."""
    if isinstance(tree, dict):
        if key in tree and not (skip_none and tree[key] is None):
            return tree
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            found = _first_dict_with(item, key, skip_none)
            if found is not None:
                return found
    return None


def _first_value(tree, key):
    """The value of the first ``key`` met in nested dicts and lists (depth first), or None."""
    found = _first_dict_with(tree, key, skip_none=True)
    return None if found is None else found[key]


def legacy_h5_layers(path):
    """``{layer name: weights}`` of a legacy Keras ``.h5`` file, or None if it is not one.

    keras.applications ships its ImageNet weights in this format (one group
    per layer, listed in the attribute ``layer_names``).
    """
    import h5py

    def text(value):
        return value.decode("utf8") if isinstance(value, bytes) else str(value)

    with h5py.File(path, "r") as f:
        group = f
        if "layer_names" not in group.attrs and "model_weights" in group:
            group = group["model_weights"]
        if "layer_names" not in group.attrs:
            return None
        layers = {}
        for name in map(text, group.attrs["layer_names"]):
            names = [text(w) for w in group[name].attrs.get("weight_names", [])]
            layers[name] = [np.asarray(group[name][w]) for w in names]
        return layers


def copy_weights_by_name(layer_weights, model):
    """Sets every layer of ``model`` whose name and weight shapes match ``layer_weights``.

    Args:
        layer_weights: ``{layer name: [arrays]}``.
        model: the `keras.Model` to set.

    Returns:
        ``(copied, skipped)``: the names of the layers set, and of those whose
        name matched but whose shapes differ (left as they were).
    """
    copied, skipped = [], []
    for layer in model.layers:
        weights = layer_weights.get(layer.name)
        if weights is None or not layer.weights:
            continue
        if [tuple(np.shape(w)) for w in weights] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(weights)
            copied.append(layer.name)
        else:
            skipped.append(layer.name)
    return copied, skipped


def load_weights_by_name(model, path):
    """Copies every weight of ``path`` whose layer name and shape match into ``model``.

    A network with attention layers inserted still gets every backbone
    layer, and a classifier with another class count keeps its new head.

    Args:
        model: the `keras.Model` to load into.
        path: see `layer_weights_of`.

    Returns:
        ``(copied, skipped)`` layer names, as `copy_weights_by_name`.

    Raises:
        ValueError: no layer matched at all.
    """
    copied, skipped = copy_weights_by_name(layer_weights_of(path, model), model)
    if not copied:
        raise ValueError(f"no layer of {os.fspath(path)!r} matches the model by name and shape")
    return copied, skipped


def save_layer_weights(path, layer_weights):
    """Writes ``{layer name: [arrays]}`` in the layout `legacy_h5_layers` reads.

    One HDF5 group per layer, its arrays as datasets ``0``, ``1``, ... listed
    in the group's ``weight_names``; the file's ``layer_names`` lists the
    groups. A preset's ``task.weights.h5`` (a detector's or segmenter's
    layers beyond its backbone) is such a file.
    """
    import h5py

    with h5py.File(os.fspath(path), "w") as f:
        f.attrs["layer_names"] = [name.encode("utf8") for name in layer_weights]
        for name, arrays in layer_weights.items():
            group = f.create_group(name)
            group.attrs["weight_names"] = [str(i).encode("utf8") for i in range(len(arrays))]
            for i, array in enumerate(arrays):
                group.create_dataset(str(i), data=np.asarray(array))
