"""ELPV: 2,624 electroluminescence images of solar cells in four defect classes.

Buerhop-Lutz et al., *A Benchmark for Visual Identification of Defective Solar
Cells in Electroluminescence Imagery*, EU PVSEC 2018; Deitsch et al.,
*Automatic classification of defective photovoltaic module cells in
electroluminescence images*, Solar Energy 185, 2019. The data comes with the
PyPI package ``elpv-dataset`` (https://github.com/zae-bayern/elpv-dataset) under
the licence CC BY-NC-SA 4.0: non-commercial use, attribution, derived data
shared alike.

Every image is a 300x300 8-bit greyscale cell cut from one of 44 modules,
annotated with a defect probability in {0, 1/3, 2/3, 1} and the type of its
module (mono- or polycrystalline). The label is ``round(3 * probability)``:

    0 functional (0%), 1 possibly defective (33%), 2 likely defective (67%),
    3 defective (100%)

The split is fixed: 75% "train" and 25% "test", stratified by (label, module
type), drawn with ``SPLIT_SEED`` and never the run's seed, so every run and
every model is tested on the same 656 cells. Deitsch et al. also trained on
75% (1,968 cells) and tested on 25%; their split itself is not published.

    class                     train  test    all
    functional (0%)           1,131   377  1,508
    possibly defective (33%)    221    74    295
    likely defective (67%)       79    27    106
    defective (100%)            537   178    715
    all                       1,968   656  2,624
    (monocrystalline            806   268  1,074)
    (polycrystalline          1,162   388  1,550)

Decoding the 2,624 PNGs takes a few seconds, so the decoded cells, shrunk to
the pipeline's resize size, are kept in ``$XDG_CACHE_HOME/keras_coordatt``
(default ``~/.cache/keras_coordatt``), one ``.npz`` per size.
"""

import importlib.metadata
import os
import tempfile

import numpy as np
import tensorflow as tf

from keras_coordatt.data.classification.source import Source
from keras_coordatt.data.classification.source import Split
from keras_coordatt.data.core.splits import limited
from keras_coordatt.data.core.splits import stratified_split
from keras_coordatt.data.core.splits import unknown_split_error
from keras_coordatt.preprocessing import CROP_FRACTION
from keras_coordatt.preprocessing import resize_size
from keras_coordatt.preprocessing import shrink_to

CLASS_NAMES = [
    "functional (0%)",
    "possibly defective (33%)",
    "likely defective (67%)",
    "defective (100%)",
]
LICENCE = "CC BY-NC-SA 4.0"
NATIVE_SIZE = 300
TEST_FRACTION = 0.25
SPLIT_SEED = 2019


def load_elpv(image_size, crop_fraction=CROP_FRACTION):
    """The ELPV source, its cells stored at the eval resize size of ``image_size``.

    (``round(image_size / crop_fraction)``: the eval preprocessing then gives
    the same input from a stored cell as from the original 300x300 one.)
    """
    stored_size = min(NATIVE_SIZE, resize_size(image_size, crop_fraction))
    images, labels, types, files, path = _decoded_cells(stored_size)
    parts = dict(zip(("train", "test"), split_indices(labels, types)))

    def read_split(name, limit, shuffle_files=False):
        if name not in parts:
            raise unknown_split_error("elpv", name, list(parts))
        index = parts[name][: limited(len(parts[name]), limit)]
        return Split(
            name=name,
            dataset=tf.data.Dataset.from_tensor_slices((images[index, :, :, None], labels[index])),
            num_examples=len(index),
            labels=labels[index],
            files=files[index],
            in_memory=True,
        )

    return Source(
        name="elpv",
        class_names=list(CLASS_NAMES),
        default_eval_split="test",
        read_split=read_split,
        notes=(
            f"ELPV solar cells (Buerhop-Lutz et al. 2018, Deitsch et al. 2019), "
            f"licence {LICENCE}; fixed split stratified by class and module type, "
            f"75% train / 25% test, split seed {SPLIT_SEED} (not the run seed); "
            f"cells cached at {stored_size} px in {path}"
        ),
    )


def split_indices(labels, types):
    """The fixed ELPV split: ``(train_indices, test_indices)`` into the cell list."""
    strata = [f"{label}/{module}" for label, module in zip(labels, types)]
    return stratified_split(strata, TEST_FRACTION, SPLIT_SEED)


def cache_dir():
    """Where decoded datasets are kept: ``$XDG_CACHE_HOME/keras_coordatt``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "keras_coordatt")


def _decoded_cells(size):
    """Images ``(N, size, size)`` uint8, labels, module types, file names, cache path."""
    try:
        version = importlib.metadata.version("elpv-dataset")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError("the 'elpv' source needs the ELPV images (a 91 MB package): "
                          "pip install 'keras-coordatt[demo]' (or pip install elpv-dataset)"
                          ) from None
    path = os.path.join(cache_dir(), f"elpv-{version}-{size}px.npz")
    if not os.path.exists(path):
        _write_cache(path, size)
    with np.load(path) as cached:
        return cached["images"], cached["labels"], cached["types"], cached["files"], path


def _write_cache(path, size):
    from elpv_dataset import utils

    labels_csv = os.path.join(os.path.dirname(utils.__file__), "data", "labels.csv")
    cells, probabilities, types = utils.load_dataset(labels_csv)
    files = np.genfromtxt(labels_csv, dtype=str, usecols=0)
    images = np.concatenate([
        shrink_to(cells[start : start + 256, :, :, None], size).numpy()[..., 0]
        for start in range(0, len(cells), 256)
    ])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Written under a temporary name and renamed: a run that is interrupted, or
    # another run reading at the same time, never sees half a file.
    with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), suffix=".npz", delete=False) as f:
        np.savez(
            f,
            images=images,
            labels=np.round(probabilities * 3).astype(np.int32),
            types=types,
            files=files,
        )
    os.replace(f.name, path)
