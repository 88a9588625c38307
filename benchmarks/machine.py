"""What the benchmarks share: the machine they ran on, where their results go, and timing in turns."""

import os
import sys

# The repository root, for the application's result writer (training/results.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.results import command_line  # noqa: E402,F401
from training.results import cpu_model  # noqa: E402,F401
from training.results import results_folder  # noqa: E402,F401
from training.results import write_results  # noqa: E402,F401


def median_ms_in_turns(functions, rounds):
    """{key: median milliseconds} of each zero-argument function, called in
    turns round after round (so a slow patch of the machine hits all alike).
    A function's first output is read back to the host, which waits for it."""
    import statistics
    import time

    import numpy as np

    times = {key: [] for key in functions}
    for _ in range(rounds):
        for key, function in functions.items():
            start = time.perf_counter()
            np.asarray(function()[0])
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) * 1000 for key, values in times.items()}


def matches(match, name):
    """Whether row ``name`` is selected by ``--match`` (comma-separated parts; empty: all)."""
    return not match or any(part in name for part in match.split(","))
