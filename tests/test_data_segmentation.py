"""Segmentation sources (keras_coordatt.data.segmentation): VOC, masks, tfds; errors named."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_coordatt.data import load_mask
from keras_coordatt.data import load_segmentation_example
from keras_coordatt.data import open_segmentation_source
from keras_coordatt.data.segmentation.voc import VOC_CLASSES
from made_data import HEIGHT
from made_data import WIDTH
from made_data import prepare_tiny_tfds
from made_data import write_image



def class_mask(seed=0, num_classes=3, size=(WIDTH, HEIGHT)):
    """Class indices with a 255 (ignore) border, as VOC draws object outlines."""
    mask = np.random.default_rng(seed).integers(0, num_classes, (size[1], size[0]), dtype=np.uint8)
    mask[0, :] = 255
    return mask


# Pascal VOC's colours of its 21 classes (the devkit's VOClabelcolormap), and of 255.
VOC_COLOURS = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128),
               (0, 128, 128), (128, 128, 128), (64, 0, 0), (192, 0, 0), (64, 128, 0),
               (192, 128, 0), (64, 0, 128), (192, 0, 128), (64, 128, 128), (192, 128, 128),
               (0, 64, 0), (128, 64, 0), (0, 192, 0), (128, 192, 0), (0, 64, 128)]
VOC_PALETTE = [v for colour in VOC_COLOURS + [(0, 0, 0)] * 234 + [(224, 224, 192)] for v in colour]


def write_palette_mask(path, mask, palette=VOC_PALETTE):
    """A palette PNG whose colours are NOT the indices (as VOC's SegmentationClass); VOC's
    palette unless another is given."""
    image = Image.fromarray(mask, mode="P")
    image.putpalette(list(palette))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def own_palette():
    """The palette of a labeling tool that is not VOC's."""
    return np.random.default_rng(1).integers(0, 256, 768).astype(np.uint8).tolist()


def write_grey_mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask, mode="L").save(path)


def batches(dataset):
    return list(dataset.as_numpy_iterator())


@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "VOC2012"
    pixels, masks = {}, {}
    for seed, image_id in enumerate(["2007_000032", "2007_000039", "2007_000063"]):
        pixels[image_id] = write_image(root / "JPEGImages" / f"{image_id}.png", seed)
        masks[image_id] = class_mask(seed, num_classes=21)
        write_palette_mask(root / "SegmentationClass" / f"{image_id}.png", masks[image_id])
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("2007_000039\n2007_000032\n")
    (lists / "val.txt").write_text("2007_000063\n")
    return root, pixels, masks


def test_voc_masks_are_palette_indices_and_the_splits_come_from_the_lists(voc, capsys):
    root, pixels, masks = voc
    source = open_segmentation_source(f"voc:{root}")
    assert source.class_names == list(VOC_CLASSES) and len(source.class_names) == 21
    # Where the 21 names came from, and how to give others, in one line.
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"voc:{root}: 21 classes of Pascal VOC, as every mask has VOC's "
                           "palette: background, aeroplane, bicycle, bird, boat, ...")
    assert line.endswith(f"list them one a line (mask value 0 first) in {root}/class_names.txt")
    assert (source.splits, source.default_eval_split) == (("train", "val"), "val")
    train = source.read_split("train")
    assert [e["id"] for e in train.examples] == ["2007_000039", "2007_000032"]
    assert train.examples[0]["mask"] == str(root / "SegmentationClass" / "2007_000039.png")
    dataset = train.as_tf_dataset()
    spec = dataset.element_spec
    assert {key: (value.dtype, value.shape.as_list()) for key, value in spec.items()} == {
        "image": (tf.uint8, [None, None, 3]), "mask": (tf.uint8, [None, None])}
    for element, image_id in zip(batches(dataset), ["2007_000039", "2007_000032"]):
        np.testing.assert_array_equal(element["image"], pixels[image_id])
        np.testing.assert_array_equal(element["mask"], masks[image_id])
    assert source.read_split("train", limit=1).num_examples == 1


def test_voc_without_lists_is_one_split_and_a_class_names_file_is_read(voc):
    root, _, masks = voc
    for file in (root / "ImageSets" / "Segmentation").iterdir():
        file.unlink()
    (root / "ImageSets" / "Segmentation").rmdir()
    (root / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(21)) + "\n")
    source = open_segmentation_source(f"voc:{root}")
    assert source.splits == ("all",) and source.class_names[:2] == ["c0", "c1"]
    assert [e["id"] for e in source.read_split("all").examples] == sorted(masks)


