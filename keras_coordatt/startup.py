"""TensorFlow's start-up lines, shown once and only at the level ``TF_CPP_MIN_LOG_LEVEL`` asks for.

TensorFlow 2.21 writes its start-up notices (oneDNN, CPU instructions)
while it loads, before its logging is initialised, so they ignore
``TF_CPP_MIN_LOG_LEVEL`` and come twice (two of its libraries print them).
`quiet_tensorflow_startup` catches what the import writes to the process'
stderr and writes it back without the notices below the asked-for level and
without repeats; everything else comes back as it was. Set
``KERAS_COORDATT_RAW_STDERR=1`` to leave the import's output untouched.
"""

import contextlib
import os
import re
import sys
import tempfile

# absl's format: severity letter, date, time, thread, file:line] message.
ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\]]+\] (.*)$")
ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def filtered(lines, min_level):
    """The lines to show: absl lines at ``min_level`` or above, each message once."""
    seen, kept, dropping = set(), [], False
    for line in lines:
        if line.rstrip("\n") == ABSL_PREAMBLE:
            continue
        match = ABSL_LINE.match(line.rstrip("\n"))
        if match:
            severity, message = match.groups()
            dropping = SEVERITY[severity] < min_level or message in seen
            seen.add(message)
        # A line that is not absl's own continues the message before it.
        if not dropping:
            kept.append(line)
    return kept


@contextlib.contextmanager
def quiet_tensorflow_startup():
    """Filters what is written to file descriptor 2 inside the block (see `filtered`)."""
    if "tensorflow" in sys.modules or os.environ.get("KERAS_COORDATT_RAW_STDERR"):
        yield
        return
    try:
        min_level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        min_level = 0
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            sys.stderr.write("".join(filtered(text.splitlines(keepends=True), min_level)))
            sys.stderr.flush()
