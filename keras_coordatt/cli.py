"""The ``keras-coordatt`` command line.

Each subcommand is a pair of functions, one adding its arguments to an
`argparse` parser and one running it, registered in `COMMANDS`; a new
subcommand is two functions and one entry there.

Example:

    $ keras-coordatt table
    $ keras-coordatt table --families mobilenet_v2 --widths 1.0 --attentions none ca
    $ keras-coordatt export runs/ca/model.keras --output exported --data elpv
    $ keras-coordatt train --dataset elpv --model mobilenet_v2 --attention ca --image_size 96
    $ keras-coordatt explain runs/ca/model.keras cell.png --output explained
"""

import argparse
import os
import sys
import warnings

import keras

from keras_coordatt import models

TABLE_ATTENTIONS = ("none", "se", "cbam", "ca")
WIDTHS = (1.0, 0.75, 0.5)

# The paper's Params and M-Adds (Tables 2 and 3), by (family, width, row).
PUBLISHED = {
    ("mobilenet_v2", 1.0, "none"): ("3.5M", "300M"),
    ("mobilenet_v2", 1.0, "se"): ("3.89M", "300M"),
    ("mobilenet_v2", 1.0, "cbam"): ("3.89M", "300M"),
    ("mobilenet_v2", 1.0, "ca"): ("3.95M", "310M"),
    ("mobilenext", 1.0, "none"): ("3.5M", "300M"),
    ("mobilenext", 1.0, "se"): ("3.89M", "300M"),
    ("mobilenext", 1.0, "ca"): ("4.09M", "330M"),
    ("mobilenext", 1.0, "ca (after dw2)"): ("4.09M", "330M"),
}


def add_table_arguments(parser):
    parser.add_argument(
        "--families",
        nargs="+",
        choices=list(models.FAMILIES),
        default=list(models.FAMILIES),
        help="model families to list (default: all)",
    )
    parser.add_argument(
        "--widths",
        nargs="+",
        type=float,
        default=list(WIDTHS),
        help="MobileNetV2 and MobileNeXt width multipliers (default: 1.0 0.75 0.5)",
    )
    parser.add_argument(
        "--attentions",
        nargs="+",
        choices=TABLE_ATTENTIONS,
        default=list(TABLE_ATTENTIONS),
        help="attention blocks to compare (default: none se cbam ca; EfficientNet-B0 also "
        "lists its own SE)",
    )
    parser.add_argument(
        "--input-size", type=int, default=224, help="square input size (default: 224)"
    )
    parser.add_argument(
        "--classes", type=int, default=1000, help="classifier classes (default: 1000)"
    )
    parser.add_argument(
        "--task", choices=("classification", "detection", "segmentation"),
        default="classification",
        help="classification: the backbones (Tables 2-3); detection: SSDLite320 on COCO (80 "
        "classes + background, Table 6); segmentation: DeepLabV3 on VOC (21 classes, Table 7)")


def table_rows(families, widths, attentions):
    """``(family, width, row label, builder kwargs)`` for every row of the table."""
    rows = []
    for family in map(models.get_family, families):
        for width in widths if family.has_width else (1.0,):
            labels = list(attentions)
            if family.own_attention:
                # Its own attention is the baseline the paper swaps for CA (Table 5).
                labels.insert(0, family.own_attention)
            for label in labels:
                kwargs = {"attention": label}
                if family.has_width:
                    kwargs["alpha"] = width
                rows.append((family, width, label, kwargs))
            # The MobileNeXt placement that gives the published 4.09M (see models.mobilenext).
            if family.key == "mobilenext" and "ca" in attentions:
                rows.append((family, width, "ca (after dw2)",
                             {"alpha": width, "attention": "ca", "attention_position": "last"}))
    return rows


