"""Small data the tests make in their folders: images, Pascal VOC XML, tiny tensorflow-datasets datasets."""

import numpy as np
import pytest

WIDTH, HEIGHT = 48, 32


def write_image(path, seed=0, size=(WIDTH, HEIGHT)):
    """A random RGB image (PNG or JPEG by the suffix); returns its pixels."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def voc_xml(filename="a.png", width=40, height=30, objects=(("tree", (1, 2, 11, 12), 0),)):
    parts = [f"<annotation><filename>{filename}</filename>",
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for name, (xmin, ymin, xmax, ymax), difficult in objects:
        parts.append(f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
                     f"<xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax>"
                     f"<ymax>{ymax}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>"


def prepare_tiny_tfds(class_name, data_dir, features, splits):
    """Prepares the dataset ``class_name`` (tfds names it in snake_case) in ``data_dir``.

    ``features`` is a dict of ``tfds.features`` (the FeaturesDict's), ``splits``
    maps each split's name to its examples (dicts of those features). Skips the
    test where tensorflow-datasets is not installed. Returns ``data_dir``.
    """
    tfds = pytest.importorskip("tensorflow_datasets")
    tfds.disable_progress_bar()

    def info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def split_generators(self, dl_manager):
        return {name: self._generate_examples(name) for name in splits}

    def generate_examples(self, split):
        yield from enumerate(splits[split])

    builder = type(class_name, (tfds.core.GeneratorBasedBuilder,), {
        "VERSION": tfds.core.Version("1.0.0"), "_info": info,
        "_split_generators": split_generators, "_generate_examples": generate_examples})
    builder(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)
