"""The one error convention of the ``keras-coordatt`` commands and the repository's scripts.

A bad argument, file, dataset, device or config is one line on stderr naming
it, and exit status 2; a run or check that ran and failed (a diverged loss,
an export that disagrees with Keras) is status 1; an interrupt is 130, and
the same command continues from what was written.

Example:

    import sys
    from keras_coordatt.errors import run_reporting_errors

    sys.exit(run_reporting_errors("my_script", lambda: main(sys.argv[1:])))
"""

import sys


class CheckFailed(RuntimeError):
    """A run or check that ran and failed its check: exit status 1, its message on stderr."""


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


def run_reporting_errors(prefix, run, debug=False):
    """Runs ``run()`` under the convention above, each message starting with ``prefix``.

    Args:
        prefix: what the messages start with, e.g. ``"keras-coordatt train"``.
        run: a function of no arguments returning an exit status.
        debug: raise a bad input or a failed check (its traceback) instead
            of the one line.

    Returns:
        ``run()``'s exit status, or 2, 1 or 130 as above.
    """
    try:
        return run()
    except KeyboardInterrupt:
        print(f"\n{prefix}: interrupted; what was written is kept, and the same command "
              "continues from it", file=sys.stderr)
        return 130
    except CheckFailed as error:
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
