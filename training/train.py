"""Train one of the paper's runs by name: ``python -m training.train --config NAME``.

The configs are the JSON files in ``training/configs/`` (one per row of the
paper's classification tables, and the ELPV rows); any ``--field value``
overrides a field. The same trainer runs as ``keras-coordatt train``, which
takes a config file's path instead of a name.

    python -m training.train --config imagenet_mobilenet_v2_10_ca --data_dir ~/tensorflow_datasets
    python -m training.train --config elpv_mobilenet_v2_se --strategy mirrored --precision mixed_float16
"""

import argparse
import os
import sys

from keras_coordatt.errors import run_reporting_errors
from keras_coordatt.training import add_config_arguments
from keras_coordatt.training import train_from_args

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train a network with Coordinate Attention (or a baseline) by the paper's "
        "recipe, from a config in training/configs/.",
    )
    add_config_arguments(parser, search_dirs=[CONFIG_DIR])
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    args = parser.parse_args(argv)
    return run_reporting_errors("python -m training.train",
                                lambda: train_from_args(args, search_dirs=[CONFIG_DIR]), args.debug)


if __name__ == "__main__":
    sys.exit(main())