def run_table(args):
    """Prints the paper's Table 2 grid (and MobileNeXt, EfficientNet-B0) as markdown."""
    if args.task != "classification":
        return run_task_table(args.task, args.attentions)
    size = args.input_size
    rows = table_rows(args.families, args.widths, args.attentions)
    # Every row is a model built and counted: about 3 s each at 224 on a 2-core CPU.
    print(f"keras-coordatt table: building {len(rows)} models to count them (a few seconds "
          "each; --families, --widths and --attentions pick fewer)", file=sys.stderr, flush=True)
    print(
        f"Trainable parameters and multiply-adds at {size}x{size}, "
        f"{args.classes} classes; the paper's figures beside ours.\n"
    )
    print("| Model | Width | Attention | Params | Paper | M-Adds | Paper |")
    print("|---|---|---|---:|---:|---:|---:|")
    for family, width, label, kwargs in rows:
        model = family.builder(input_shape=(size, size, 3), classes=args.classes, **kwargs)
        params = models.count_trainable_params(model)
        macs = models.count_macs(model)
        paper_params, paper_macs = PUBLISHED.get((family.key, width, label), ("", ""))
        print(
            f"| {family.display_name} | {width} | {label} | {params:,} | "
            f"{paper_params} | {macs / 1e6:.1f}M | {paper_macs} |"
        )
        # Thirty models at 224x224: free each graph before the next.
        keras.utils.clear_session()
    return 0


# The paper's parameter counts of its detection (Table 6) and segmentation (Table 7) networks.
PUBLISHED_TASKS = {
    "detection": {"none": 4.3e6, "se": 4.7e6, "cbam": 4.7e6, "ca": 4.8e6},
    "segmentation": {"none": 4.5e6, "se": 4.9e6, "cbam": 4.9e6, "ca": 5.0e6},
}


def task_table_rows(task, attentions):
    """``(attention, variant, model builder)``: SSDLite320 on MobileNetV2 1.0 (81 outputs), or
    DeepLabV3 at output stride 16 (21 classes) as the paper's text describes it (separable
    ASPP on the final 1280-channel map) and as its counts match (regular 3x3 ASPP on the
    320-channel block 16 projection)."""
    from keras_coordatt.models.mobilenet_v2 import MobileNetV2
    from keras_coordatt.tasks import DeepLabV3
    from keras_coordatt.tasks import SSDLite

    rows = []
    for attention in attentions:
        if task == "detection":
            rows.append((attention, "SSDLite320", lambda a=attention: SSDLite(
                MobileNetV2(input_shape=(320, 320, 3), include_top=False, attention=a), 80)))
            continue

        def deeplab(a=attention, separable=True):
            backbone = MobileNetV2(input_shape=(512, 512, 3), include_top=False, attention=a,
                                   output_stride=16)
            feature = None if separable else "block_16_project_BN"
            return DeepLabV3(backbone, 21, separable=separable, feature=feature)

        rows.append((attention, "separable ASPP on 1280 ch", deeplab))
        rows.append((attention, "regular ASPP on 320 ch",
                     lambda a=attention: deeplab(a, separable=False)))
    return rows


def run_task_table(task, attentions):
    """Parameter counts of the detection or segmentation networks beside the paper's."""
    published = PUBLISHED_TASKS[task]
    print(f"Parameters (all weights, BatchNorm statistics included) of the paper's {task} network "
          "on MobileNetV2 1.0; the paper's figures beside ours.\n")
    print("| Attention | Network | Params | Paper | Difference |")
    print("|---|---|---:|---:|---:|")
    for attention, variant, build in task_table_rows(task, attentions):
        params = build().count_params()
        paper = published.get(attention)
        difference = f"{(params - paper) / paper:+.1%}" if paper else ""
        print(f"| {attention} | {variant} | {params:,} | "
              f"{f'{paper / 1e6:.1f}M' if paper else ''} | {difference} |")
        keras.utils.clear_session()
    return 0


