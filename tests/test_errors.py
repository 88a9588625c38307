"""keras_coordatt.errors: the one error convention of the commands and the repository's scripts."""

import pytest

from keras_coordatt.errors import CheckFailed
from keras_coordatt.errors import run_reporting_errors


def raising(error):
    def run():
        raise error

    return run


def test_a_run_that_returns_gives_its_own_status(capsys):
    assert run_reporting_errors("tool", lambda: 3) == 3
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("error", [ValueError("bad\n  value"), FileNotFoundError("no file"),
                                   ImportError("pip install it")])
def test_bad_input_is_one_line_naming_it_and_status_2(capsys, error):
    assert run_reporting_errors("tool", raising(error)) == 2
    message = " ".join(str(error).split())
    assert capsys.readouterr().err == f"tool: {message}\n"


def test_a_failed_check_is_status_1_with_its_message(capsys):
    assert run_reporting_errors("tool", raising(CheckFailed("2 of 3 files disagree"))) == 1
    assert capsys.readouterr().err == "tool: 2 of 3 files disagree\n"


def test_a_diverged_run_and_a_failed_export_are_failed_checks():
    from keras_coordatt.export import ExportCheckError
    from keras_coordatt.training import TrainingDiverged

    assert issubclass(TrainingDiverged, CheckFailed) and issubclass(ExportCheckError, CheckFailed)
    assert run_reporting_errors("t", raising(ExportCheckError("off", {}))) == 1
    assert run_reporting_errors("t", raising(TrainingDiverged("NaN"))) == 1


def test_an_interrupt_is_130_and_says_the_command_continues(capsys):
    assert run_reporting_errors("tool", raising(KeyboardInterrupt())) == 130
    assert "tool: interrupted; what was written is kept" in capsys.readouterr().err


@pytest.mark.parametrize("error", [ValueError("bad"), CheckFailed("off")])
def test_debug_shows_the_traceback_instead(error):
    with pytest.raises(type(error)):
        run_reporting_errors("tool", raising(error), debug=True)


def test_other_errors_are_bugs_and_keep_their_traceback():
    with pytest.raises(ZeroDivisionError):
        run_reporting_errors("tool", lambda: 1 / 0)


def test_tensorflows_bad_data_error_is_bad_input(capsys):
    tf = pytest.importorskip("tensorflow")

    error = tf.errors.InvalidArgumentError(None, None, "Input to reshape\nhas 3 values")
    assert run_reporting_errors("tool", raising(error)) == 2
    assert capsys.readouterr().err == "tool: Input to reshape has 3 values\n"


def test_the_scripts_and_the_cli_use_the_library_convention_not_each_other():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    scripts = sorted((root / "training").glob("*.py"))
    using = [path.name for path in scripts if "run_reporting_errors" in path.read_text()]
    assert "train.py" in using
    assert not [path.name for path in scripts if "keras_coordatt.cli" in path.read_text()]
    assert all("from keras_coordatt.errors import run_reporting_errors" in
               (root / "training" / name).read_text() for name in using)


def test_training_without_tensorflow_says_what_to_install_in_one_line(tmp_path):
    """The GPU machines have JAX and no TensorFlow; the classifier's tf.data pipeline needs it
    (detection and segmentation train without it: test_train_backends.py)."""
    import os
    import subprocess
    import sys

    script = ("import sys; sys.modules['tensorflow'] = None\n"  # as if not installed
              "from keras_coordatt.cli import main\n"
              f"sys.exit(main(['train', '--dataset', 'elpv', '--output_dir', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": "jax"}, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("keras-coordatt train:")]
    assert len(lines) == 1 and "pip install tensorflow-cpu==2.21.0" in lines[0]
    assert "Traceback" not in done.stderr
