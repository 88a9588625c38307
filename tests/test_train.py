"""The trainer: configs, artefacts, resume after SIGKILL, interruption, NaN, distribution."""

import dataclasses
import json
import os
import pathlib
import socket

import numpy as np
import pytest

from keras_coordatt.training import TrainConfig
from keras_coordatt.training import load_config
from keras_coordatt.training.attention_monitor import read_records
from keras_coordatt.training.config import config_names
from runs import run_cli
from runs import tiny
from runs import weights_of
from training.train import CONFIG_DIR

pytestmark = pytest.mark.requires_tensorflow


# --- configuration -----------------------------------------------------------

def test_every_shipped_config_loads_and_validates():
    assert len(config_names(CONFIG_DIR)) >= 20
    for name in config_names(CONFIG_DIR):
        load_config(name, [CONFIG_DIR]).validate()


def test_an_eval_dataset_is_refused_for_classification():
    with pytest.raises(ValueError, match="eval_dataset='tfds:voc/2007': for detection and "
                                         "segmentation only"):
        TrainConfig(eval_dataset="tfds:voc/2007").validate()
    TrainConfig(task="detection", eval_dataset="tfds:voc/2007").validate()


def test_paper_recipe_is_the_default():
    config = TrainConfig()
    assert (config.learning_rate, config.batch_size, config.momentum, config.weight_decay,
            config.epochs, config.label_smoothing, config.mixup_alpha) == (
        0.05, 256, 0.9, 4e-5, 200, 0.0, 0.0)


def test_learning_rate_scales_linearly_with_batch():
    assert TrainConfig(batch_size=64).scaled_learning_rate == pytest.approx(0.0125)
    assert TrainConfig(batch_size=1024).scaled_learning_rate == pytest.approx(0.2)


def test_command_line_overrides_the_config_file():
    import argparse

    from keras_coordatt.training import add_config_arguments
    from keras_coordatt.training import config_from_args

    parser = add_config_arguments(argparse.ArgumentParser(), [CONFIG_DIR])
    config = config_from_args(parser.parse_args(
        ["--config", "imagenet_mobilenet_v2_10_ca", "--epochs", "3", "--attention", "none",
         "--jit", "true", "--batch_size", "32"]), [CONFIG_DIR])
    assert (config.epochs, config.attention, config.jit, config.batch_size) == (3, None, True, 32)
    assert config.dataset == "tfds:imagenet2012"


def test_unknown_config_field_is_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"epochs": 3, "learning_rat": 0.1}))
    with pytest.raises(ValueError, match="learning_rat"):
        load_config(str(path))


@pytest.mark.parametrize("field, value", [("strategy", "tpu"), ("precision", "float8"),
                                          ("epochs", 0), ("model", "resnet50"),
                                          ("input_normalization", "caffe"),
                                          ("deadline_minutes", 0)])
def test_bad_config_values_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value}).validate()


def test_attention_names_are_checked_with_the_valid_ones_listed():
    with pytest.raises(ValueError, match="attention='coordatt2' is not known for mobilenet_v2; "
                                         "expected one of none, ca, ca_h, ca_ln, ca_w, cbam, eca, ela, ela_t, se, simam"):
        TrainConfig(attention="coordatt2").validate()
    TrainConfig(model="efficientnet_b0", attention="efficientnet_se").validate()
    with pytest.raises(ValueError, match="efficientnet_se"):
        TrainConfig(model="mobilenet_v2", attention="efficientnet_se").validate()


def test_imagenet_normalization_is_refused_where_the_network_normalises_itself():
    with pytest.raises(ValueError, match="input_normalization='imagenet': efficientnet_b0 takes "
                                         "raw \\[0, 255\\] pixels"):
        TrainConfig(model="efficientnet_b0", input_normalization="imagenet").validate()
    config = TrainConfig(input_normalization="imagenet", eval_crop_fraction=1.0).validate()
    assert config.preprocessing.per_channel and config.preprocessing.crop_fraction == 1.0


def test_every_train_option_has_a_sentence_of_help():
    import argparse

    from keras_coordatt.training import add_config_arguments

    parser = add_config_arguments(argparse.ArgumentParser())
    options = [action for action in parser._actions if action.dest != "help"]
    assert len(options) == 1 + len(dataclasses.fields(TrainConfig))
    for action in options:
        words = action.help.split()
        assert len(words) >= 3 and not action.help.startswith("(default"), action.dest