def test_voc_missing_files_are_named(voc):
    root, _, _ = voc
    (root / "SegmentationClass" / "2007_000063.png").unlink()
    with pytest.raises(ValueError, match="the image .*2007_000063.png has no mask "
                                         ".*SegmentationClass/2007_000063.png"):
        open_segmentation_source(f"voc:{root}")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000099\n")
    with pytest.raises(ValueError, match="split 'val' lists '2007_000099', but .*JPEGImages has "
                                         "no 2007_000099.jpg"):
        open_segmentation_source(f"voc:{root}")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("")
    with pytest.raises(ValueError, match="split 'val' .*val.txt\\) lists no images"):
        open_segmentation_source(f"voc:{root}")
    with pytest.raises(ValueError, match="voc:.*nowhere: no such folder"):
        open_segmentation_source(f"voc:{root / 'nowhere'}")
    with pytest.raises(ValueError, match="ImageSets: no JPEGImages/ folder \\(a VOC devkit"):
        open_segmentation_source(f"voc:{root / 'ImageSets'}")


def test_mask_values_outside_the_classes_fail_when_opened_naming_file_and_values(voc):
    root, _, masks = voc
    bad = masks["2007_000063"].copy()
    bad[5, 5], bad[6, 6] = 21, 40
    write_palette_mask(root / "SegmentationClass" / "2007_000063.png", bad)
    message = "2007_000063.png: mask values \\[21, 40\\] are outside \\[0, 21\\) and not 255"
    with pytest.raises(ValueError, match=message + ".* classes are of Pascal VOC, .*; if the "
                                                   "masks hold others, list them .*class_names"):
        open_segmentation_source(f"voc:{root}")
    with pytest.raises(ValueError, match=message):
        load_mask({"mask": str(root / "SegmentationClass" / "2007_000063.png")}, num_classes=21)
    # Fewer classes given: the values up to 20 of the first mask read are out of range.
    with pytest.raises(ValueError, match="2007_000039.png: mask values \\[2, 3, .* the 2 classes "
                                         "are given$"):
        open_segmentation_source(f"voc:{root}", class_names=["bg", "a"])


def test_a_folder_laid_out_as_voc_with_its_own_masks_takes_its_classes_from_them(tmp_path, capsys):
    # Issue 26: two classes (0 background, 1 nucleus) trained as VOC's 21, named aeroplane, ...
    root = tmp_path / "nuclei"
    for seed, stem in enumerate(["n1", "n2"]):
        write_image(root / "JPEGImages" / f"{stem}.jpg", seed)
        write_grey_mask(root / "SegmentationClass" / f"{stem}.png", class_mask(seed, 2))
    source = open_segmentation_source(f"voc:{root}")
    assert source.class_names == ["class 0", "class 1"]
    assert "classes from the mask values found (0 to 1)" in source.notes
    (line,) = capsys.readouterr().out.splitlines()
    assert line == (f"voc:{root}: 2 classes from the mask values found (0 to 1): class 0, "
                    f"class 1; to name them, list them one a line (mask value 0 first) in "
                    f"{root}/class_names.txt")
    # A palette of its own is no VOC devkit either.
    write_palette_mask(root / "SegmentationClass" / "n1.png", class_mask(0, 2), own_palette())
    assert open_segmentation_source(f"voc:{root}").class_names == ["class 0", "class 1"]
    # Named in the file the line points to, the classes are those; a value beyond is an error.
    (root / "class_names.txt").write_text("background\nnucleus\n")
    assert open_segmentation_source(f"voc:{root}").class_names == ["background", "nucleus"]
    assert "classes from " + str(root / "class_names.txt") in capsys.readouterr().out
    (root / "class_names.txt").write_text("background\n")
    with pytest.raises(ValueError, match="n1.png: mask values \\[1\\] are outside \\[0, 1\\) and "
                                         "not 255 \\(ignore\\); the 1 classes are from .*"
                                         "class_names.txt$"):
        open_segmentation_source(f"voc:{root}")


def test_masks_of_one_class_are_refused(tmp_path):
    write_image(tmp_path / "images" / "x.png")
    write_grey_mask(tmp_path / "masks" / "x.png", np.zeros((HEIGHT, WIDTH), np.uint8))
    with pytest.raises(ValueError, match="its 1 masks hold no value but 0, 255: one class or "
                                         "none, and segmentation needs two or more"):
        open_segmentation_source(f"masks:{tmp_path}")