def add_evaluate_arguments(parser):
    parser.add_argument("run_dir", metavar="RUN", help="a detection or segmentation training run's folder")
    parser.add_argument("--split", default=None, help="split to score (default: the run's eval split)")
    parser.add_argument("--weights", choices=("last", "best"), default="last",
                        help="which of the run's weights (default: last)")


def run_evaluate(args):
    """COCO AP / VOC mAP / P-R at IoU 0.4, or mIoU, of a run on a split (`training.tasks.evaluate_run`)."""
    import json

    from keras_coordatt.training.tasks import evaluate_run

    metrics, path = evaluate_run(args.run_dir, args.split, args.weights)
    shown = {key: value for key, value in metrics.items()
             if key not in ("coco", "confusion_matrix")}
    print(json.dumps(shown, indent=2, default=lambda v: v.tolist()))
    print(f"wrote {path}")
    return 0


def export_task_run(run_dir, output, check_images=16, calibration_images=64):
    """A detection or segmentation run's serving SavedModel, TFLite float32 and int8.

    Each TFLite file is run beside Keras on up to ``check_images`` of the
    run's eval images (as the model sees them) and its report written to
    ``export_report.json``. When a file disagrees with Keras beyond its
    tolerance (see `keras_coordatt.export.tasks.check_detector_tflite` /
    `check_segmenter_tflite`) the command says so and returns 1, keeping every
    file and the report; otherwise it returns 0.
    """
    import itertools
    import json

    import numpy as np

    from keras_coordatt.data.detection_pipeline import image_of
    from keras_coordatt.export import tasks as exports
    from keras_coordatt.training.tasks import load_run

    config, model, datasets = load_run(run_dir, train=True)
    side = config.image_size
    detection = config.task == "detection"
    kwargs = {"activation": "sigmoid"} if detection and config.detection_loss == "focal" else {}

    def inputs(examples, count):
        chosen = [image_of(e) for e in itertools.islice(examples, count)]
        return np.stack([np.asarray(exports.model_input(image[None], side, config.preprocessing))[0]
                         for image in chosen])

    checks = inputs(datasets.eval_tiles, check_images)
    calibration = inputs(datasets.train, calibration_images)
    os.makedirs(output, exist_ok=True)
    report, failed = {"run": run_dir, "task": config.task, "check_images": len(checks)}, []
    serving = os.path.join(output, "saved_model")
    if detection:
        exports.export_detector_serving(model, serving, datasets.class_names, **kwargs)
    else:
        exports.export_segmenter_serving(model, serving, datasets.class_names)
    report["saved_model"] = serving
    print(f"wrote {serving}")
    for quantization in (None, "int8"):
        name = f"{config.task}_{quantization or 'float32'}.tflite"
        if detection:
            content = exports.detector_tflite(model, quantization, calibration, **kwargs)
            check = lambda: exports.check_detector_tflite(content, model, checks, **kwargs)  # noqa: E731
        else:
            content = exports.segmenter_tflite(model, quantization, calibration)
            check = lambda: exports.check_segmenter_tflite(content, model, checks)  # noqa: E731
        path = os.path.join(output, name)
        with open(path, "wb") as f:
            f.write(content)
        try:
            report[name] = {"ok": True, **check()}
        except exports.ExportCheckError as error:
            report[name] = {"ok": False, "error": str(error), **getattr(error, "report", {})}
            failed.append(name)
        print(f"wrote {path} ({len(content) / 1e6:.2f} MB): "
              f"{'checked against Keras' if name not in failed else 'FAILED its check'}")
    with open(os.path.join(output, "export_report.json"), "w") as f:
        json.dump(report, f, indent=2, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    if failed:
        print(f"keras-coordatt export: {', '.join(failed)} disagree with Keras beyond tolerance "
              f"(the files are kept); see {os.path.join(output, 'export_report.json')}",
              file=sys.stderr)
        return 1
    print(f"Wrote and checked the {config.task} exports in {output}/ (export_report.json says "
          "how each check went)")
    return 0


def add_convert_arguments(parser):
    parser.add_argument(
        "checkpoint",
        help="PyTorch MobileNetV2 .pth: the official mbv2_ca.pth or torchvision's weights",
    )
    parser.add_argument("output", help="the .keras file to write")
    parser.add_argument(
        "--layout",
        choices=("auto", "coordatt", "torchvision"),
        default="auto",
        help="the checkpoint's key layout (default: told from the keys)",
    )
    parser.add_argument(
        "--classes",
        type=int,
        default=None,
        help="a new classifier of this size instead of the checkpoint's (fine-tuning)",
    )
    parser.add_argument(
        "--input-size", type=int, default=224, help="square input size (default: 224)"
    )
    parser.add_argument(
        "--attention", default="checkpoint",
        help="'checkpoint' (default: the checkpoint's own), or attention to add to a "
        "torchvision checkpoint: ca, ca_h, ca_w, se or cbam, started as the identity",
    )
    parser.add_argument(
        "--random-attention", action="store_true",
        help="leave added attention at its random initialisation instead of the identity",
    )


def run_convert(args):
    """Converts a PyTorch checkpoint with `keras_coordatt.models.convert`."""
    from keras_coordatt.models import convert
    from keras_coordatt.models import count_trainable_params

    size = args.input_size
    model = convert(
        args.checkpoint,
        args.output,
        layout=args.layout,
        classes=args.classes,
        input_shape=(size, size, 3),
        attention=args.attention,
        identity_init=not args.random_attention,
    )
    added = "" if args.attention == "checkpoint" else (
        f", attention {args.attention} added"
        f"{' (random)' if args.random_attention else ' (starting as the identity)'}")
    print(
        f"{args.checkpoint} -> {args.output}: {model.name}, "
        f"{count_trainable_params(model):,} trainable parameters{added}"
    )
    return 0


def add_export_arguments(parser):
    from keras_coordatt.export.bundle import DEFAULT_FORMATS
    from keras_coordatt.export.bundle import FORMATS

    parser.add_argument(
        "model",
        help="a .keras model file, a model family "
        f"({', '.join(models.FAMILIES)}) with --weights, or a detection / segmentation "
        "training run's folder",
    )
    parser.add_argument("--output", required=True, help="the folder to write the exports to")
    parser.add_argument(
        "--formats", nargs="+", choices=FORMATS, default=list(DEFAULT_FORMATS),
        help="what to write (default: all but onnx)",
    )
    parser.add_argument("--name", default=None, help="the TFLite files' stem (default: the model's name)")
    builder = parser.add_argument_group("a model family instead of a .keras file")
    builder.add_argument("--weights", default=None, help="a weights file (.weights.h5 or legacy .h5)")
    builder.add_argument("--attention", default="ca", help="none, se, cbam, ca, ... (default: ca)")
    builder.add_argument("--alpha", type=float, default=1.0, help="width multiplier (default: 1.0)")
    builder.add_argument("--classes", type=int, default=1000, help="classes (default: 1000)")
    parser.add_argument(
        "--input-size", type=int, default=None,
        help="square input size (default: the model's; 224 for a builder)",
    )
    parser.add_argument(
        "--labels", default=None,
        help="a text file with one class name per line (default: the class names in the "
        "metrics.json of the training run beside the model, else class_0, class_1, ...)",
    )
    data = parser.add_argument_group("check and calibration images")
    data.add_argument(
        "--data", default=None,
        help="elpv, tfds:NAME or folder:PATH (elpv and tfds need the [train] extra); without it the "
        "checks run on 16 seeded random images",
    )
    data.add_argument("--check-split", default=None, help="held-out split (default: the source's eval split)")
    data.add_argument("--check-examples", type=int, default=256, help="held-out images to check on (default: 256)")
    data.add_argument("--calibration-split", default="train", help="split that calibrates int8 (default: train)")
    data.add_argument("--calibration-examples", type=int, default=200, help="(default: 200)")
    data.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    checks = parser.add_argument_group("checks")
    checks.add_argument("--atol", type=float, default=1e-4,
                        help="absolute part of the float32 tolerance (default: 1e-4)")
    checks.add_argument("--rtol", type=float, default=1e-5,
                        help="relative part: a float32 export may differ by atol + rtol x the "
                        "largest |output| of Keras (default: 1e-5)")
    checks.add_argument("--min-agreement", type=float, default=None,
                        help="fail quantized exports whose top-1 agreement with Keras is below this")
    parser.add_argument("--top-k", type=int, default=5, help="classes the serving signature returns")


def _load_for_export(args):

    if args.model.endswith(".keras"):
        if not os.path.exists(args.model):
            raise FileNotFoundError(f"no model file {args.model!r}")
        model = keras.saving.load_model(args.model, compile=False)
        if args.input_size and tuple(model.inputs[0].shape[1:3]) != (args.input_size,) * 2:
            model = _rebuilt_at(model, args.input_size)
        return model
    if args.model not in models.FAMILIES:
        raise ValueError(
            f"{args.model!r} is neither a .keras file nor a model family "
            f"({', '.join(models.FAMILIES)})"
        )
    family = models.get_family(args.model)
    family.check_attention(args.attention)
    size = args.input_size or 224
    model = models.build_model(family.key, alpha=args.alpha, input_shape=(size, size, 3),
                               classes=args.classes, attention=args.attention,
                               classifier_activation=None)
    if args.weights is None:
        print("keras-coordatt export: no --weights; exporting random weights", file=sys.stderr)
        return model
    if not os.path.exists(args.weights):
        raise FileNotFoundError(f"no weights file {args.weights!r}")
    try:
        with warnings.catch_warnings():
            # On a mismatch Keras warns once per layer before its error.
            warnings.simplefilter("ignore")
            model.load_weights(args.weights)
    except ValueError:
        # Keras' own message prints whole weight arrays; the options are what to fix.
        raise ValueError(
            f"the weights in {args.weights} do not fit {family.key} with --alpha {args.alpha} "
            f"--attention {args.attention} --classes {args.classes}: pass "
            "the options the weights were trained with (or export the run's model.keras)"
        ) from None
    return model


def _rebuilt_at(model, size):
    """The same network and weights at another (fixed) input size."""
    rebuilt = models.rebuild(model, image_shape=(size, size, 3))
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _labels_for_export(args):
    import json

    if args.labels:
        with open(args.labels) as f:
            return [line.strip() for line in f if line.strip()]
    if args.model.endswith(".keras"):
        metrics = os.path.join(os.path.dirname(os.path.abspath(args.model)), "metrics.json")
        if os.path.exists(metrics):
            with open(metrics) as f:
                return json.load(f).get("class_names")
    return None


def run_export(args):
    """Writes and checks every deployment format with `keras_coordatt.export.export_model`."""
    from keras_coordatt.export import ExportCheckError
    from keras_coordatt.export import export_model

    if os.path.isdir(args.model):
        return export_task_run(args.model, args.output)
    model = _load_for_export(args)
    labels = _labels_for_export(args)
    check, truth, calibration = None, None, None
    if args.data:
        from keras_coordatt.data import load_images

        from keras_coordatt.preprocessing import preprocessing_of

        size = int(model.inputs[0].shape[1])
        crop = preprocessing_of(model).crop_fraction
        check, truth, class_names = load_images(
            args.data, args.check_split, args.check_examples, size, args.data_dir, crop)
        calibration, _, _ = load_images(
            args.data, args.calibration_split, args.calibration_examples, size, args.data_dir,
            crop)
        labels = labels or class_names
    try:
        export_model(
            model, args.output, formats=args.formats, labels=labels, check_images=check,
            check_labels=truth, representative_images=calibration, top_k=args.top_k,
            atol=args.atol, rtol=args.rtol, min_agreement=args.min_agreement, name=args.name,
        )
    except ExportCheckError as error:
        print(f"keras-coordatt export: {error}", file=sys.stderr)
        return 1
    print(f"Wrote and checked {len(args.formats)} exports in {args.output}/ "
          f"(export_report.json says how each check went)")
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
    parser.add_argument("--output", required=True, help="folder for the <image>_explained.png files")
    parser.add_argument("--layer", default=None,
                        help="layer whose feature maps Grad-CAM weights (default: the last with "
                        "a 4D output, out_relu in MobileNetV2)")
    parser.add_argument("--attention-layer", default=None,
                        help="CoordAttention layer whose gates to draw (default: the last at "
                        "1/16 of the input size or larger, block_12_attention in MobileNetV2)")
    parser.add_argument("--class", dest="class_index", type=int, default=None,
                        help="class to explain (default: each image's top class)")


def run_explain(args):
    """Grad-CAM and CA's gates per image with `keras_coordatt.visualize.explain_images`."""
    import keras

    from keras_coordatt.visualize import explain_images

    if not os.path.isfile(args.model) or not args.model.endswith(".keras"):
        raise ValueError(f"model must be an existing .keras file, got {args.model!r}")
    for path in args.images:  # before loading the model: a typo costs no wait
        if not os.path.isfile(path):
            raise ValueError(f"no image file {path!r}")
    model = keras.saving.load_model(args.model, compile=False)
    rows = explain_images(model, args.images, args.output, layer=args.layer,
                          gate_layer=args.attention_layer, class_index=args.class_index)
    for row in rows:
        print(f"{row['image']}: class {row['class']} (model output {row['score']:.4g}) "
              f"-> {row['png']}")
    return 0


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
        "score a detection or segmentation run: COCO AP (pycocotools), VOC mAP, P/R, mIoU",
        add_evaluate_arguments,
        run_evaluate,
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


def bad_input_errors():
    """What a bad argument, file, dataset, device or config raises: one line, status 2.

    ValueError (a bad value), OSError (a missing or unreadable file), ImportError
    (a missing extra), and TensorFlow's InvalidArgumentError (bad data met
    inside a ``tf.data`` pipeline).
    """
    errors = (ValueError, OSError, ImportError)
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "errors"):
        errors += (tf.errors.InvalidArgumentError,)
    return errors


