"""The ``keras-coordatt`` command line: argument parsing and dispatch.

Each subcommand is a pair of functions, one adding its arguments to an
`argparse` parser and one running it, registered in `COMMANDS`; a new
subcommand is two functions and one entry there. Errors follow
`keras_coordatt.errors`. Options are spelled with underscores, as ``train``'s
config fields are (``--input_size``); an option once spelled with dashes
(``--input-size``) still takes that spelling, with a note on stderr.

Example:

    $ keras-coordatt table
    $ keras-coordatt table --families mobilenet_v2 --widths 1.0 --attentions none ca
    $ keras-coordatt export runs/ca/model.keras --output exported --data elpv
    $ keras-coordatt train --dataset elpv --model mobilenet_v2 --attention ca --image_size 96
    $ keras-coordatt predict runs/ca cell.png --output predicted
    $ keras-coordatt evaluate runs/ca --data folder:more_cells --split test
    $ keras-coordatt explain runs/ca/model.keras cell.png --output explained
"""

import argparse
import os
import sys

from keras_coordatt import models
from keras_coordatt.errors import run_reporting_errors
from keras_coordatt.layers import attention_names
from keras_coordatt.models import paper_tables


class _DashedSpelling(argparse.Action):
    """The dashed spelling an option had before: stores as the option does, with a note."""

    def __init__(self, option_strings, dest, spelling, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.spelling = spelling

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is now {self.spelling}; the old spelling works "
              "for now", file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_option(parser, name, **kwargs):
    """Adds the option ``name`` (``--input_size``) and, hidden, its dashed spelling."""
    option = parser.add_argument(name, **kwargs)
    parser.add_argument(
        name.replace("_", "-"), action=_DashedSpelling, spelling=name, dest=option.dest,
        nargs=option.nargs, const=option.const, type=option.type, choices=option.choices,
        default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_table_arguments(parser):
    parser.add_argument(
        "--families", nargs="+", choices=list(models.FAMILIES), default=list(models.FAMILIES),
        help="model families to list (default: all)")
    parser.add_argument(
        "--widths", nargs="+", type=float, default=list(paper_tables.WIDTHS),
        help="MobileNetV2 and MobileNeXt width multipliers (default: 1.0 0.75 0.5)")
    parser.add_argument(
        "--attentions", nargs="+", choices=["none", *attention_names()],
        default=list(paper_tables.TABLE_ATTENTIONS),
        help="attention blocks to compare (default: the paper's none se cbam ca; also CA's "
        "successors eca simam ela ela_t; EfficientNet-B0 also lists its own SE)")
    add_option(parser, "--input_size", type=int, default=224,
               help="square input size (default: 224)")
    parser.add_argument("--classes", type=int, default=1000,
                        help="classifier classes (default: 1000)")
    parser.add_argument(
        "--task", choices=("classification", "detection", "segmentation"),
        default="classification",
        help="classification: the backbones (Tables 2-3); detection: SSDLite320 on COCO (80 "
        "classes + background, Table 6); segmentation: DeepLabV3 on VOC (21 classes, Table 7)")


def run_table(args):
    """Prints the paper's Table 2 grid (and MobileNeXt, EfficientNet-B0), or Table 6 / 7, as markdown."""
    if args.task == "classification":
        rows = paper_tables.table_rows(args.families, args.widths, args.attentions)
        # Every row is a model built and counted: about 3 s each at 224 on a 2-core CPU.
        print(f"keras-coordatt table: building {len(rows)} models to count them (a few seconds "
              "each; --families, --widths and --attentions pick fewer)", file=sys.stderr,
              flush=True)
        lines = paper_tables.table_lines(rows, args.input_size, args.classes)
    else:
        from keras_coordatt.tasks.paper_tables import task_table_lines

        lines = task_table_lines(args.task, args.attentions)
    for line in lines:
        print(line)
    return 0


def add_evaluate_arguments(parser):
    parser.add_argument(
        "model", metavar="MODEL_OR_RUN",
        help="a training run's folder (any task), or a classifier's .keras or .tflite file "
        "with --data")
    parser.add_argument(
        "--data", default=None,
        help="the source to score on: folder:PATH (a folder per class; without split folders "
        "it is split 80/20 into train and test), tfds:NAME, elpv, voc:PATH, coco:PATH, "
        "masks:PATH, ... (default: the run's dataset)")
    parser.add_argument("--split", default=None,
                        help="split to score (default: the run's eval split, else the "
                        "source's)")
    parser.add_argument("--weights", choices=("last", "best"), default="last",
                        help="which of a run's weights (default: last)")
    parser.add_argument("--data_dir", default=None, help="tensorflow-datasets data directory")


def run_evaluate(args):
    """Accuracy, COCO AP / VOC mAP / P-R at IoU 0.4, or mIoU on a split (`prediction.evaluate`)."""
    import json

    from keras_coordatt.prediction import evaluate

    metrics, path = evaluate(args.model, args.data, args.split, args.weights, args.data_dir)
    shown = {key: value for key, value in metrics.items()
             if key not in ("coco", "confusion_matrix")}
    print(json.dumps(shown, indent=2, default=lambda v: v.tolist()))
    if path:
        print(f"wrote {path}")
    return 0


def add_predict_arguments(parser):
    from keras_coordatt.prediction import SCORE_THRESHOLD

    parser.add_argument(
        "model", metavar="MODEL_OR_RUN",
        help="a .keras model, a training run's folder, or an exported .tflite file (with the "
        "labels.txt and preprocessing.json written beside it)")
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files (JPEG, PNG, BMP, GIF, WebP)")
    parser.add_argument(
        "--output", default=None,
        help="folder for predictions.json, the detections drawn (<image>_detections.png) and "
        "the masks (<image>_mask.png, class indices in a palette PNG)")
    parser.add_argument("--top_k", type=int, default=5,
                        help="classes shown per image (classification; default: 5)")
    parser.add_argument("--score_threshold", type=float, default=SCORE_THRESHOLD,
                        help=f"lowest detection score kept (default: {SCORE_THRESHOLD})")
    parser.add_argument("--tile_size", type=int, default=None,
                        help="detect on tiles of this many pixels (default: the run's, else the "
                        "whole image)")


def run_predict(args):
    """Class names and scores, boxes as JSON, or masks, per image (`prediction.predict`)."""
    import json

    from keras_coordatt.prediction import load_predictor
    from keras_coordatt.prediction import write_predictions

    _check_image_files(args.images)
    predictor = load_predictor(args.model, args.tile_size)
    for note in predictor.notes:
        print(f"keras-coordatt predict: {note}", file=sys.stderr)
    results = predictor(args.images, args.top_k, args.score_threshold)
    if predictor.task == "detection":
        print(json.dumps([{"image": r["image"], "detections": r["detections"]} for r in results],
                         indent=2))
    for result in results:
        if predictor.task == "classification":
            print(f"{result['image']}: " + ", ".join(
                f"{top['name']} {top['score']:.3f}" for top in result["top"]))
        elif predictor.task == "segmentation":
            print(f"{result['image']}: " + ", ".join(
                f"{name} {share:.1%}" for name, share in result["shares"].items()))
    if args.output:
        written = write_predictions(results, args.images, args.output)
        print(f"wrote {len(written)} files in {args.output}/ ({os.path.basename(written[-1])} "
              "holds every prediction)")
    elif predictor.task != "classification":
        drawn = "boxes drawn" if predictor.task == "detection" else "masks"
        print(f"(--output DIR writes the {drawn} as PNG files)", file=sys.stderr)
    return 0


def _check_image_files(paths):
    """Every image path is a file, before a model loads: a typo costs no wait."""
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(f"no image file {path!r}")


def add_convert_arguments(parser):
    parser.add_argument(
        "checkpoint",
        help="PyTorch MobileNetV2 .pth: the official mbv2_ca.pth or torchvision's weights")
    parser.add_argument(
        "output", help="the .keras file to write, or a folder to write as a preset "
        "(keras_coordatt.from_preset; model card with the photo check of ImageNet weights)")
    parser.add_argument("--license", default=None,
                        help="the weights' licence, for a preset's model card")
    parser.add_argument("--layout", choices=("auto", "coordatt", "torchvision"), default="auto",
                        help="the checkpoint's key layout (default: told from the keys)")
    parser.add_argument(
        "--classes", type=int, default=None,
        help="a new classifier of this size instead of the checkpoint's (fine-tuning)")
    add_option(parser, "--input_size", type=int, default=224,
               help="square input size (default: 224)")
    parser.add_argument(
        "--attention", default="checkpoint",
        help="'checkpoint' (default: the checkpoint's own), or attention to add to a "
        "torchvision checkpoint: ca, ca_h, ca_w, ca_ln, se or cbam, started as the identity")
    add_option(parser, "--random_attention", action="store_true",
               help="leave added attention at its random initialisation instead of the identity")


def run_convert(args):
    """Converts a PyTorch checkpoint with `keras_coordatt.models.convert`."""
    from keras_coordatt.models.pytorch import load_state_dict

    size = args.input_size
    to_preset = not args.output.endswith(".keras")
    state = load_state_dict(args.checkpoint)  # read once: the preset's card names its layout
    model = models.convert(
        state, None if to_preset else args.output, layout=args.layout,
        classes=args.classes, input_shape=(size, size, 3), attention=args.attention,
        identity_init=not args.random_attention)
    if to_preset:
        _save_converted_preset(model, args, state)
    added = "" if args.attention == "checkpoint" else (
        f", attention {args.attention} added"
        f"{' (random)' if args.random_attention else ' (starting as the identity)'}")
    print(f"{args.checkpoint} -> {args.output}: {model.name}, "
          f"{models.count_trainable_params(model):,} trainable parameters{added}")
    return 0


# The ImageNet top-1 each source reports for its own weights (not measured here).
PUBLISHED_TOP1 = {
    "torchvision": "71.878% (torchvision's MobileNet_V2_Weights.IMAGENET1K_V1)",
    "coordatt": "74.3% (Hou et al., CVPR 2021, Table 2: MobileNetV2 1.0 + CA)",
}


def _save_converted_preset(model, args, state):
    """A converted checkpoint as a preset: source and the photo check (the model carries
    PyTorch's input normalisation, which the card shows)."""
    from keras_coordatt.models.photo_check import photo_check
    from keras_coordatt.models.pytorch import detect_layout

    layout = args.layout if args.layout != "auto" else detect_layout(state)
    metrics, notes = {}, []
    if int(model.output.shape[-1]) == 1000 and args.attention == "checkpoint":
        notes.append(f"Published ImageNet top-1 of these weights: {PUBLISHED_TOP1[layout]}.")
        try:
            check = photo_check(model)
        except ImportError as error:
            print(f"photo check skipped: {error}")
        else:
            metrics = {"photos top-1 (of 2)": check["photos_top1"],
                       "photos top-5 (of 2)": check["photos_top5"]}
            notes.append("Checked offline on scikit-image's two photos (chelsea, a cat; coffee, a "
                         "cup): top-5 classes " + "; ".join(
                             f"{name} {classes}" for name, classes in check["top5"].items())
                         + ". This shows the weights arrived intact; it is not an ImageNet "
                         "accuracy.")
    models.save_to_preset(
        model, args.output, license=args.license, metrics=metrics, description=" ".join(notes) or None,
        source=f"{os.path.basename(args.checkpoint)} ({layout} layout), converted by "
               f"keras-coordatt convert")
    if metrics:
        print(f"photo check: {metrics['photos top-1 (of 2)']} of 2 photos top-1")


def add_export_arguments(parser):
    from keras_coordatt.export.bundle import DEFAULT_FORMATS
    from keras_coordatt.export.bundle import FORMATS

    parser.add_argument(
        "model",
        help="a .keras model file, a model family "
        f"({', '.join(models.FAMILIES)}) with --weights, or a detection / segmentation "
        "training run's folder")
    parser.add_argument("--output", required=True, help="the folder to write the exports to")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(DEFAULT_FORMATS),
                        help="what to write (default: all but onnx)")
    parser.add_argument("--name", default=None,
                        help="the TFLite files' stem (default: the model's name)")
    builder = parser.add_argument_group("a model family instead of a .keras file")
    builder.add_argument("--weights", default=None,
                         help="a weights file (.weights.h5 or legacy .h5)")
    builder.add_argument("--attention", default="ca",
                         help="none, se, cbam, ca, ... (default: ca)")
    builder.add_argument("--alpha", type=float, default=1.0,
                         help="width multiplier (default: 1.0)")
    builder.add_argument("--classes", type=int, default=1000, help="classes (default: 1000)")
    add_option(parser, "--input_size", type=int, default=None,
               help="square input size (default: the model's; 224 for a builder)")
    parser.add_argument(
        "--labels", default=None,
        help="a text file with one class name per line (default: the class names in the "
        "metrics.json of the training run beside the model, else class_0, class_1, ...)")
    data = parser.add_argument_group("check and calibration images")
    data.add_argument(
        "--data", default=None,
        help="elpv, tfds:NAME or folder:PATH (elpv needs the [demo] extra, tfds [train]); "
        "without it the checks run on 16 seeded random images")
    add_option(data, "--check_split", default=None,
               help="held-out split (default: the source's eval split)")
    add_option(data, "--check_examples", type=int, default=256,
               help="held-out images to check on (default: 256)")
    add_option(data, "--calibration_split", default="train",
               help="split that calibrates int8 (default: train)")
    add_option(data, "--calibration_examples", type=int, default=200, help="(default: 200)")
    add_option(data, "--data_dir", default=None, help="tensorflow-datasets data directory")
    checks = parser.add_argument_group("checks")
    checks.add_argument("--atol", type=float, default=1e-4,
                        help="absolute part of the float32 tolerance (default: 1e-4)")
    checks.add_argument("--rtol", type=float, default=1e-4,
                        help="relative part: a float32 export may differ by atol + rtol x the "
                        "largest |output| of Keras (default: 1e-4)")
    add_option(checks, "--min_agreement", type=float, default=None,
               help="fail quantized exports whose top-1 agreement with Keras is below this")
    add_option(parser, "--top_k", type=int, default=5,
               help="classes the serving signature returns")


def run_export(args):
    """Writes and checks every format: `export.export_model`, or `export.export_task_model` for a run."""
    from keras_coordatt.export import export_model
    from keras_coordatt.export import loading

    if os.path.isdir(args.model):
        return _export_run(args.model, args.output)
    model = loading.load_classifier(args.model, args.input_size, args.weights, args.attention,
                                    args.alpha, args.classes)
    labels = loading.class_names(args.labels, args.model)
    check, truth, calibration = None, None, None
    if args.data:
        check, truth, calibration, names = loading.check_and_calibration_images(
            model, args.data, args.check_split, args.check_examples, args.calibration_split,
            args.calibration_examples, args.data_dir)
        labels = labels or names
    export_model(model, args.output, formats=args.formats, labels=labels, check_images=check,
                 check_labels=truth, representative_images=calibration, top_k=args.top_k,
                 atol=args.atol, rtol=args.rtol, min_agreement=args.min_agreement,
                 name=args.name)
    print(f"Wrote and checked {len(args.formats)} exports in {args.output}/ "
          f"(export_report.json says how each check went)")
    return 0


def _export_run(run_dir, output):
    """A detection or segmentation run's exports, checked on its own eval and training images."""
    from keras_coordatt.export import export_task_model
    from keras_coordatt.training.tasks import load_run

    config, model, datasets = load_run(run_dir, train=True)
    postprocess = {"activation": "sigmoid"} if config.detection_loss == "focal" else {}
    export_task_model(model, config.task, output, datasets.class_names, datasets.eval_tiles,
                      datasets.train, run=run_dir, **postprocess)
    print(f"Wrote and checked the {config.task} exports in {output}/ (export_report.json says "
          "how each check went)")
    return 0


def add_train_arguments(parser):
    from keras_coordatt.training.config import add_config_arguments

    add_config_arguments(parser)


def run_train(args):
    """Trains with `keras_coordatt.training.train`; ``--config`` takes a JSON file."""
    from keras_coordatt.training import train_from_args

    return train_from_args(args)


def add_explain_arguments(parser):
    parser.add_argument("model", help="a .keras classifier (a trained run's model.keras)")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, BMP, GIF)")
    parser.add_argument("--output", required=True,
                        help="folder for the <image>_explained.png files")
    parser.add_argument("--layer", default=None,
                        help="layer whose feature maps Grad-CAM weights (default: the last with "
                        "a 4D output, out_relu in MobileNetV2)")
    add_option(parser, "--attention_layer", default=None,
               help="CoordAttention layer whose gates to draw (default: the last at 1/16 of the "
               "input size or larger, block_12_attention in MobileNetV2)")
    parser.add_argument("--class", dest="class_name", default=None,
                        help="class to explain, by name (as the run's metrics.json names it) or "
                        "index (default: each image's top class)")