# masks: folders of images and masks.


@pytest.fixture
def mask_folder(tmp_path):
    root = tmp_path / "cells"
    content = {}
    for split, stems in (("train", ["a", "b"]), ("val", ["c"])):
        for seed, stem in enumerate(stems):
            suffix = ".jpg" if stem == "b" else ".png"
            image = write_image(root / split / "images" / f"{stem}{suffix}", seed)
            mask = class_mask(seed, num_classes=3)
            write_grey_mask(root / split / "masks" / f"{stem}.png", mask)
            content[stem] = image, mask
    return root, content


def test_a_mask_folder_pairs_images_and_masks_by_stem(mask_folder):
    root, content = mask_folder
    source = open_segmentation_source(f"masks:{root}", class_names=["bg", "nucleus", "edge"])
    assert (source.splits, source.default_eval_split) == (("train", "val"), "val")
    train = source.read_split("train")
    assert [(e["id"], e["image"][-5:], e["mask"][-5:]) for e in train.examples] == [
        ("a", "a.png", "a.png"), ("b", "b.jpg", "b.png")]
    a, b = batches(source.as_tf_dataset("train"))
    np.testing.assert_array_equal(a["image"], content["a"][0])
    np.testing.assert_array_equal(a["mask"], content["a"][1])
    np.testing.assert_array_equal(b["mask"], content["b"][1])
    # JPEG is lossy: b is what PIL decodes from the file, but for the decoders' upsampling.
    decoded = np.asarray(Image.open(root / "train" / "images" / "b.jpg").convert("RGB"))
    difference = np.abs(b["image"].astype(int) - decoded)
    assert difference.mean() < 2 and difference.max() <= 8
    image, mask = load_segmentation_example(source.read_split("val").examples[0], 3)
    assert image.shape == (HEIGHT, WIDTH, 3) and mask.shape == (HEIGHT, WIDTH)


def test_a_mask_folder_without_splits_is_one_split(tmp_path):
    write_image(tmp_path / "images" / "x.png")
    write_grey_mask(tmp_path / "masks" / "x.png", class_mask())
    (tmp_path / "class_names.txt").write_text("bg\nfg\nedge\n")
    source = open_segmentation_source(f"masks:{tmp_path}")
    assert source.splits == ("all",) and source.class_names == ["bg", "fg", "edge"]


def test_a_mask_folder_without_class_names_takes_them_from_the_mask_values(mask_folder):
    root, _ = mask_folder
    assert open_segmentation_source(f"masks:{root}").class_names == [
        "class 0", "class 1", "class 2"]