def main(argv=None):
    """Runs ``keras-coordatt`` with ``argv`` (default: the process arguments).

    Args:
        argv: the arguments after the program name, for example
            ``["table", "--widths", "1.0"]``.

    Returns:
        The exit status (see `run_reporting_errors`).
    """
    args = build_parser().parse_args(argv)
    return run_reporting_errors(f"keras-coordatt {args.command}", lambda: args.run(args),
                                args.debug)


def run_reporting_errors(prefix, run, debug=False):
    """Runs ``run()`` under the one error convention every command follows.

    A bad argument, file, dataset, device or config is one line on stderr
    naming it, and exit status 2 (``debug`` shows the traceback instead); a
    check that fails (a diverged run) is status 1; an interrupt is 130, and
    the same command continues from what was written.

    Returns:
        ``run()``'s exit status, or the status above.
    """
    from keras_coordatt.training.callbacks import TrainingDiverged

    try:
        return run()
    except KeyboardInterrupt:
        print(f"\n{prefix}: interrupted; what was written is kept, and the same command "
              "continues from it", file=sys.stderr)
        return 130
    except TrainingDiverged as error:
        if debug:
            raise
        print(f"{prefix}: {error}", file=sys.stderr)
        return 1
    except bad_input_errors() as error:
        if debug:
            raise
        print(f"{prefix}: {_one_line(error)}", file=sys.stderr)
        return 2


def _one_line(error):
    """The error's message on one line (TensorFlow's errors keep theirs in ``message``)."""
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