def run_explain(args):
    """Grad-CAM and CA's gates per image with `keras_coordatt.visualize.explain_images`."""
    import keras

    from keras_coordatt.export.loading import class_names
    from keras_coordatt.visualize import attention_table
    from keras_coordatt.visualize import explain_images

    if not os.path.isfile(args.model) or not args.model.endswith(".keras"):
        raise ValueError(f"model must be an existing .keras file, got {args.model!r}")
    _check_image_files(args.images)
    model = keras.saving.load_model(args.model, compile=False)
    names = class_names(None, args.model)
    rows = explain_images(model, args.images, args.output, layer=args.layer,
                          gate_layer=args.attention_layer,
                          class_index=_class_index(args.class_name, names, model),
                          class_names=names)
    for row in rows:
        print(f"{row['image']}: {row['name']} (class {row['class']}, model output "
              f"{row['score']:.4g}) -> {row['png']}")
    table = attention_table(model, args.images)
    if table:
        print(f"\nThe attention's gates on these {len(args.images)} images (moved: mean |gate - "
              "its identity-start value|; saturated: below 0.02 or above 0.98; train/inf gap: "
              "mean |gate in training mode - gate at inference|):")
        print("\n".join(table))
    return 0


def _class_index(value, names, model):
    """``--class`` as an index of the model's classes: an index, or one of ``names``."""
    if value is None:
        return None
    classes = int(model.output.shape[-1])
    if value.isdigit() and int(value) < classes:
        return int(value)
    if names and value in names:
        return names.index(value)
    known = (f"a class name ({', '.join(names)})" if names else
             "a class name: the run saved none beside the model (metrics.json)")
    raise ValueError(f"--class {value!r}: neither a class index (0 to {classes - 1}) nor {known}")