def test_a_config_name_outside_the_repository_says_where_the_configs_are(tmp_path):
    with pytest.raises(FileNotFoundError, match="training/configs/"):
        load_config("elpv_mobilenet_v2_ca")
    with pytest.raises(FileNotFoundError, match="configs by name: .*elpv_mobilenet_v2_ca"):
        load_config("elpv_mobilenet_v3_ca", [CONFIG_DIR])
    assert load_config("elpv_mobilenet_v2_ca", [CONFIG_DIR]).dataset == "elpv"


# Each paper config as it was when it was a file of its own (NAME.json, before
# the experiments became one file per experiment with its attentions).
CONFIGS_BEFORE_SPLIT = json.loads(
    (pathlib.Path(__file__).parent / "data" / "configs_resolved.json").read_text())


def test_the_config_names_are_those_of_the_files_before_the_split():
    assert config_names(CONFIG_DIR) == sorted(CONFIGS_BEFORE_SPLIT)


@pytest.mark.parametrize("name", sorted(CONFIGS_BEFORE_SPLIT))
def test_every_config_name_gives_the_config_its_file_gave_before_the_split(name):
    assert load_config(name, [CONFIG_DIR]) == TrainConfig(**CONFIGS_BEFORE_SPLIT[name])


def test_a_variant_path_loads_as_the_variant_of_the_file_beside_it():
    config = load_config(os.path.join(CONFIG_DIR, "coco_ssdlite320_mobilenet_v2_ca.json"))
    assert (config.attention, config.output_dir, config.task) == (
        "ca", "runs/coco_ssdlite320_mobilenet_v2_ca", "detection")


def test_an_experiment_name_alone_is_an_error_listing_its_variants():
    variants = ", ".join(f"coco_ssdlite320_mobilenet_v2_{v}" for v in ("none", "se", "cbam", "ca"))
    for name in ("coco_ssdlite320_mobilenet_v2",
                 os.path.join(CONFIG_DIR, "coco_ssdlite320_mobilenet_v2.json")):
        with pytest.raises(ValueError) as error:
            load_config(name, [CONFIG_DIR])
        assert str(error.value) == (
            f"{os.path.join(CONFIG_DIR, 'coco_ssdlite320_mobilenet_v2.json')} runs once per "
            f"attention: pass one of {variants}")


def test_an_unknown_attention_variant_names_the_file_and_its_variants():
    with pytest.raises(ValueError, match=r"coco_ssdlite320_mobilenet_v2\.json: attentions has no "
                                         r"variant 'eca' .*expected one of none, se, cbam, ca$"):
        load_config("coco_ssdlite320_mobilenet_v2_eca", [CONFIG_DIR])


def test_an_experiment_file_gives_each_variant_its_attention_and_run_folder(tmp_path):
    (tmp_path / "study.json").write_text(json.dumps(
        {"attentions": {"none": None, "se": "se"}, "epochs": 3}))
    assert config_names(str(tmp_path)) == ["study_none", "study_se"]
    config = load_config("study_none", [str(tmp_path)])
    assert (config.attention, config.output_dir, config.epochs) == (None, "runs/study_none", 3)
    assert load_config("study_se", [str(tmp_path)]).attention == "se"


@pytest.mark.parametrize("fields, message", [
    ({"learning_rat": 0.1}, r"study\.json: unknown config fields \['learning_rat'\]"),
    ({"attention": "ca"}, r"study\.json: attention must not be set: each variant of attentions"),
    ({"output_dir": "runs/x"}, r"study\.json: output_dir must not be set"),
    ({"attentions": ["se"]}, r"study\.json: attentions must map variant names to attention names"),
])
def test_a_bad_experiment_file_is_one_line_naming_the_file_and_field(tmp_path, fields, message):
    (tmp_path / "study.json").write_text(json.dumps({"attentions": {"se": "se"}, **fields}))
    with pytest.raises(ValueError, match=message) as error:
        load_config("study_se", [str(tmp_path)])
    assert "\n" not in str(error.value)


# --- a run and what it leaves ------------------------------------------------

