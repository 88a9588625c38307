"""The ``keras-coordatt`` command line.

Each subcommand is a pair of functions, one adding its arguments to an
`argparse` parser and one running it, registered in `COMMANDS`; a new
subcommand is two functions and one entry there.

Example:

    $ keras-coordatt table
    $ keras-coordatt table --families mobilenetv2 --widths 1.0 --attentions none ca
"""

import argparse
import sys

import keras

from keras_coordatt import models

FAMILIES = ("mobilenetv2", "mobilenext", "efficientnet")
ATTENTIONS = ("none", "se", "cbam", "ca")
WIDTHS = (1.0, 0.75, 0.5)

# The paper's Params and M-Adds (Tables 2 and 3), by (family, width, row).
PUBLISHED = {
    ("mobilenetv2", 1.0, "none"): ("3.5M", "300M"),
    ("mobilenetv2", 1.0, "se"): ("3.89M", "300M"),
    ("mobilenetv2", 1.0, "cbam"): ("3.89M", "300M"),
    ("mobilenetv2", 1.0, "ca"): ("3.95M", "310M"),
    ("mobilenext", 1.0, "none"): ("3.5M", "300M"),
    ("mobilenext", 1.0, "se"): ("3.89M", "300M"),
    ("mobilenext", 1.0, "ca"): ("4.09M", "330M"),
    ("mobilenext", 1.0, "ca (after dw2)"): ("4.09M", "330M"),
}


def add_table_arguments(parser):
    parser.add_argument(
        "--families",
        nargs="+",
        choices=FAMILIES,
        default=list(FAMILIES),
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
        choices=ATTENTIONS,
        default=list(ATTENTIONS),
        help="attention blocks to compare (default: none se cbam ca)",
    )
    parser.add_argument(
        "--input-size", type=int, default=224, help="square input size (default: 224)"
    )
    parser.add_argument(
        "--classes", type=int, default=1000, help="classifier classes (default: 1000)"
    )


MODEL_NAMES = {
    "mobilenetv2": "MobileNetV2",
    "mobilenext": "MobileNeXt",
    "efficientnet": "EfficientNet-B0",
}


def table_rows(families, widths, attentions):
    """``(family, width, row label, builder, builder kwargs)`` for every row."""
    rows = []
    if "mobilenetv2" in families:
        rows += [
            ("mobilenetv2", width, attention, models.MobileNetV2,
             {"alpha": width, "attention": attention})
            for width in widths
            for attention in attentions
        ]
    if "mobilenext" in families:
        for width in widths:
            rows += [
                ("mobilenext", width, attention, models.MobileNeXt,
                 {"alpha": width, "attention": attention})
                for attention in attentions
            ]
            # The placement that gives the published 4.09M (see models.mobilenext).
            if "ca" in attentions:
                rows.append(
                    ("mobilenext", width, "ca (after dw2)", models.MobileNeXt,
                     {"alpha": width, "attention": "ca", "attention_position": "last"})
                )
    if "efficientnet" in families:
        # B0 has one width; its own SE is the baseline the paper swaps for CA.
        rows += [
            ("efficientnet", 1.0, attention, models.EfficientNetB0, {"attention": attention})
            for attention in attentions
        ]
    return rows


def run_table(args):
    """Prints the paper's Table 2 grid (and MobileNeXt, EfficientNet-B0) as markdown."""
    size = args.input_size
    print(
        f"Trainable parameters and multiply-adds at {size}x{size}, "
        f"{args.classes} classes; the paper's figures beside ours.\n"
    )
    print("| Model | Width | Attention | Params | Paper | M-Adds | Paper |")
    print("|---|---|---|---:|---:|---:|---:|")
    for family, width, label, builder, kwargs in table_rows(
        args.families, args.widths, args.attentions
    ):
        model = builder(input_shape=(size, size, 3), classes=args.classes, **kwargs)
        params = models.count_trainable_params(model)
        macs = models.count_macs(model)
        paper_params, paper_macs = PUBLISHED.get((family, width, label), ("", ""))
        if (family, label) == ("efficientnet", "se"):
            label = "se (EfficientNet's own)"
        print(
            f"| {MODEL_NAMES[family]} | {width} | {label} | {params:,} | "
            f"{paper_params} | {macs / 1e6:.1f}M | {paper_macs} |"
        )
        # Thirty models at 224x224: free each graph before the next.
        keras.utils.clear_session()
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


def run_convert(args):
    """Converts a PyTorch checkpoint with `keras_coordatt.models.convert`."""
    from keras_coordatt.models import convert
    from keras_coordatt.models import count_trainable_params

    size = args.input_size
    try:
        model = convert(
            args.checkpoint,
            args.output,
            layout=args.layout,
            classes=args.classes,
            input_shape=(size, size, 3),
        )
    except (OSError, ValueError) as error:
        print(f"keras-coordatt convert: {error}", file=sys.stderr)
        return 1
    print(
        f"{args.checkpoint} -> {args.output}: {model.name}, "
        f"{count_trainable_params(model):,} trainable parameters"
    )
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
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-coordatt",
        description="Coordinate Attention (Hou, Zhou, Feng, CVPR 2021) for Keras 3.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        subparser = subcommands.add_parser(name, help=help_text, description=help_text)
        add_arguments(subparser)
        subparser.set_defaults(run=run)
    return parser


def main(argv=None):
    """Runs ``keras-coordatt`` with ``argv`` (default: the process arguments).

    Args:
        argv: the arguments after the program name, for example
            ``["table", "--widths", "1.0"]``.

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
