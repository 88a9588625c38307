"""The package's shape: one top-level package, imports pointing down, a light import."""

import ast
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_coordatt"

# The architecture, bottom to top: a module may import its own tier and the
# tiers below; within a tier, only its own subpackage (data, training and
# export are peers that do not know each other).
TIERS = (
    ("layers", "preprocessing", "startup", "plotting", "errors", "optimizers"),
    ("models",),
    ("tasks",),
    ("data",),
    ("training", "export", "visualize"),
    ("prediction",),
    ("cli",),
)


def tier_of(part):
    for index, names in enumerate(TIERS):
        if part in names:
            return index
    raise AssertionError(f"keras_coordatt.{part} is in no tier of TIERS; add it where it belongs")


def library_modules(package):
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield path, parts


def imported_modules(path, parts):
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    package = parts if path.name == "__init__.py" else parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def is_part(package, name):
    return (package / name).is_dir() or (package / f"{name}.py").is_file()


def upward_imports(package=PACKAGE):
    """Every import in ``package`` that points up the tiers or into the repo's training/."""
    problems = {}
    for path, parts in library_modules(package):
        if len(parts) == 1:  # keras_coordatt/__init__.py: the facade over every tier
            continue
        source = tier_of(parts[1])
        for line, module in imported_modules(path, parts):
            names = module.split(".")
            where = f"{path.relative_to(package.parent)}:{line}"
            if names[0] == "training":
                problems.setdefault((where, "training"),
                                    f"{where} imports the repository's training/ ({module})")
            if names[0] != "keras_coordatt" or len(names) < 2 or not is_part(package, names[1]):
                continue
            target = tier_of(names[1])
            if target > source or (target == source and names[1] != parts[1]):
                problems.setdefault((where, names[1]), f"{where}: keras_coordatt.{parts[1]} "
                                                       f"imports keras_coordatt.{names[1]}")
    return list(problems.values())


def test_library_imports_point_down_the_architecture():
    assert upward_imports() == []


def test_the_import_check_reports_upward_sideways_and_application_imports(tmp_path):
    package = tmp_path / "keras_coordatt"
    for folder in ("models", "training", "export"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("from keras_coordatt import training\n")
    (package / "models" / "probe.py").write_text(
        "from keras_coordatt.training import train\nimport training.demo\n")
    (package / "export" / "probe.py").write_text("from ..training import train\n")
    (package / "training" / "probe.py").write_text("from keras_coordatt.models import probe\n")
    problems = upward_imports(package)
    assert len(problems) == 3, problems
    assert sorted(problems) == [
        "keras_coordatt/export/probe.py:1: keras_coordatt.export imports keras_coordatt.training",
        "keras_coordatt/models/probe.py:1: keras_coordatt.models imports keras_coordatt.training",
        "keras_coordatt/models/probe.py:2 imports the repository's training/ (training.demo)",
    ]


def test_every_part_of_the_library_has_a_tier():
    for path in PACKAGE.iterdir():
        if (path.is_dir() and (path / "__init__.py").exists()) or (
                path.suffix == ".py" and path.stem != "__init__"):
            tier_of(path.stem)


def test_import_keras_coordatt_stays_light():
    """Layers and models only: no data pipeline, trainer, exporter or plotting on import."""
    code = (
        "import sys, keras; before = set(sys.modules); import keras_coordatt; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    added = result.stdout.split()
    heavy = [m for m in added if m.split(".")[0] in ("matplotlib", "tensorflow_datasets", "torch",
                                                      "h5py", "ai_edge_litert", "onnx")]
    engine = [m for m in added if m.startswith(("keras_coordatt.data", "keras_coordatt.training",
                                                "keras_coordatt.export", "keras_coordatt.cli"))]
    assert (heavy, engine) == ([], [])
    assert "keras_coordatt.models" in added and "keras_coordatt.layers" in added


def test_the_dense_tasks_data_and_the_trainer_import_without_tensorflow():
    """What a GPU machine with JAX only loads to train detection or segmentation: with
    TensorFlow hidden (tests/no_tensorflow), the modules import and choose the PyDataset
    loader; only the classifier's tf.data pipeline says what to install."""
    tests = pathlib.Path(__file__).resolve().parent
    code = (
        "import keras_coordatt.data as data\n"
        "from keras_coordatt.data.core.batches import resolve_loader\n"
        "from keras_coordatt.data.task_data import load_task_datasets\n"
        "from keras_coordatt.training.trainer import train\n"
        "from keras_coordatt.training.tasks import evaluate_segmentation\n"
        "print(resolve_loader('auto'), data.load_task_datasets is load_task_datasets)\n"
        "try:\n"
        "    data.load_datasets\n"
        "except ImportError as error:\n"
        "    print('refused:', error)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "PYTHONPATH": os.pathsep.join([str(tests / "no_tensorflow"), str(tests.parent)])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    first, refused = result.stdout.splitlines()
    assert first.split() == ["python", "True"]
    assert "classifier's input pipeline) is built on tf.data" in refused
    assert "pip install tensorflow-cpu" in refused


def test_the_elpv_images_come_with_the_demo_extra_not_with_train():
    """Training on one's own data does not download the 91 MB ELPV wheel; make demo does."""
    import configparser

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    extras = {name: value.split() for name, value in setup["options.extras_require"].items()}
    assert not [r for r in extras["train"] if r.startswith("elpv-dataset")]
    assert [r for r in extras["demo"] if r.startswith("elpv-dataset")]
    makefile = (ROOT / "Makefile").read_text()
    install = makefile.split("$(DEMO_STAMP):", 1)[1].splitlines()[1]
    assert "demo" in install.split("-e", 1)[1], install


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (path,) = out.glob("keras_coordatt-*.whl")
    return path


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_package(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert archive.read(top_level).decode().split() == ["keras_coordatt"]
    assert {name.split("/")[0] for name in names if not ".dist-info/" in name} == {"keras_coordatt"}
    assert "keras_coordatt/training/trainer.py" in names and "keras_coordatt/data/classification/elpv.py" in names


@pytest.mark.slow
def test_the_train_command_runs_from_the_wheel_without_a_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = ("import keras_coordatt.training, keras_coordatt.cli as cli, sys; "
            "print(keras_coordatt.training.__file__); sys.exit(cli.main(['train', '--help']))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(target))
    assert "--attention" in result.stdout and "--dataset" in result.stdout