@pytest.mark.slow
def test_a_run_leaves_checkpoints_weights_model_metrics_and_plots(tmp_path, image_folder, capsys,
                                                                 recwarn):
    """Also the mixed_float16 path (loss scaling), with label smoothing and mixup on."""
    import keras

    from keras_coordatt.training import train

    metrics = train(tiny(tmp_path, image_folder, precision="mixed_float16",
                         label_smoothing=0.1, mixup_alpha=0.2))
    # Keras' "shuffle=True was passed, but will be ignored" was printed by every run (issue 26).
    assert not [w for w in recwarn if "shuffle" in str(w.message)]
    run = tmp_path / "run"
    assert f"Saved {run / 'model.keras'} (held-out accuracy" in capsys.readouterr().out
    assert not [name for name in os.listdir(run) if name.startswith(".")], "temporary files left"
    for name in ("best.weights.h5", "last.weights.h5", "model.keras", "metrics.json",
                 "history.csv", "training_curves.png", "config.json", "attention.png"):
        assert (run / name).exists(), name
    # The attention monitor, on by default: every CA layer at the start and after each epoch.
    records = read_records(str(run / "attention.csv"))
    assert {row["epoch"] for row in records} == {0, 1, 2}
    assert len(records) == 3 * len({row["layer"] for row in records}) >= 3 * 16
    assert all(row["grad_norm"] > 0 for row in records)
    assert metrics["attention_monitor_seconds"] > 0
    assert list((run / "tensorboard" / "attention").glob("events.out.tfevents.*"))
    assert (run / "tensorboard").is_dir() and (run / "checkpoints" / "checkpoint").exists()
    assert metrics["global_steps"] == 2 * (96 // 16) and np.isfinite(metrics["eval_loss"])
    assert metrics["epochs_trained"] == 2 and "stopped_at_deadline" not in metrics
    # Loss scaling skips the updates whose scaled gradients overflow; the
    # step count (and the checkpoint numbers) must not depend on them.
    assert 0 <= metrics["optimizer_updates"] <= metrics["global_steps"]
    assert "ckpt-12.index" in os.listdir(run / "checkpoints")
    assert metrics["class_names"] == [f"class_{i}" for i in range(4)]
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,")
    # The process-wide policy is back to float32; the saved model keeps its own.
    assert keras.config.dtype_policy().name == "float32"
    model = keras.saving.load_model(run / "model.keras", compile=False)
    assert model.output_shape == (None, 4)
    assert model.get_layer("block_1_attention").dtype_policy.name == "mixed_float16"
    assert {w.dtype for w in model.weights} == {"float32"}
    # The run's model as a preset, its held-out accuracy and classes in the model card.
    import keras_coordatt

    preset = keras_coordatt.from_preset(run / "preset")
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(preset(images, training=False), model(images, training=False),
                               atol=1e-5)
    assert preset.class_names == metrics["class_names"]
    card = (run / "preset" / "README.md").read_text()
    assert f"| eval_accuracy | {metrics['eval_accuracy']:.4g} |" in card


def test_a_deadline_ends_training_after_an_epoch_scores_it_and_the_run_continues_later(
        tmp_path, image_folder, capsys):
    from keras_coordatt.training import train
    from keras_coordatt.training.run_folder import completed_run

    config = tiny(tmp_path, image_folder, attention="none", attention_monitor=False, epochs=3,
                  deadline_minutes=1e-4)
    metrics = train(config)
    out = capsys.readouterr().out
    assert "Deadline: " in out and "after epoch 1 of 3; evaluating and saving" in out
    assert (metrics["epochs_trained"], metrics["stopped_at_deadline"]) == (1, True)
    assert metrics["global_steps"] == 96 // 16 and np.isfinite(metrics["eval_loss"])
    run = tmp_path / "run"
    assert (run / "model.keras").exists()
    assert len((run / "history.csv").read_text().strip().splitlines()) == 2  # header + epoch 1
    # The deadline is how a run is carried out, not what it trains: the same run without
    # one (or with a longer one) continues from epoch 1 to the end.
    assert completed_run(config) is None  # 1 of 3 epochs: not a finished run
    later = train(dataclasses.replace(config, deadline_minutes=None))
    assert later["epochs_trained"] == 3 and later["global_steps"] == 3 * (96 // 16)
    assert "stopped_at_deadline" not in later and "Deadline" not in capsys.readouterr().out
    # What a study reuses: this config's finished run (a deadline is no difference), and
    # nothing for another config or more epochs.
    assert completed_run(config)["global_steps"] == later["global_steps"]
    assert completed_run(dataclasses.replace(config, learning_rate=0.1)) is None
    assert completed_run(dataclasses.replace(config, epochs=4)) is None


def test_eval_crop_fraction_reaches_the_pipeline_the_saved_model_and_its_export(
        tmp_path, image_folder, capsys):
    import json

    import keras

    from keras_coordatt.export import export_model
    from keras_coordatt.training import train

    train(tiny(tmp_path, image_folder, epochs=1, eval_crop_fraction=1.0))
    assert "eval resize shorter side to 32 + center crop 32x32" in capsys.readouterr().out
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert model.preprocessing.crop_fraction == 1.0
    assert model.backbone.with_config().preprocessing.crop_fraction == 1.0
    export_model(model, tmp_path / "export", formats=["saved_model"], log=None)
    spec = json.loads((tmp_path / "export" / "preprocessing.json").read_text())
    assert spec["resize"]["shorter_side"] == 32 and spec["resize"]["crop_fraction"] == 1.0


def test_nan_loss_stops_with_the_step_and_batch(tmp_path, image_folder):
    from keras_coordatt.training import TrainingDiverged
    from keras_coordatt.training import train

    with pytest.raises(TrainingDiverged, match=r"global step \d+ \(epoch 1, batch \d+ of 6\)"):
        train(tiny(tmp_path, image_folder, learning_rate=1e12, epochs=1))


# --- starting weights, label transforms, precision ---------------------------

def small_config(**overrides):
    return TrainConfig(**{**dict(model="mobilenet_v2", alpha=0.35, attention="ca",
                                 image_size=32, dropout_rate=0.0), **overrides})


def test_init_weights_reads_a_keras_applications_h5_file_by_layer_name(tmp_path):
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from keras_coordatt.training import model_for_config

    # The layout keras.applications' ImageNet files use (legacy .h5, a group
    # per layer), from a network without attention layers.
    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                              weights=None, classes=10)
    path = tmp_path / "mobilenet_v2_0.35.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, backbone)

    fresh = model_for_config(small_config(), num_classes=4)
    model = model_for_config(small_config(init_weights=str(path), identity_init=False),
                             num_classes=4)
    for name in ("Conv1", "block_5_project", "Conv_1_bn"):
        for loaded, source in zip(model.get_layer(name).get_weights(),
                                  backbone.get_layer(name).get_weights()):
            np.testing.assert_array_equal(loaded, source)
    # The classifier (10 vs 4 classes) and the attention layers stay new.
    assert model.get_layer("predictions").kernel.shape == (1280, 4)
    assert not np.array_equal(model.get_layer("Conv1").get_weights()[0],
                              fresh.get_layer("Conv1").get_weights()[0])

    # By default the new attention layers start as the identity: the
    # features are the loaded network's, to rounding.
    model = model_for_config(small_config(init_weights=str(path)), num_classes=4)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")

    def features(network):
        probe = keras.Model(network.input, network.get_layer("out_relu").output)
        return keras.ops.convert_to_numpy(probe(images, training=False))

    np.testing.assert_allclose(features(model), features(backbone), rtol=1e-5, atol=1e-5)
    assert np.abs(keras.ops.convert_to_numpy(model.get_layer("block_5_attention").conv_h.kernel)
                  ).max() == 0


def test_init_weights_from_a_run_with_another_class_count(tmp_path):
    from keras_coordatt.training import model_for_config

    source = model_for_config(small_config(), num_classes=10)
    path = tmp_path / "last.weights.h5"
    source.save_weights(path)
    model = model_for_config(small_config(init_weights=str(path)), num_classes=4)
    for name in ("block_3_attention", "block_16_depthwise_BN"):
        for loaded, saved in zip(model.get_layer(name).get_weights(),
                                 source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(loaded, saved)
    assert model.output_shape == (None, 4)


def test_layers_the_starting_weights_lack_learn_at_the_multiplied_rate(tmp_path):
    import keras

    from keras_coordatt.training.trainer import classifier_for_config
    from keras_coordatt.training.trainer import prepare_model
    from keras_coordatt.training.recipe import compile_for_training

    path = tmp_path / "plain.keras"
    classifier_for_config(small_config(attention=None), num_classes=10).save(path)
    config = small_config(init_weights=str(path), new_layer_lr_multiplier=8.0, momentum=0.0,
                          weight_decay=0.0)
    model, new_layers = prepare_model(classifier_for_config(config, num_classes=4), config)
    names = {layer.name for layer in new_layers}
    # The inserted attention and the 4-class head; no layer the file provided.
    assert "predictions" in names and "block_3_attention" in names
    assert not names & {"Conv1", "block_3_project", "block_3_project_BN"}
    new_variables = [v for layer in new_layers for v in layer.trainable_weights]
    compile_for_training(model, config, steps_per_epoch=10, new_layers=new_layers)
    optimizer = model.optimizer
    assert set(optimizer.lr_multipliers) == {v.path for v in new_variables}
    # One SGD step by hand: the new layers move 8x the learning rate times their gradient.
    optimizer.build(model.trainable_variables)
    head, old = model.get_layer("predictions").kernel, model.get_layer("Conv_1").kernel
    before = [keras.ops.convert_to_numpy(v).copy() for v in (head, old)]
    ones = [np.ones(v.shape, "float32") for v in (head, old)]
    rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))  # the schedule at step 0
    assert rate == pytest.approx(config.scaled_learning_rate)
    optimizer.apply(ones, [head, old])
    moved = [before[i] - keras.ops.convert_to_numpy(v) for i, v in enumerate((head, old))]
    np.testing.assert_allclose(moved[0], 8 * rate, rtol=1e-5)
    np.testing.assert_allclose(moved[1], rate, rtol=1e-5)
    # It travels with the saved model.
    assert keras.optimizers.deserialize(keras.optimizers.serialize(optimizer)).lr_multipliers == \
        optimizer.lr_multipliers


