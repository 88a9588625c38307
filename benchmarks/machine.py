"""What the benchmarks share: the machine they ran on, and timing in turns."""

import platform


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
