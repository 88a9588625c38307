"""A run's folder: one config per folder, files written whole, nothing old lost by accident."""

import dataclasses
import json
import os
import shutil
import tempfile

# Fields that say how a run is carried out, not what it trains: a run
# continues with other values of these (more epochs, another device list).
OPERATIONAL_FIELDS = frozenset({
    "epochs", "resume", "verbose", "checkpoint_every_steps", "keep_checkpoints", "strategy",
    "devices", "data_dir", "output_dir", "cache", "jit", "overwrite", "compilation_cache",
    "deadline_minutes",
})
# What the trainer writes into a run folder; --overwrite removes these and nothing else.
RUN_FILES = ("checkpoints", "tensorboard", "config.json", "history.csv", "metrics.json",
             "model.keras", "best.weights.h5", "last.weights.h5", "training_curves.png", "preset")
CONFIG_FILE = "config.json"


def claim(config):
    """Checks that ``config.output_dir`` may take this run; returns whether it is new.

    A folder that holds a run of another config (any field but the
    operational ones differs), or any run when ``resume`` is off, is refused
    with a ValueError naming the differences, unless ``overwrite`` is set:
    then the trainer's files of the old run are deleted (other files stay).
    """
    folder = config.output_dir
    if not os.path.isdir(folder):
        return True
    old = _saved_config(folder)
    has_run = old is not None or os.path.isdir(os.path.join(folder, "checkpoints"))
    if not has_run:
        return False
    differences = _differences(old or {}, dataclasses.asdict(config))
    if differences or not config.resume:
        if not config.overwrite:
            reason = (f"a run of another config ({'; '.join(differences)})" if differences
                      else "a run, and resume is off")
            raise ValueError(
                f"{folder} holds {reason}; choose another --output_dir, or pass --overwrite "
                f"true to replace that run (its checkpoints, weights and model are deleted)"
            )
        for name in RUN_FILES:
            path = os.path.join(folder, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    return False


def completed_run(config):
    """The ``metrics.json`` of the run in ``config.output_dir`` if it is this config's (the
    operational fields aside) and was trained to ``config.epochs``; None otherwise (no run,
    an unfinished one, or another config's, which the trainer then refuses by name)."""
    folder = config.output_dir
    saved, metrics_path = _saved_config(folder), os.path.join(folder, "metrics.json")
    if saved is None or not os.path.exists(metrics_path):
        return None
    if _differences(saved, dataclasses.asdict(config)):
        return None
    with open(metrics_path) as f:
        metrics = json.load(f)
    # Runs from before the deadline option record no epochs_trained: they ran to "epochs".
    if metrics.get("epochs_trained", metrics.get("epochs", 0)) < config.epochs:
        return None
    return metrics


def release_if_empty(config, created):
    """Removes a folder this run created if it holds no checkpoint (a run that failed early)."""
    checkpoints = os.path.join(config.output_dir, "checkpoints")
    if created and os.path.isdir(config.output_dir) and not (
            os.path.isdir(checkpoints) and os.listdir(checkpoints)):
        shutil.rmtree(config.output_dir)


def write_text(path, text):
    """Writes ``text`` to ``path`` whole: a temporary file renamed into place."""
    with _replacing(path) as temporary:
        with open(temporary, "w") as f:
            f.write(text)


def save_model(model, path):
    """``model.save(path)`` into a temporary file first, so ``path`` is never half written."""
    with _replacing(path) as temporary:
        model.save(temporary)


def save_weights(model, path):
    """``model.save_weights(path)`` likewise."""
    with _replacing(path) as temporary:
        model.save_weights(temporary)


def save_preset(model, path, **card):
    """`save_to_preset` into a temporary folder renamed onto ``path``: never half written."""
    from keras_coordatt.models.presets import save_to_preset

    folder = os.path.abspath(path)
    temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.", dir=os.path.dirname(folder))
    try:
        save_to_preset(model, temporary, **card)
        if os.path.exists(folder):
            shutil.rmtree(folder)
        os.replace(temporary, folder)
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary)
    return folder


def copy_file(source, path):
    """Copies ``source`` to ``path`` likewise."""
    with _replacing(path) as temporary:
        shutil.copyfile(source, temporary)


class _replacing:
    """A temporary path beside ``path`` with the same suffix, renamed onto it on success."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        folder, name = os.path.split(os.path.abspath(self.path))
        suffix = ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]
        handle, self.temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=folder)
        os.close(handle)
        os.remove(self.temporary)
        return self.temporary

    def __exit__(self, kind, value, traceback):
        if kind is None:
            os.replace(self.temporary, self.path)
        elif os.path.exists(self.temporary):
            os.remove(self.temporary)
        return False


def _saved_config(folder):
    path = os.path.join(folder, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _differences(old, new):
    return [
        f"{name}: {old.get(name)!r} there, {new[name]!r} now"
        for name in sorted(new)
        if name not in OPERATIONAL_FIELDS and name in old and old[name] != new[name]
    ]