def test_the_inserted_attention_can_learn_at_its_own_multiple(tmp_path):
    from keras_coordatt.layers.base import AttentionLayer
    from keras_coordatt.training.recipe import new_layer_multipliers
    from keras_coordatt.training.trainer import classifier_for_config
    from keras_coordatt.training.trainer import prepare_model

    path = tmp_path / "plain.keras"
    classifier_for_config(small_config(attention=None), num_classes=10).save(path)
    config = small_config(init_weights=str(path), attention_lr_multiplier=5.0)
    _, new_layers = prepare_model(classifier_for_config(config, num_classes=4), config)
    multipliers = new_layer_multipliers(config, new_layers)
    attention = [v.path for layer in new_layers if isinstance(layer, AttentionLayer)
                 for v in layer.trainable_weights]
    # The 16 CA layers at 5x; the head keeps new_layer_lr_multiplier (1x: left out).
    assert len({path.split("/")[0] for path in attention}) == 16
    assert multipliers == {path: 5.0 for path in attention}
    both = new_layer_multipliers(
        dataclasses.replace(config, new_layer_lr_multiplier=2.0), new_layers)
    assert both["predictions/kernel"] == 2.0 and both[attention[0]] == 5.0
    with pytest.raises(ValueError, match="attention_lr_multiplier=0.0: must be positive"):
        dataclasses.replace(config, attention_lr_multiplier=0.0).validate()


