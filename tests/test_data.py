"""The training data: sources, fixed splits, preprocessing, batches, and clear errors."""

import dataclasses
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_coordatt.data import PipelineOptions
from keras_coordatt.data import load_datasets
from keras_coordatt.preprocessing import Preprocessing
from keras_coordatt.preprocessing import augment_for_train
from keras_coordatt.preprocessing import preprocess_for_eval
from made_data import prepare_tiny_tfds

CLASSES = ("blue", "green", "red")
CHANNEL = {"blue": 2, "green": 1, "red": 0}


def write_image(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    encode = tf.io.encode_jpeg if str(path).endswith(".jpg") else tf.io.encode_png
    tf.io.write_file(str(path), encode(image))


def noisy_image(rng, name, shape=(24, 32)):
    """Noise, brightest in the class's colour channel, so crops and flips show."""
    image = rng.integers(0, 100, shape + (3,), dtype=np.uint8)
    image[..., CHANNEL[name]] += 150
    return image


def make_folder(root, rng, per_class=10, splits=None):
    for split in splits or [""]:
        for name in CLASSES:
            for index in range(per_class):
                write_image(os.path.join(root, split, name, f"{index}.png"), noisy_image(rng, name))
    return root


@pytest.fixture
def folder(tmp_path, rng):
    """30 images, 10 per class, in a folder per class: split 24 / 6."""
    return make_folder(str(tmp_path / "colours"), rng)


PIPELINE_FIELDS = {field.name for field in dataclasses.fields(PipelineOptions)}


def datasets_for(source, pixel_range=None, **arguments):
    """load_datasets with the pipeline options and the split arguments in one call."""
    if pixel_range is not None:
        arguments["preprocessing"] = Preprocessing(pixel_range)
    options = PipelineOptions(**{k: v for k, v in arguments.items() if k in PIPELINE_FIELDS})
    return load_datasets(
        source, options, **{k: v for k, v in arguments.items() if k not in PIPELINE_FIELDS})


def batches(dataset):
    return [(images.numpy(), labels.numpy()) for images, labels in dataset]


def folder_datasets(folder, **options):
    options = {"image_size": 16, "batch_size": 5, **options}
    return datasets_for(f"folder:{folder}", **options)


# Preprocessing.


def test_eval_preprocessing_resizes_the_shorter_side_then_crops_the_center(rng):
    image = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)  # shorter side already 28 / 0.875
    result = preprocess_for_eval(image, 28, pixel_range=(0, 255)).numpy()
    np.testing.assert_array_equal(result, image[2:30, 10:38])
    large = np.kron(image, np.ones((2, 2, 1), dtype=np.uint8))  # the same picture, twice the size
    assert preprocess_for_eval(large, 28, pixel_range=(0, 255)).shape == (28, 28, 3)


def test_eval_crop_fraction_one_keeps_the_whole_square_image(rng):
    image = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    whole = Preprocessing(pixel_range=(0, 255), crop_fraction=1.0)
    np.testing.assert_array_equal(whole.for_eval(image, 28).numpy(), image)  # nothing cut
    assert whole.spec(28)["resize"]["shorter_side"] == 28
    assert Preprocessing(pixel_range=(0, 255)).spec(28)["resize"]["shorter_side"] == 32
    with pytest.raises(ValueError, match="crop_fraction must be in \\(0, 1\\], got 1.5"):
        Preprocessing(crop_fraction=1.5)


def test_eval_preprocessing_maps_0_and_255_onto_the_pixel_range():
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    image[:, 10:] = 255
    for low, high in [(-1.0, 1.0), (0.0, 255.0), (0.0, 1.0)]:
        result = preprocess_for_eval(image, 16, pixel_range=(low, high)).numpy()
        assert result.min() == low and result.max() == high