def test_hidden_and_stray_files_in_a_mask_folder_are_skipped_with_a_line(mask_folder, capsys):
    root, _ = mask_folder
    (root / "train" / "images" / ".ipynb_checkpoints").mkdir()
    write_image(root / "train" / "images" / ".ipynb_checkpoints" / "a-checkpoint.png")
    (root / "train" / "images" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    write_image(root / "train" / "images" / "._a.png")  # macOS's copy of a's metadata
    (root / "train" / "masks" / "notes.txt").write_text("drawn by hand")
    (root / ".git").mkdir()
    source = open_segmentation_source(f"masks:{root}", class_names=["bg", "nucleus", "edge"])
    assert source.splits == ("train", "val")
    assert [e["id"] for e in source.read_split("train").examples] == ["a", "b"]
    (line,) = capsys.readouterr().out.splitlines()
    assert line == (f"masks:{root}: skipped 5 hidden or non-data entries: .git/, "
                    "train/images/.DS_Store, train/images/._a.png and 2 more")


def test_mask_folder_errors_name_the_files(mask_folder, tmp_path):
    root, _ = mask_folder
    names = ["bg", "nucleus", "edge"]
    with pytest.raises(ValueError, match="masks:.*: no images/ folder"):
        open_segmentation_source(f"masks:{root / 'train' / 'masks'}", class_names=names)
    write_image(root / "val" / "images" / "d.png")
    with pytest.raises(ValueError, match="the image .*val/images/d.png has no mask "
                                         ".*val/masks/d.png"):
        open_segmentation_source(f"masks:{root}", class_names=names)
    (root / "val" / "images" / "d.png").unlink()
    write_grey_mask(root / "val" / "masks" / "e.png", class_mask())
    with pytest.raises(ValueError, match="the mask .*val/masks/e.png has no image"):
        open_segmentation_source(f"masks:{root}", class_names=names)
    (root / "val" / "masks" / "e.png").unlink()
    for file in (root / "val" / "images").iterdir():
        file.unlink()
    with pytest.raises(ValueError, match="split 'val' has no images in .*val/images"):
        open_segmentation_source(f"masks:{root}", class_names=names)
    with pytest.raises(ValueError, match="unknown segmentation dataset 'cells:x'"):
        open_segmentation_source("cells:x")


# cityscapes: the distributed folders, label ids mapped to the 19 training classes.


def write_cityscapes(root, split, city, frame, label_ids):
    stem = f"{city}_000000_{frame:06d}"
    image = write_image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", frame)
    write_grey_mask(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label_ids)
    return stem, image


def cityscapes_ids(seed):
    """Label ids 0-33 at random: road (7), car (26), void (0-6), parking (9), ..."""
    return np.random.default_rng(seed).integers(0, 34, (HEIGHT, WIDTH)).astype(np.uint8)


def test_cityscapes_label_ids_become_the_19_classes_and_the_rest_is_ignored(tmp_path):
    from keras_coordatt.data.segmentation.cityscapes import CITYSCAPES_CLASSES

    written = {}
    for split, city, frame in (("train", "zurich", 2), ("train", "aachen", 1), ("val", "lindau", 3)):
        written[(split, city)] = write_cityscapes(tmp_path, split, city, frame,
                                                  cityscapes_ids(frame)), cityscapes_ids(frame)
    (tmp_path / "leftImg8bit" / "train" / "aachen" / "notes.txt").write_text("not an image")
    source = open_segmentation_source(f"cityscapes:{tmp_path}")
    assert source.class_names == list(CITYSCAPES_CLASSES) and len(source.class_names) == 19
    assert (source.splits, source.default_eval_split) == (("train", "val"), "val")
    train = source.read_split("train")
    assert [e["id"] for e in train.examples] == ["aachen_000000_000001", "zurich_000000_000002"]
    (_, image), ids = written[("train", "aachen")]
    first = batches(source.as_tf_dataset("train"))[0]
    np.testing.assert_array_equal(first["image"], image)
    # The benchmark's table: road 7 -> 0, sidewalk 8 -> 1, building 11 -> 2, ..., car 26 -> 13,
    # bicycle 33 -> 18; void 0-6, parking 9, rail track 10, guard rail 14 ... -> 255.
    expected = np.full(ids.shape, 255, np.uint8)
    for label_id, train_id in {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8,
                               22: 9, 23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16,
                               32: 17, 33: 18}.items():
        expected[ids == label_id] = train_id
    np.testing.assert_array_equal(first["mask"], expected)
    assert {0, 13, 18, 255} <= set(np.unique(first["mask"]).tolist())
    with pytest.raises(ValueError, match="classes are Cityscapes' 19"):
        open_segmentation_source(f"cityscapes:{tmp_path}", class_names=["a", "b"])


def test_cityscapes_problems_name_the_folder_or_file(tmp_path):
    with pytest.raises(ValueError, match="no gtFine/ folder; unpack gtFine_trainvaltest.zip"):
        write_image(tmp_path / "leftImg8bit" / "train" / "bonn" / "bonn_000000_000000_leftImg8bit.png")
        open_segmentation_source(f"cityscapes:{tmp_path}")
    (tmp_path / "gtFine" / "train" / "bonn").mkdir(parents=True)
    with pytest.raises(ValueError, match="bonn_000000_000000_leftImg8bit.png has no mask "
                                         ".*gtFine/train/bonn/bonn_000000_000000_gtFine_labelIds.png"):
        open_segmentation_source(f"cityscapes:{tmp_path}")
    ids = cityscapes_ids(0)
    ids[0, 0] = 40  # not a label id
    write_grey_mask(tmp_path / "gtFine" / "train" / "bonn" / "bonn_000000_000000_gtFine_labelIds.png",
                    ids)
    example = open_segmentation_source(f"cityscapes:{tmp_path}").read_split("train").examples[0]
    with pytest.raises(ValueError, match=r"bonn_000000_000000_gtFine_labelIds.png: mask values "
                                         r"\[40\] are not label ids of this dataset \(0 to 33\)"):
        load_segmentation_example(example, 19)
    (tmp_path / "leftImg8bit" / "val").mkdir()
    with pytest.raises(ValueError, match="leftImg8bit/val/ has no gtFine/val/ beside it"):
        open_segmentation_source(f"cityscapes:{tmp_path}")
    (tmp_path / "gtFine" / "val").mkdir()
    with pytest.raises(ValueError, match="split 'val' has no <city>/\\*_leftImg8bit.png images"):
        open_segmentation_source(f"cityscapes:{tmp_path}")


def test_a_mask_of_another_size_or_in_colour_or_corrupt_fails_naming_it(mask_folder):
    root, _ = mask_folder
    source_for = lambda: open_segmentation_source(f"masks:{root}", class_names=["a", "b", "c"])
    write_grey_mask(root / "val" / "masks" / "c.png", class_mask(size=(40, 32)))
    with pytest.raises(ValueError, match="val/masks/c.png: the mask is 40x32 pixels, its image "
                                         ".*val/images/c.png 48x32"):
        load_segmentation_example(source_for().read_split("val").examples[0], 3)
    with pytest.raises(tf.errors.OpError, match="c.png: the mask is 40x32"):
        batches(source_for().as_tf_dataset("val"))
    write_image(root / "val" / "masks" / "c.png")
    with pytest.raises(ValueError, match="c.png: the mask is a RGB image; a mask holds class "
                                         "indices"):
        load_mask(source_for().read_split("val").examples[0])
    (root / "val" / "masks" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match="val/masks/c.png: cannot read the mask"):
        load_mask({"mask": str(root / "val" / "masks" / "c.png")})
    # Every mask is read when the folder is opened: a bad one fails before training.
    with pytest.raises(ValueError, match="val/masks/c.png: cannot read the mask"):
        source_for()


# tfds: oxford_iiit_pet, unprepared and offline; a tiny stand-in for its mapping.


def test_tfds_pets_unprepared_offline_fails_saying_how_to_prepare(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    from keras_coordatt.data.core import tfds as tfds_core

    monkeypatch.setattr(tfds_core, "network_reachable", lambda host, port: False)
    with pytest.raises(ConnectionError, match="(?s)tfds:oxford_iiit_pet is not prepared in "
                                              f"{tmp_path}.*`tfds build oxford_iiit_pet "
                                              "--data_dir DIR`"):
        open_segmentation_source("tfds:oxford_iiit_pet", data_dir=str(tmp_path))


def test_tfds_other_datasets_are_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="tfds:cifar10: not a segmentation dataset this reader "
                                         "knows; it reads tfds:oxford_iiit_pet"):
        open_segmentation_source("tfds:cifar10")


def test_tfds_pet_trimaps_become_background_pet_and_ignore(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from keras_coordatt.data.segmentation import tfds as segmentation_tfds

    # The pets' features, with trimaps 1 pet, 2 background, 3 border.
    trimap = np.full((HEIGHT, WIDTH, 1), 2, np.uint8)
    trimap[8:24, 10:30] = 1
    trimap[8, 10:30] = 3

    def examples(count):
        return [{"image": np.full((HEIGHT, WIDTH, 3), index, np.uint8),
                 "file_name": f"pet_{index}.jpg", "segmentation_mask": trimap}
                for index in range(count)]

    features = {"image": tfds.features.Image(shape=(None, None, 3)),
                "file_name": tfds.features.Text(),
                "segmentation_mask": tfds.features.Image(shape=(None, None, 1))}
    prepare_tiny_tfds("CoordattTinyPets", tmp_path, features,
                      {"train": examples(2), "test": examples(1)})
    monkeypatch.setitem(segmentation_tfds.TFDS_DATASETS, "coordatt_tiny_pets",
                        segmentation_tfds.TFDS_DATASETS["oxford_iiit_pet"])
    source = open_segmentation_source("tfds:coordatt_tiny_pets", data_dir=str(tmp_path))
    assert source.class_names == ["background", "pet"]
    assert (source.splits, source.default_eval_split) == (("train", "test"), "test")
    expected = np.zeros((HEIGHT, WIDTH), np.uint8)
    expected[8:24, 10:30] = 1
    expected[8, 10:30] = 255
    elements = batches(source.as_tf_dataset("train"))
    assert len(elements) == 2
    for index, element in enumerate(elements):
        assert element["image"].shape == (HEIGHT, WIDTH, 3) and element["image"][0, 0, 0] == index
        assert element["mask"].dtype == np.uint8
        np.testing.assert_array_equal(element["mask"], expected)
    (example,) = list(source.read_split("test").examples)
    assert example["id"] == "pet_0.jpg"
    np.testing.assert_array_equal(load_mask(example, 2), expected)