@pytest.mark.parametrize("attention", [None, "ca"])
def test_a_network_started_from_a_keras_file_is_built_as_the_files_network(tmp_path, attention):
    import keras

    from keras_coordatt.models.families import build_model
    from keras_coordatt.training import model_for_config

    # As torchvision's converted MobileNetV2: PyTorch's padding and epsilon, and quiet
    # channels (variance near epsilon), where Keras' epsilon of 1e-3 would change the outputs.
    source = build_model("mobilenet_v2", alpha=0.35, input_shape=(32, 32, 3), classes=4,
                         classifier_activation=None, padding="pytorch", bn_epsilon=1e-5)
    rng = np.random.default_rng(0)
    for layer in source.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(rng.uniform(1e-4, 1e-2, layer.moving_variance.shape))
    path = tmp_path / "torchvision_like.keras"
    source.save(path)
    model = model_for_config(small_config(attention=attention, init_weights=str(path)), 4)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert {layer.epsilon for layer in norms} == {1e-5}
    assert model.backbone.padding == "pytorch"
    images = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    want = keras.ops.convert_to_numpy(source(images, training=False))
    got = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())


def test_the_inserted_attention_can_take_adams_step_where_the_rest_takes_sgds(tmp_path):
    import keras

    from keras_coordatt.layers.base import AttentionLayer
    from keras_coordatt.training.recipe import make_optimizer
    from keras_coordatt.training.trainer import classifier_for_config
    from keras_coordatt.training.trainer import prepare_model

    path = tmp_path / "plain.keras"
    classifier_for_config(small_config(attention=None), num_classes=10).save(path)
    config = small_config(init_weights=str(path), attention_optimizer="adam",
                          attention_lr_multiplier=0.1, momentum=0.9, weight_decay=0.0,
                          warmup_epochs=0.0)
    model, new_layers = prepare_model(classifier_for_config(config, num_classes=4), config)
    attention = [v for layer in new_layers if isinstance(layer, AttentionLayer)
                 for v in layer.trainable_weights]
    optimizer = make_optimizer(config, steps_per_epoch=1000, new_layers=new_layers)
    # Every variable of the 16 inserted CA layers, nothing else (not the new head).
    assert optimizer.adam_paths == sorted(v.path for v in attention)
    assert len({v.path.split("/")[0] for v in attention}) == 16
    optimizer.build(model.trainable_variables)
    gate, old = model.get_layer("block_3_attention").conv_h.kernel, model.get_layer("Conv_1").kernel
    start = [keras.ops.convert_to_numpy(v).copy() for v in (gate, old)]
    # Keras' own Adam (at 0.1x the schedule's rate) and SGD on copies, fed the same gradients.
    copies = [keras.Variable(value) for value in start]
    rate = config.scaled_learning_rate
    adam = keras.optimizers.Adam(learning_rate=0.1 * rate, epsilon=1e-7)
    sgd = keras.optimizers.SGD(learning_rate=rate, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(3):
        grads = [rng.normal(size=v.shape).astype("float32") * scale
                 for v, scale in zip(start, (1e-4, 1.0))]
        optimizer.apply(grads, [gate, old])
        adam.apply(grads[:1], copies[:1])
        sgd.apply(grads[1:], copies[1:])
    for variable, copy in zip((gate, old), copies):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable),
                                   keras.ops.convert_to_numpy(copy), rtol=1e-4, atol=1e-6)
    # Adam's step does not shrink with a gradient 1e-4 the size: about the rate per step.
    moved = np.abs(keras.ops.convert_to_numpy(gate) - start[0])
    assert np.median(moved) > 0.5 * 0.1 * rate
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert restored.adam_paths == optimizer.adam_paths
    with pytest.raises(ValueError, match="attention_optimizer='lamb': expected one of"):
        dataclasses.replace(config, attention_optimizer="lamb").validate()


