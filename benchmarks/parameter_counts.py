"""The paper's tables of parameters and multiply-adds, as files: `keras-coordatt table`'s three grids.

Runs the command for the classification backbones (224x224, 1000 classes), the detection
network (SSDLite320, COCO) and the segmentation network (DeepLabV3, VOC), each in its own
process, and writes what it printed as classification.csv, detection.csv and
segmentation.csv (with .json) into --results.

    python benchmarks/parameter_counts.py       # about 3 minutes on 2 cores
"""

import argparse
import os
import shutil
import subprocess
import sys

from machine import command_line
from machine import results_folder
from machine import write_results

TASKS = ("classification", "detection", "segmentation")


def markdown_rows(text):
    """The rows of the one markdown table in ``text``, as dicts by its header."""
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    header, body = cells[0], cells[2:]
    # A name used twice ("Paper" beside Params and beside M-Adds) takes the column before it.
    header = [f"{header[i - 1]} ({name.lower()})" if header.count(name) > 1 else name
              for i, name in enumerate(header)]
    return [dict(zip(header, row)) for row in body]


def keras_coordatt():
    """The command beside this interpreter (a virtual environment's), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "keras-coordatt")
    return beside if os.path.exists(beside) else shutil.which("keras-coordatt")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--results", default=results_folder("parameter-counts"),
                        help="folder for the .csv / .json files (default: docs/results/parameter-counts)")
    args = parser.parse_args(argv)
    for task in args.tasks:
        command = [keras_coordatt(), "table", "--task", task]
        print(f"running keras-coordatt table --task {task}", file=sys.stderr, flush=True)
        printed = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        print(printed)
        write_results(args.results, task, markdown_rows(printed),
                      command=command_line("python benchmarks/parameter_counts.py", argv),
                      notes=[f"keras-coordatt table --task {task}: "
                             + printed.strip().splitlines()[0]])


if __name__ == "__main__":
    main()
