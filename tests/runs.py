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