def test_clip_global_norm_scales_a_large_step_down_and_leaves_a_small_one(tmp_path):
    import keras

    from keras_coordatt.training.recipe import make_optimizer

    config = small_config(clip_global_norm=1.0, momentum=0.0, weight_decay=0.0, warmup_epochs=0.0)
    rate = config.scaled_learning_rate
    for scale, expected_norm in ((10.0, 1.0), (0.1, None)):
        variables = [keras.Variable(np.zeros(3, "float32")), keras.Variable(np.zeros(4, "float32"))]
        optimizer = make_optimizer(config, steps_per_epoch=1000)
        grads = [np.full(3, scale, "float32"), np.full(4, -scale, "float32")]
        optimizer.apply(grads, variables)
        step = np.concatenate([keras.ops.convert_to_numpy(v) for v in variables]) / -rate
        full = np.concatenate(grads)
        # The direction is kept; only a step whose gradients exceed the norm is scaled down.
        np.testing.assert_allclose(
            step, full * (expected_norm / np.linalg.norm(full) if expected_norm else 1.0),
            rtol=1e-4)
    with pytest.raises(ValueError, match="clip_global_norm=0.0: must be positive"):
        dataclasses.replace(config, clip_global_norm=0.0).validate()


def test_a_compilation_cache_off_jax_is_refused_in_one_line(tmp_path):
    from keras_coordatt.training import train

    config = small_config(output_dir=str(tmp_path / "run"), compilation_cache=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="the persistent compilation cache is JAX's; the "
                                         "tensorflow backend has none"):
        train(config)
    assert not (tmp_path / "run").exists() and not (tmp_path / "c").exists()


