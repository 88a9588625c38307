"""Is a run "from ImageNet" started from ImageNet's network? Top-1 agreement on photos.

torchvision's ImageNet MobileNetV2 (converted into a ``.keras`` file, the
start of `make demo`, the ELPV study and the attention options) pads like
PyTorch and normalises with BatchNorm epsilon 1e-5. A network built with this
package's defaults pads "same" (TensorFlow's) and uses Keras' 1e-3; loading the
weights by layer name into it gives another function. This script loads the
weights into the four combinations, and into the network the trainer builds
now (the file's padding and epsilon, CA inserted as the identity), and counts
on scikit-image's photos (19 of them, torchvision's evaluation crop) how often
each puts the converted network's first class first. It also reports the
largest ratio of a projection kernel's size after the identity start to its
size in the file (1: the kernels kept their size, so the blocks learn as fast
as without attention).

    python -m training.imagenet_start

Writes ``imagenet_start.csv`` / ``.json`` to ``--results``
(docs/results/attention-learning/).
"""

import argparse
import os

import numpy as np

from training.elpv_recipe import imagenet_weights
from training.results import add_script_arguments
from training.results import results_destination
from training.results import run_script
from training.results import write_results

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "cat", "immunohistochemistry", "retina",
          "colorwheel", "logo", "coins", "camera", "horse", "page", "moon", "text", "brick",
          "grass", "gravel", "hubble_deep_field")  # those scikit-image ships (no download)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.imagenet_start",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="study_output/attention_options",
                        help="folder of the converted ImageNet weights (default: "
                        "study_output/attention_options, where the options script keeps them)")
    add_script_arguments(parser, "attention-learning")
    args = parser.parse_args(argv)
    return run_script("python -m training.imagenet_start", args, argv, run)


def photos():
    """The scikit-image photos there are, in torchvision's crop, as ``(N, 224, 224, 3)``."""
    from skimage import data

    from keras_coordatt.models.photo_check import imagenet_crop

    images = []
    for name in PHOTOS:
        loader = getattr(data, name, None)
        if loader is None:
            continue
        try:
            image = loader()
        except Exception:  # noqa: BLE001 - a photo scikit-image would download: skipped
            continue
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        images.append(imagenet_crop(image[..., :3].astype("uint8")))
    return np.stack(images)


def run(args):
    import keras

    from keras_coordatt.models.families import build_model
    from keras_coordatt.models.identity import start_new_attention_as_identity
    from keras_coordatt.models.weights import load_weights_by_name
    from keras_coordatt.models.weights import saved_architecture

    path = imagenet_weights(os.path.join(args.output, "weights"))
    source = keras.saving.load_model(path)
    images = photos()
    reference = keras.ops.convert_to_numpy(source(images, training=False)).argmax(axis=1)
    saved = saved_architecture(path)
    print(f"{path}: saved with {saved}; {len(images)} photos")
    rows = []
    networks = [(padding, epsilon, None) for padding in ("keras", "pytorch")
                for epsilon in (1e-3, 1e-5)]
    networks += [(saved["padding"], saved["bn_epsilon"], "ca"), ("keras", 1e-3, "ca")]
    for padding, epsilon, attention in networks:
        model = build_model("mobilenet_v2", alpha=1.0, input_shape=(224, 224, 3), classes=1000,
                            padding=padding, bn_epsilon=epsilon, attention=attention)
        copied, _ = load_weights_by_name(model, path)
        kernel_ratio = None
        if attention:
            start_new_attention_as_identity(model, copied)
            kernel_ratio = max(
                float(np.linalg.norm(keras.ops.convert_to_numpy(model.get_layer(name).kernel))
                      / np.linalg.norm(keras.ops.convert_to_numpy(source.get_layer(name).kernel)))
                for name in (f"block_{i}_project" for i in range(1, 17)))
        top1 = keras.ops.convert_to_numpy(model(images, training=False)).argmax(axis=1)
        row = {"padding": padding, "bn_epsilon": epsilon, "attention": attention or "none",
               "as_saved": padding == saved.get("padding") and epsilon == saved.get("bn_epsilon"),
               "photos": len(images), "top1_agreement": int((top1 == reference).sum()),
               "largest_projection_kernel_ratio": kernel_ratio}
        rows.append(row)
        ratio = "" if kernel_ratio is None else f", projection kernels at most {kernel_ratio:.3f}x"
        print(f"padding {padding!r}, epsilon {epsilon:g}, attention {row['attention']}: top-1 "
              f"agrees on {row['top1_agreement']} of {len(images)}{ratio}")
    results = results_destination(args, "attention-learning")
    notes = ["top1_agreement: photos whose first class is the converted torchvision network's",
             "largest_projection_kernel_ratio: max over block_1..16_project of |kernel after the "
             "identity start| / |kernel in the file|"]
    write_results(results, "imagenet_start", rows, command=args.command, notes=notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
