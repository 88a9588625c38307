"""The files behind the docs' figures: what a command measured, with the machine, date and versions.

Every benchmark and demo writes its table through ``write_results``, by default into
``docs/results/<experiment>/``, where the results pages link it:

- ``NAME.csv``: a ``# key: value`` header (command, date, CPU and cores, versions, notes),
  then the rows; ``csv.DictReader`` reads it after the ``#`` lines
  (``pandas.read_csv(path, comment="#")``);
- ``NAME.json``: the same header as fields and the rows as a list of objects.

The next run of the command overwrites both.
"""

import csv
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "results")
# What a figure depends on, recorded where installed.
PACKAGES = ("keras", "tensorflow", "tensorflow-cpu", "ai-edge-litert", "jax", "torch", "numpy")


def cpu_model():
    """The CPU's model name (Linux /proc/cpuinfo), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def versions():
    """{name: version} of Python and of the installed packages in ``PACKAGES``."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def environment():
    """The machine, the date and the versions a result was measured with."""
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu_model(), "cores": os.cpu_count(), "system": platform.platform(),
            "versions": versions()}


def results_folder(experiment):
    """``docs/results/<experiment>`` of this checkout: where the docs read the experiment's files."""
    return os.path.join(RESULTS, experiment)


def add_results_argument(parser, experiment):
    """``--results DIR``: where a script writes its tables (``results_destination``)."""
    parser.add_argument(
        "--results", default=None, metavar="DIR",
        help=f"folder for the result tables as CSV / JSON with the machine, date and versions "
        f"(default: docs/results/{experiment}, where the docs read them; a slice of the data, "
        "--limit_train or --limit_eval, writes none unless given; 'none': not at all)")


def add_script_arguments(parser, experiment):
    """``--results DIR`` and ``--debug``, the arguments every experiment script ends with."""
    add_results_argument(parser, experiment)
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")


def run_script(program, args, argv, run):
    """``run(args)`` with the command line in ``args.command``, errors as one line."""
    from keras_coordatt.errors import run_reporting_errors

    args.command = command_line(program, argv)
    return run_reporting_errors(program, lambda: run(args), args.debug)


def results_destination(args, experiment):
    """The folder ``--results`` names, else the docs' one; None for a slice or 'none'."""
    if args.results:
        return None if args.results == "none" else args.results
    sliced = any(getattr(args, key, None) is not None for key in ("limit_train", "limit_eval"))
    return None if sliced else results_folder(experiment)


def command_line(program, argv=None):
    """The command as typed: ``program`` and the arguments (``sys.argv[1:]`` by default)."""
    return shlex.join(shlex.split(program) + list(sys.argv[1:] if argv is None else argv))


def write_results(folder, name, rows, *, command, notes=(), recorded=None):
    """Writes ``folder/name.csv`` and ``folder/name.json``; returns their paths (None, and
    nothing written, for the folder None or "none": ``--results none``).

    ``rows``: dicts with the same keys, one a table row. ``command``: what produced them
    (and what rewrites them). ``recorded``: for numbers taken from an earlier run's log
    rather than measured by this process, that run's environment (what is known of it) and
    optionally a ``source`` line; the files then say so.
    """
    if folder in (None, "none"):
        return None
    if not rows:
        raise ValueError(f"no rows to write for {name}")
    header = {"command": command}
    if recorded is None:
        header.update(environment())
    else:
        header.update(recorded)
        header.setdefault("source", f"recorded from an earlier run, not measured by this file's "
                                    f"writer; the next `{command}` overwrites it")
    header["notes"] = list(notes)
    os.makedirs(folder, exist_ok=True)
    csv_path = os.path.join(folder, f"{name}.csv")
    json_path = os.path.join(folder, f"{name}.json")
    columns = list(rows[0])
    with open(csv_path, "w", newline="") as f:
        for key, value in header.items():
            if key == "versions":
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            for line in (value if isinstance(value, list) else [value]):
                f.write(f"# {key}: {line}\n")
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    with open(json_path, "w") as f:
        json.dump({**header, "rows": rows}, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(csv_path)} and {os.path.basename(json_path)}", file=sys.stderr)
    return csv_path, json_path


def read_results(path):
    """(header, rows) of a ``.csv`` written by ``write_results``: every value a string."""
    header, lines = {}, []
    with open(path, newline="") as f:
        for line in f:
            if line.startswith("# "):
                key, _, value = line[2:].rstrip("\n").partition(": ")
                header.setdefault(key, []).append(value)
            else:
                lines.append(line)
    return header, list(csv.DictReader(lines))