def test_a_model_saved_with_the_trainers_optimizer_loads_after_importing_the_package(tmp_path):
    import subprocess
    import sys

    import keras

    from keras_coordatt.optimizers import LayerwiseSGD

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="head")])
    model.compile(LayerwiseSGD(lr_multipliers={"head/kernel": 8.0}, learning_rate=0.1), "mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    model.save(tmp_path / "model.keras")
    code = ("import keras, keras_coordatt; m = keras.saving.load_model('model.keras'); "
            "print(type(m.optimizer).__name__, m.optimizer.lr_multipliers)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "LayerwiseSGD" and "'head/kernel': 8.0" in result.stdout


def test_without_starting_weights_every_layer_learns_at_one_rate():
    from keras_coordatt.training.trainer import classifier_for_config
    from keras_coordatt.training.trainer import prepare_model

    config = small_config(new_layer_lr_multiplier=8.0)
    assert prepare_model(classifier_for_config(config, num_classes=4), config)[1] == []


@pytest.mark.parametrize("name, match", [("missing.h5", "no weights file"), ("notes.txt", "neither")])
def test_init_weights_bad_files_are_named(tmp_path, name, match):
    from keras_coordatt.training import model_for_config

    if name.endswith(".txt"):
        (tmp_path / name).write_text("not weights")
    with pytest.raises((FileNotFoundError, ValueError), match=match):
        model_for_config(small_config(init_weights=str(tmp_path / name)), num_classes=4)


def test_mixup_mixes_targets_with_the_same_weight_as_images():
    import tensorflow as tf

    from keras_coordatt.training.recipe import label_transform

    tf.random.set_seed(3)
    transform = label_transform(small_config(mixup_alpha=0.4), num_classes=8, one_hot=True)
    labels = tf.constant(np.arange(8))
    # Image i is filled with the value i, so a mixed image's value is the
    # label-weighted mean of its target.
    images = tf.cast(tf.reshape(labels, (8, 1, 1, 1)), tf.float32) * tf.ones((8, 4, 4, 3))
    mixed, targets = transform(images, labels)
    targets = targets.numpy()
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(mixed.numpy()[:, 0, 0, 0], targets @ np.arange(8.0), rtol=1e-5)
    assert (targets.max(axis=1) < 1.0).any(), "no example was mixed"


def test_label_smoothing_is_in_the_loss_and_plain_labels_stay_sparse():
    import keras

    from keras_coordatt.training.recipe import compile_for_training
    from keras_coordatt.training.recipe import label_transform

    for smoothing, expected in ((0.1, keras.losses.CategoricalCrossentropy),
                                (0.0, keras.losses.SparseCategoricalCrossentropy)):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        one_hot = compile_for_training(model, small_config(label_smoothing=smoothing), steps_per_epoch=5)
        assert isinstance(model.loss, expected)
        if smoothing:
            assert model.loss.label_smoothing == smoothing
            _, targets = label_transform(small_config(label_smoothing=smoothing), 3, one_hot)(
                np.zeros((2, 4), np.float32), np.array([0, 2]))
            np.testing.assert_array_equal(targets.numpy(), [[1, 0, 0], [0, 0, 1]])
        else:
            assert label_transform(small_config(), 3, one_hot) is None


# --- distribution ------------------------------------------------------------

@pytest.fixture(scope="module")
def one_process(tmp_path_factory, image_folder):
    """One epoch in one process, the reference for the distributed runs.

    float64: in float32 the summation order of two replicas alone moves the
    weights of this chaotic little network by up to 0.8 (see PRECISIONS).
    """
    root = tmp_path_factory.mktemp("single")
    single = tiny(root, image_folder, epochs=1, sync_batchnorm=True, precision="float64",
                  limit_train=48)
    code, output = run_cli(single)
    assert code == 0, output
    return single, weights_of(root / "run" / "last.weights.h5")


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices_matches_one_device(tmp_path, one_process):
    single, reference = one_process
    mirrored = dataclasses.replace(single, output_dir=str(tmp_path / "mirrored" / "run"),
                                   strategy="mirrored", devices="/cpu:0,/cpu:1")
    code, output = run_cli(mirrored)
    assert code == 0, output
    for a, b in zip(reference, weights_of(tmp_path / "mirrored" / "run" / "last.weights.h5")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_reach_the_weights_of_one_process(tmp_path, one_process):
    single, reference = one_process

    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    multi = dataclasses.replace(single, output_dir=str(tmp_path / "multi" / "run"),
                                strategy="multiworker")
    processes = [
        run_cli(multi, wait=False, extra_env={"TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})})
        for index in range(2)
    ]
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
    for a, b in zip(reference, weights_of(tmp_path / "multi" / "run" / "last.weights.h5")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
