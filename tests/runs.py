"""Small training runs the trainer's tests share: a folder of images, a tiny config, the CLI."""

import dataclasses
import os
import subprocess
import sys

import numpy as np

from keras_coordatt.training import TrainConfig


def write_image_folder(root):
    """4 classes x (24 train + 8 val) PNGs of 32x32; the class sets the stripe."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 24), ("val", 8)):
        for label in range(4):
            folder = root / split / f"class_{label}"
            folder.mkdir(parents=True)
            for index in range(count):
                image = rng.integers(0, 80, size=(32, 32, 3), dtype=np.uint8)
                image[label * 8 : label * 8 + 6] = 230
                Image.fromarray(image).save(folder / f"{index}.png")
    return root


def write_voc(folder, count, side=112, seed=0):
    """Images with one or two bright squares (class 'box') or bars (class 'bar'), VOC XML beside."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for number in range(count):
        image = rng.integers(0, 60, (side, side, 3), dtype=np.uint8)
        objects = []
        for _ in range(rng.integers(1, 3)):
            name = ("box", "bar")[rng.integers(0, 2)]
            w, h = (32, 32) if name == "box" else (48, 16)
            x, y = rng.integers(0, side - w), rng.integers(0, side - h)
            image[y:y + h, x:x + w] = 230
            objects.append(f"<object><name>{name}</name><bndbox><xmin>{x}</xmin><ymin>{y}</ymin>"
                           f"<xmax>{x + w}</xmax><ymax>{y + h}</ymax></bndbox></object>")
        Image.fromarray(image).save(os.path.join(folder, f"{number}.png"))
        with open(os.path.join(folder, f"{number}.xml"), "w") as f:
            f.write(f"<annotation><filename>{number}.png</filename><size><width>{side}</width>"
                    f"<height>{side}</height><depth>3</depth></size>{''.join(objects)}</annotation>")


def write_masks(root, split, count, side=80, seed=0):
    """A square of class 1 on class 0, the top two rows 255 (ignored); images and masks folders."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for kind in ("images", "masks"):
        os.makedirs(os.path.join(root, split, kind), exist_ok=True)
    for number in range(count):
        mask = np.zeros((side, side), np.uint8)
        y, x = rng.integers(0, side - 30, 2)
        mask[y:y + 30, x:x + 30] = 1
        mask[:2] = 255
        image = np.repeat(np.where(mask == 1, 220, 30).astype(np.uint8)[..., None], 3, axis=-1)
        Image.fromarray(image).save(os.path.join(root, split, "images", f"{number}.png"))
        Image.fromarray(mask).save(os.path.join(root, split, "masks", f"{number}.png"))


def tiny(tmp_path, image_folder, **overrides):
    values = dict(
        model="mobilenet_v2", alpha=0.35, attention="ca", image_size=32, dropout_rate=0.0,
        dataset=f"folder:{image_folder}", train_split="train", eval_split="val",
        epochs=2, batch_size=16, learning_rate=0.2, reference_batch_size=256,
        crop_scale_min=0.5, output_dir=str(tmp_path / "run"), deterministic=True,
        verbose="quiet", seed=1,
    )
    values.update(overrides)
    return TrainConfig(**values)


def run_cli(config, extra_env=None, wait=True):
    args = [sys.executable, "-m", "keras_coordatt.cli", "train"]
    for field in dataclasses.fields(config):
        args += [f"--{field.name}", str(getattr(config, field.name))]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(extra_env or {})}
    # Outside the checkout: the library's command needs nothing of the repository.
    outside = os.path.dirname(os.path.abspath(config.output_dir))
    os.makedirs(outside, exist_ok=True)
    process = subprocess.Popen(args, cwd=outside, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    if wait:
        output, _ = process.communicate(timeout=300)
        return process.returncode, output
    return process


def weights_of(path):
    import h5py

    values = []
    with h5py.File(path) as f:
        f.visititems(lambda name, item: values.append(np.asarray(item))
                     if isinstance(item, h5py.Dataset) else None)
    return values