# name -> (help, add_arguments(parser), run(args) -> exit status)
COMMANDS = {
    "table": (
        "print parameters and M-Adds of every model and attention as markdown",
        add_table_arguments,
        run_table,
    ),
    "convert": (
        "convert a PyTorch MobileNetV2 checkpoint (mbv2_ca or torchvision) to .keras",
        add_convert_arguments,
        run_convert,
    ),
    "export": (
        "write a SavedModel, TF Hub-format models and TFLite files, each checked against Keras",
        add_export_arguments,
        run_export,
    ),
    "train": (
        "train a classifier, detector (--task detection) or segmenter by the paper's recipe",
        add_train_arguments,
        run_train,
    ),
    "evaluate": (
        "score a run or classifier on any split or folder: accuracy, COCO AP (pycocotools), "
        "VOC mAP, P/R, mIoU",
        add_evaluate_arguments,
        run_evaluate,
    ),
    "predict": (
        "predict with a model, run or .tflite file: class names and scores, boxes (JSON and "
        "drawn) or masks (PNG)",
        add_predict_arguments,
        run_predict,
    ),
    "explain": (
        "draw Grad-CAM and Coordinate Attention's gates over images, one PNG each",
        add_explain_arguments,
        run_explain,
    ),
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-coordatt",
        description="Coordinate Attention (Hou, Zhou, Feng, CVPR 2021) for Keras 3.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        subparser = subcommands.add_parser(name, help=help_text, description=help_text,
                                           parents=[common])
        add_arguments(subparser)
        subparser.set_defaults(run=run)
    return parser


def main(argv=None):
    """Runs ``keras-coordatt`` with ``argv`` (default: the process arguments).

    Args:
        argv: the arguments after the program name, for example
            ``["table", "--widths", "1.0"]``.

    Returns:
        The exit status (see `keras_coordatt.errors.run_reporting_errors`).
    """
    args = build_parser().parse_args(argv)
    return run_reporting_errors(f"keras-coordatt {args.command}", lambda: args.run(args),
                                args.debug)


if __name__ == "__main__":
    sys.exit(main())