def test_per_channel_normalisation_is_pytorchs_mean_and_std(rng):
    """Weights converted from PyTorch expect (pixel / 255 - mean) / std per channel: one
    `Preprocessing`, through eval, train augmentation, its spec and JSON."""
    import json

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    preprocessing = Preprocessing.from_mean_std(mean, std, crop_fraction=1.0)
    assert preprocessing.per_channel and not Preprocessing().per_channel
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    expected = (image / 255.0 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(preprocessing.for_eval(image, 16).numpy(), expected, atol=1e-5)
    trained = preprocessing.for_train(image, tf.constant([1, 2]), 16, crop_scale=(1.0, 1.0))
    assert trained.numpy().min() >= expected.min() - 1e-5 and trained.numpy().max() <= expected.max() + 1e-5
    assert preprocessing.mean_std() == (mean, std)
    np.testing.assert_allclose(preprocessing.to_unit(expected), image / 255.0, atol=1e-6)
    assert "mean [0.485, 0.456, 0.406]" in preprocessing.spec(16)["formula"]
    assert preprocessing.describe_pixels() == ("RGB / 255 - mean (0.485, 0.456, 0.406) / std "
                                               "(0.229, 0.224, 0.225)")
    assert Preprocessing().describe_pixels() == "[0, 255] -> [-1, 1]"
    stored = json.loads(json.dumps(dataclasses.asdict(preprocessing)))  # how models save it
    assert Preprocessing(**stored) == preprocessing
    spec = json.loads(json.dumps(preprocessing.spec(16)))  # what predict reads beside TFLite
    assert Preprocessing(tuple(spec["pixel_range"]), crop_fraction=1.0) == preprocessing


@pytest.mark.parametrize("pixel_range, problem", [
    ((-1.0, (1.0, 1.0, 1.0)), "per channel: both three numbers"),
    (((0.0, 0.0), (1.0, 1.0)), "each a number or three numbers"),
    (((0.0, 2.0, 0.0), (1.0, 1.0, 1.0)), "low < high"),
])
def test_a_bad_pixel_range_is_named(pixel_range, problem):
    with pytest.raises(ValueError, match=problem):
        Preprocessing(pixel_range)
    with pytest.raises(ValueError, match=r"std positive; got mean=\[0.5, 0.5, 0.5\], std=\[0.2, 0.0, 0.2\]"):
        Preprocessing.from_mean_std((0.5, 0.5, 0.5), (0.2, 0.0, 0.2))


def test_eval_preprocessing_repeats_greyscale_into_three_channels(rng):
    grey = rng.integers(0, 256, (2, 20, 20, 1), dtype=np.uint8)
    result = preprocess_for_eval(grey, 16).numpy()
    assert result.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(result[..., 0], result[..., 2])


def test_eval_preprocessing_refuses_float_images():
    with pytest.raises(TypeError, match="uint8"):
        preprocess_for_eval(np.zeros((20, 20, 3), dtype=np.float32), 16)


def test_augmentation_repeats_for_a_seed_and_differs_between_seeds(rng):
    image = tf.constant(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    first, again, other = (
        augment_for_train(image, tf.constant(seed, tf.int64), 24).numpy()
        for seed in ([1, 2], [1, 2], [3, 4])
    )
    assert first.shape == (24, 24, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert -1.0 <= first.min() and first.max() <= 1.0


# Pipelines (on a small image folder).


def test_batches_have_the_promised_shapes_dtypes_and_range(folder):
    datasets = folder_datasets(folder)
    for images, labels in batches(datasets.train) + batches(datasets.eval):
        assert images.dtype == np.float32 and images.shape[1:] == (16, 16, 3)
        assert labels.dtype == np.int32 and labels.shape == images.shape[:1]
        assert -1.0 <= images.min() and images.max() <= 1.0
        assert set(labels) <= {0, 1, 2}
    assert (datasets.num_classes, datasets.class_names) == (3, list(CLASSES))


def test_train_drops_the_last_partial_batch_and_eval_keeps_it(folder):
    datasets = folder_datasets(folder, batch_size=5)  # 24 train, 6 eval examples
    assert (datasets.train_examples, datasets.eval_examples) == (24, 6)
    assert [len(labels) for _, labels in batches(datasets.train)] == [5, 5, 5, 5]
    assert [len(labels) for _, labels in batches(datasets.eval)] == [5, 1]


def test_eval_labels_match_the_images_class_folders(folder):
    images, labels = batches(folder_datasets(folder, batch_size=6).eval)[0]
    brightest = images.mean(axis=(1, 2)).argmax(axis=-1)
    assert [CHANNEL[CLASSES[label]] for label in labels] == list(brightest)


def test_deterministic_mode_gives_the_same_batches_on_every_run(folder):
    first, second = (
        folder_datasets(folder, deterministic=True, seed=7) for _ in range(2)
    )
    for one, other in [(first.train, second.train), (first.eval, second.eval)]:
        for (images, labels), (other_images, other_labels) in zip(batches(one), batches(other)):
            np.testing.assert_array_equal(images, other_images)
            np.testing.assert_array_equal(labels, other_labels)


def test_an_epoch_gives_the_same_batches_whatever_ran_before_it(folder):
    fresh = folder_datasets(folder, deterministic=True)
    resumed = folder_datasets(folder, deterministic=True)
    batches(resumed.train_for_epoch(2))
    epoch_3, again = batches(fresh.train_for_epoch(3)), batches(resumed.train_for_epoch(3))
    for (images, labels), (other_images, other_labels) in zip(epoch_3, again):
        np.testing.assert_array_equal(images, other_images)
        np.testing.assert_array_equal(labels, other_labels)
    assert not np.array_equal(epoch_3[0][0], batches(fresh.train_for_epoch(4))[0][0])


def test_augmentation_changes_train_images_and_eval_stays_fixed(folder):
    augmented, plain = (
        folder_datasets(folder, deterministic=True, augment=augment) for augment in (True, False)
    )
    images, labels = batches(augmented.train)[0]
    plain_images, plain_labels = batches(plain.train)[0]
    np.testing.assert_array_equal(labels, plain_labels)  # the same shuffle
    assert np.abs(images - plain_images).mean() > 0.05
    first_pass, second_pass = batches(augmented.eval), batches(augmented.eval)
    for (one, _), (other, _) in zip(first_pass, second_pass):
        np.testing.assert_array_equal(one, other)


def test_train_epochs_differ_in_order_and_augmentation(folder):
    datasets = folder_datasets(folder, deterministic=True)
    first, second = batches(datasets.train), batches(datasets.train)
    assert not np.array_equal(first[0][0], second[0][0])


@pytest.mark.parametrize("crop_fraction", [0.875, 1.0])
def test_caching_does_not_change_the_eval_images(folder, crop_fraction):
    """Images are cached at the eval resize size of the crop: the same inputs as uncached."""
    preprocessing = Preprocessing(crop_fraction=crop_fraction)
    cached, uncached = (folder_datasets(folder, cache=cache, preprocessing=preprocessing)
                        for cache in (True, False))
    side = preprocessing.resize_size(16)
    assert f"cached in memory from the first epoch on, shorter side <= {side}" in cached.describe()
    for (one, _), (other, _) in zip(batches(cached.eval), batches(uncached.eval)):
        np.testing.assert_array_equal(one, other)


def test_representative_gives_single_eval_preprocessed_images(folder):
    images = list(folder_datasets(folder).representative(4))
    assert len(images) == 4
    assert all(image.shape == (1, 16, 16, 3) and image.dtype == np.float32 for image in images)


def test_limits_keep_the_first_examples(folder):
    datasets = folder_datasets(folder, limit_train=10, limit_eval=3)
    assert (datasets.train_examples, datasets.eval_examples) == (10, 3)
    assert sum(len(labels) for _, labels in batches(datasets.eval)) == 3


def test_describe_names_the_source_splits_and_preprocessing(folder):
    text = folder_datasets(folder).describe()
    for expected in (folder, "'train', 24 examples", "'test', 6 examples", "blue, green, red",
                     "random-resized crop to 16x16", "center crop 16x16", "[-1, 1]"):
        assert expected in text


@pytest.mark.parametrize("cores, autotune, expected", [
    (2, None, False), (4, None, False), (16, None, True), (2, True, True), (16, False, False)])
def test_tf_data_autotuning_is_off_on_small_machines_unless_asked_for(
        folder, monkeypatch, cores, autotune, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    datasets = folder_datasets(folder, autotune=autotune)
    assert datasets.train_for_epoch(0).options().autotune.enabled is expected
    assert datasets.train.options().autotune.enabled is expected
    assert f"tf.data autotuning {'on' if expected else 'off'}" in datasets.describe()
    assert (f"({cores} cores)" in datasets.describe()) is (autotune is None)


def test_a_batch_larger_than_the_train_split_is_an_error(folder):
    with pytest.raises(ValueError, match="24 examples, fewer than one batch of 32"):
        folder_datasets(folder, batch_size=32)


def test_an_unknown_source_is_an_error_listing_the_forms():
    with pytest.raises(ValueError, match="tfds:NAME"):
        datasets_for("imagenet")


# Image folders.


def test_a_folder_of_class_folders_is_split_80_20_in_every_class(folder):
    datasets = folder_datasets(folder, batch_size=6, augment=False)
    eval_labels = np.concatenate([labels for _, labels in batches(datasets.eval)])
    assert sorted(eval_labels) == [0, 0, 1, 1, 2, 2]
    assert "train: split 'train', 24 examples (per class 8, 8, 8)" in datasets.describe()


def test_train_and_val_folders_are_the_splits(tmp_path, rng):
    root = make_folder(str(tmp_path / "split"), rng, per_class=4, splits=["train", "val"])
    datasets = datasets_for(f"folder:{root}", image_size=16, batch_size=4)
    assert (datasets.train_examples, datasets.eval_examples) == (12, 12)
    assert "'val', 12 examples" in datasets.describe()
    with pytest.raises(ValueError, match="splits are 'train', 'val'"):
        datasets_for(f"folder:{root}", image_size=16, batch_size=4, eval_split="validation")


def test_a_train_folder_without_an_eval_folder_is_an_error(tmp_path, rng):
    root = make_folder(str(tmp_path / "half"), rng, per_class=2, splits=["train"])
    with pytest.raises(ValueError, match="has train/ but no val/, valid/, validation/ or test/"):
        datasets_for(f"folder:{root}", image_size=16, batch_size=2)


def test_a_folder_with_one_class_is_refused_naming_it_and_the_class(tmp_path, rng):
    # Issue 26: one class trains to accuracy 1.0 and loss 0; usually the wrong level was named.
    root = tmp_path / "dataset"
    make_folder(str(root / "images"), rng, per_class=4)
    with pytest.raises(ValueError, match=f"image folder '{root}' has one class folder, "
                                         "'images': a classifier needs two or more"):
        datasets_for(f"folder:{root}", image_size=16, batch_size=2)
    make_folder(str(tmp_path / "split"), rng, per_class=2, splits=["train", "val"])
    for name in ("train", "val"):
        os.rename(tmp_path / "split" / name, tmp_path / "split" / "red")
        os.makedirs(tmp_path / "split" / name)
        os.rename(tmp_path / "split" / "red", tmp_path / "split" / name / "red")
    with pytest.raises(ValueError, match="train' has one class folder, 'red'"):
        datasets_for(f"folder:{tmp_path / 'split'}", image_size=16, batch_size=2)


def test_hidden_folders_and_stray_files_are_skipped_with_a_line(folder, capsys):
    os.makedirs(os.path.join(folder, ".ipynb_checkpoints"))
    os.makedirs(os.path.join(folder, ".git", "objects"))
    with open(os.path.join(folder, ".DS_Store"), "wb") as f:
        f.write(b"\0\0\0\1Bud1")
    with open(os.path.join(folder, "labels.csv"), "w") as f:
        f.write("file,label\n")
    with open(os.path.join(folder, "red", "notes.txt"), "w") as f:
        f.write("collected in May")
    with open(os.path.join(folder, "red", "._0.png"), "wb") as f:  # macOS's metadata of 0.png
        f.write(b"\0\5\26\7")
    datasets = folder_datasets(folder, batch_size=6)
    assert datasets.class_names == ["blue", "green", "red"]
    assert "train: split 'train', 24 examples (per class 8, 8, 8)" in datasets.describe()
    (line,) = capsys.readouterr().out.splitlines()
    assert line == (f"folder:{folder}: skipped 6 hidden or non-data entries: .DS_Store, .git/, "
                    ".ipynb_checkpoints/ and 3 more")


def test_a_missing_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        datasets_for(f"folder:{tmp_path / 'nowhere'}")


def test_a_class_folder_without_images_is_an_error_naming_it(folder):
    os.makedirs(os.path.join(folder, "yellow"))
    with open(os.path.join(folder, "yellow", "notes.txt"), "w") as f:
        f.write("no images here")
    with pytest.raises(ValueError, match="yellow.* has no images"):
        folder_datasets(folder)


def test_a_text_file_named_jpg_is_an_error_naming_it(folder):
    path = os.path.join(folder, "red", "readme.jpg")
    with open(path, "w") as f:
        f.write("not an image")
    with pytest.raises(ValueError, match=f"{path} is not an image"):
        folder_datasets(folder)


def test_a_truncated_image_is_an_error_naming_it_before_training(folder, rng):
    path = os.path.join(folder, "green", "cut.jpg")
    write_image(path, noisy_image(rng, "green"))
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    # Found when the source is opened, before a single batch (let alone an epoch) runs.
    with pytest.raises(ValueError, match=f"cannot decode image file {path}"):
        folder_datasets(folder, augment=False, cache=False)


def test_labels_beyond_num_classes_are_an_error_naming_a_file(folder):
    message = r"label 2 'red' \(.*red/.*\.png\), outside \[0, num_classes=2\)"
    with pytest.raises(ValueError, match=message):
        folder_datasets(folder, num_classes=2)


# ELPV: the 2,624 cells are decoded once into a cache folder of this module.


@pytest.fixture(scope="module")
def elpv_cache(tmp_path_factory):
    pytest.importorskip("elpv_dataset")
    with pytest.MonkeyPatch.context() as patch:
        cache = tmp_path_factory.mktemp("cache")
        patch.setenv("XDG_CACHE_HOME", str(cache))
        yield cache


def elpv_datasets(**options):
    options = {"image_size": 32, "batch_size": 16, "limit_train": 64, "limit_eval": 40, **options}
    return datasets_for("elpv", **options)


@pytest.mark.slow
def test_elpv_batches_and_classes(elpv_cache):
    datasets = elpv_datasets()
    train, evaluation = batches(datasets.train), batches(datasets.eval)
    assert [images.shape for images, _ in train] == [(16, 32, 32, 3)] * 4
    assert [len(labels) for _, labels in evaluation] == [16, 16, 8]
    images = np.concatenate([images for images, _ in evaluation])
    assert -1.0 <= images.min() < 0.0 < images.max() <= 1.0
    np.testing.assert_array_equal(images[..., 0], images[..., 1])  # greyscale as RGB
    assert datasets.class_names == [
        "functional (0%)", "possibly defective (33%)", "likely defective (67%)", "defective (100%)"
    ]


@pytest.mark.slow
def test_elpv_split_is_75_25_and_stratified_by_class(elpv_cache):
    from keras_coordatt.data.classification.elpv import load_elpv

    source = load_elpv(32)
    train, test = (source.read_split(name, None).labels for name in ("train", "test"))
    assert (len(train), len(test)) == (1968, 656)
    whole = np.bincount(np.concatenate([train, test])) / 2624
    for labels in (train, test):
        assert np.abs(np.bincount(labels) / len(labels) - whole).max() < 0.01
    text = elpv_datasets(limit_train=None, limit_eval=None).describe()
    assert "1,968 examples (per class 1,131, 221, 79, 537)" in text
    assert "656 examples (per class 377, 74, 27, 178)" in text


@pytest.mark.slow
def test_elpv_test_split_does_not_depend_on_the_run_seed(elpv_cache):
    one, other = (batches(elpv_datasets(seed=seed).eval) for seed in (0, 1))
    for (images, labels), (other_images, other_labels) in zip(one, other):
        np.testing.assert_array_equal(images, other_images)
        np.testing.assert_array_equal(labels, other_labels)


@pytest.mark.slow
def test_elpv_second_load_reads_the_cache(elpv_cache, monkeypatch):
    elpv_datasets()
    (cached,) = (elpv_cache / "keras_coordatt").iterdir()
    from elpv_dataset import utils

    monkeypatch.setattr(utils, "load_dataset", lambda *args: pytest.fail("decoded the PNGs again"))
    assert "cells cached at 37 px" in elpv_datasets().describe()
    assert cached.name.endswith("-37px.npz")


@pytest.mark.slow
def test_elpv_states_its_licence_and_split(elpv_cache):
    text = elpv_datasets().describe()
    assert "CC BY-NC-SA 4.0" in text and "split seed 2019" in text


@pytest.mark.slow
def test_elpv_has_only_train_and_test_splits(elpv_cache):
    with pytest.raises(ValueError, match="no split 'validation'; its splits are 'train', 'test'"):
        elpv_datasets(eval_split="validation")


def test_without_the_elpv_package_the_source_names_the_extra_that_installs_it(monkeypatch):
    import importlib.metadata

    from keras_coordatt.data.classification import elpv

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(ImportError, match=r"pip install 'keras-coordatt\[demo\]'"):
        elpv._decoded_cells(32)


# tensorflow-datasets: a tiny dataset prepared offline, and the failures.


@pytest.fixture(scope="module")
def tiny_tfds(tmp_path_factory):
    """A prepared tensorflow-datasets dataset: greyscale images of varied sizes."""
    tfds = pytest.importorskip("tensorflow_datasets")

    def examples(count, label=None):
        labels = [index % 2 if label is None else label for index in range(count)]
        return [{"image": np.full((20 + index, 30, 1), 200 if value == 1 else 50, np.uint8),
                 "label": value} for index, value in enumerate(labels)]

    features = {"image": tfds.features.Image(shape=(None, None, 1)),
                "label": tfds.features.ClassLabel(names=["dark", "bright"])}
    return prepare_tiny_tfds("CoordattTinyCells", tmp_path_factory.mktemp("tfds"), features, {
        "train": examples(12), "validation": examples(5), "unlabelled": examples(3, label=-1)})


def tiny_datasets(data_dir, **options):
    options = {
        "image_size": 16, "batch_size": 4, "data_dir": data_dir, "pixel_range": (0, 255), **options
    }
    return datasets_for("tfds:coordatt_tiny_cells", **options)


def test_tfds_dataset_gives_rgb_batches_and_its_class_names(tiny_tfds):
    datasets = tiny_datasets(tiny_tfds)
    assert datasets.class_names == ["dark", "bright"]
    assert (datasets.train_examples, datasets.eval_examples) == (12, 5)
    images, labels = (np.concatenate(parts) for parts in zip(*batches(datasets.eval)))
    assert images.shape == (5, 16, 16, 3)
    np.testing.assert_array_equal(images[:, 0, 0, 0], np.where(labels == 1, 200.0, 50.0))


def test_tfds_split_slicing_selects_part_of_a_split(tiny_tfds):
    datasets = tiny_datasets(tiny_tfds, train_split="train[:50%]", eval_split="train[50%:]")
    assert (datasets.train_examples, datasets.eval_examples) == (6, 6)


def test_tfds_unknown_split_is_an_error_listing_the_splits(tiny_tfds):
    with pytest.raises(ValueError, match="'train', 'validation', 'unlabelled'"):
        tiny_datasets(tiny_tfds, eval_split="test")


def test_tfds_labels_outside_the_classes_fail_naming_dataset_and_split(tiny_tfds):
    datasets = tiny_datasets(tiny_tfds, eval_split="unlabelled")
    message = "coordatt_tiny_cells split unlabelled has a label outside"
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        batches(datasets.eval)


def test_tfds_more_classes_than_num_classes_is_an_error(tiny_tfds):
    message = r"labels up to 1 \('bright'\), outside \[0, num_classes=1\)"
    with pytest.raises(ValueError, match=message):
        tiny_datasets(tiny_tfds, num_classes=1)


def test_tfds_unknown_config_is_an_error_listing_the_configs():
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(ValueError, match="no config '161px'; its configs are .*'160px'"):
        datasets_for("tfds:imagenette/161px")


def test_tfds_unknown_name_suggests_the_near_one():
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(ValueError, match="imagenete -> imagenette"):
        datasets_for("tfds:imagenete")


def test_tfds_offline_fails_fast_naming_the_dataset(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    from keras_coordatt.data.core import tfds as tfds_core

    monkeypatch.setattr(tfds_core, "network_reachable", lambda host, port: False)
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=f"tfds:cifar10 is not prepared in {tmp_path}"):
        datasets_for("tfds:cifar10", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 5


def test_tfds_manual_download_error_says_where_the_files_go(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    message = f"(?s)Put its files in {tmp_path}.*ILSVRC2012_img_train.tar"
    with pytest.raises(FileNotFoundError, match=message):
        datasets_for("tfds:imagenet2012", data_dir=str(tmp_path))
