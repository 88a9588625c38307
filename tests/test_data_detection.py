"""Detection sources (keras_coordatt.data.detection): VOC, COCO, tfds; every error named."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_coordatt.data import DetectionSource
from keras_coordatt.data import load_image
from keras_coordatt.data import open_detection_source
from made_data import HEIGHT
from made_data import WIDTH
from made_data import prepare_tiny_tfds
from made_data import voc_xml
from made_data import write_image


def write_voc_pair(folder, stem, objects, suffix=".png", seed=0, xml_folder=None, **size):
    pixels = write_image(folder / (stem + suffix), seed)
    xml_folder = xml_folder or folder
    xml_folder.mkdir(parents=True, exist_ok=True)
    size = {"width": WIDTH, "height": HEIGHT, **size}
    (xml_folder / f"{stem}.xml").write_text(voc_xml(stem + suffix, objects=objects, **size))
    return pixels


def batches(dataset):
    return list(dataset.as_numpy_iterator())


# voc: a plain folder of images and XML files.


def test_a_plain_folder_is_one_split_with_class_names_sorted_from_the_files(tmp_path):
    write_voc_pair(tmp_path, "a", [("tree", (1, 2, 11, 12), 0), ("snag", (20, 4, 48, 32), 1)])
    write_voc_pair(tmp_path, "b", [("tree", (0, 0, 5, 6), 0)], suffix=".jpg", seed=1)
    source = open_detection_source(f"voc:{tmp_path}")
    assert isinstance(source, DetectionSource)
    assert source.class_names == ["snag", "tree"]
    assert (source.splits, source.default_eval_split) == (("all",), "all")
    split = source.read_split("all")
    a, b = split.examples
    assert (a["id"], b["id"], a["width"], a["height"]) == ("a", "b", WIDTH, HEIGHT)
    assert a["image"] == str(tmp_path / "a.png") and b["image"] == str(tmp_path / "b.jpg")
    np.testing.assert_array_equal(a["boxes"], [[1, 2, 11, 12], [20, 4, 48, 32]])
    assert a["boxes"].dtype == np.float32 and a["labels"].dtype == np.int32
    assert a["labels"].tolist() == [1, 0] and b["labels"].tolist() == [1]
    assert a["difficult"].tolist() == [False, True]
    assert a["crowd_boxes"].shape == (0, 4)


def test_split_folders_are_the_splits_and_the_classes_come_from_all_of_them(tmp_path):
    write_voc_pair(tmp_path / "train", "a", [("tree", (1, 2, 11, 12), 0)])
    write_voc_pair(tmp_path / "train", "b", [("tree", (1, 2, 11, 12), 0)], seed=1)
    write_voc_pair(tmp_path / "val", "c", [("bush", (3, 3, 9, 9), 0)])
    source = open_detection_source(f"voc:{tmp_path}")
    assert (source.splits, source.default_eval_split) == (("train", "val"), "val")
    assert source.class_names == ["bush", "tree"]
    assert [e["id"] for e in source.read_split("train").examples] == ["a", "b"]
    assert source.read_split("val").examples[0]["labels"].tolist() == [0]
    assert source.read_split("train", limit=1).num_examples == 1


def test_given_class_names_set_the_labels(tmp_path):
    write_voc_pair(tmp_path, "a", [("tree", (1, 2, 11, 12), 0)])
    source = open_detection_source(f"voc:{tmp_path}", class_names=["background", "snag", "tree"])
    assert source.class_names == ["background", "snag", "tree"]
    assert source.read_split("all").examples[0]["labels"].tolist() == [2]


def test_the_tf_dataset_gives_images_boxes_and_labels_in_order(tmp_path):
    first = write_voc_pair(tmp_path, "a", [("tree", (1, 2, 11, 12), 0),
                                           ("snag", (5, 5, 9, 30), 0)])
    second = write_voc_pair(tmp_path, "b", [], seed=1)
    source = open_detection_source(f"voc:{tmp_path}")
    dataset = source.as_tf_dataset("all")
    spec = dataset.element_spec
    assert {key: (value.dtype, value.shape.as_list()) for key, value in spec.items()} == {
        "image": (tf.uint8, [None, None, 3]), "boxes": (tf.float32, [None, 4]),
        "labels": (tf.int32, [None])}
    a, b = batches(dataset)
    np.testing.assert_array_equal(a["image"], first)
    np.testing.assert_array_equal(b["image"], second)
    np.testing.assert_array_equal(a["boxes"], [[1, 2, 11, 12], [5, 5, 9, 30]])
    assert a["labels"].tolist() == [1, 0]
    assert b["boxes"].shape == (0, 4) and b["labels"].shape == (0,)


# voc: a VOC devkit.


@pytest.fixture
def devkit(tmp_path):
    root = tmp_path / "VOC2007"
    write_voc_pair(root / "JPEGImages", "000005", [("chair", (2, 3, 30, 31), 0)],
                   suffix=".jpg", xml_folder=root / "Annotations")
    write_voc_pair(root / "JPEGImages", "000007", [("car", (10, 1, 47, 20), 1)],
                   suffix=".jpg", seed=1, xml_folder=root / "Annotations")
    write_voc_pair(root / "JPEGImages", "000009", [("car", (0, 0, 4, 4), 0)],
                   suffix=".jpg", seed=2, xml_folder=root / "Annotations")
    lists = root / "ImageSets" / "Main"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("000007\n000005\n")
    (lists / "val.txt").write_text("000009\n")
    (lists / "car_train.txt").write_text("000007  1\n000005 -1\n")
    return root


def test_a_devkit_reads_its_split_lists_in_their_order(devkit):
    source = open_detection_source(f"voc:{devkit}")
    assert (source.splits, source.default_eval_split) == (("train", "val"), "val")
    assert source.class_names == ["car", "chair"]
    train = source.read_split("train")
    assert [e["id"] for e in train.examples] == ["000007", "000005"]
    assert train.examples[0]["image"] == str(devkit / "JPEGImages" / "000007.jpg")
    np.testing.assert_array_equal(train.examples[0]["boxes"], [[10, 1, 47, 20]])
    assert train.examples[0]["difficult"].tolist() == [True]
    (image,) = [e["image"] for e in batches(source.as_tf_dataset("val"))]
    assert image.shape == (HEIGHT, WIDTH, 3)


def test_a_devkit_without_image_lists_is_one_split(devkit):
    for file in (devkit / "ImageSets" / "Main").iterdir():
        file.unlink()
    (devkit / "ImageSets" / "Main").rmdir()
    source = open_detection_source(f"voc:{devkit}")
    assert source.splits == ("all",)
    assert [e["id"] for e in source.read_split("all").examples] == ["000005", "000007", "000009"]


def test_devkit_errors_name_the_split_and_file(devkit):
    (devkit / "ImageSets" / "Main" / "test.txt").write_text("000005\n000099\n")
    with pytest.raises(ValueError, match="split 'test' lists '000099', but there is no .*"
                                         "Annotations/000099.xml"):
        open_detection_source(f"voc:{devkit}")
    (devkit / "ImageSets" / "Main" / "test.txt").write_text("\n")
    with pytest.raises(ValueError, match="split 'test' .*test.txt\\) lists no images"):
        open_detection_source(f"voc:{devkit}")
    (devkit / "ImageSets" / "Main" / "test.txt").unlink()
    (devkit / "JPEGImages" / "000009.jpg").unlink()
    with pytest.raises(ValueError, match="000009.xml: no image for it in .*JPEGImages"):
        open_detection_source(f"voc:{devkit}")


# voc: bad inputs.


def test_voc_bad_inputs_are_errors_naming_the_file_or_value(tmp_path):
    with pytest.raises(ValueError, match="voc:.*nowhere: no such folder"):
        open_detection_source(f"voc:{tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match="neither a VOC devkit .* nor a folder of .xml"):
        open_detection_source(f"voc:{tmp_path}")
    write_voc_pair(tmp_path, "a", [("tree", (1, 2, 49, 12), 0)])
    with pytest.raises(ValueError, match="a.xml: object 0 \\(tree\\) has the box xmin=1 ymin=2 "
                                         "xmax=49 ymax=12, outside the 48x32 image"):
        open_detection_source(f"voc:{tmp_path}")
    write_voc_pair(tmp_path, "a", [("oak", (1, 2, 11, 12), 0)])
    with pytest.raises(ValueError, match="a.xml: object 0 is a 'oak', not one of the classes "
                                         "\\['tree'\\]"):
        open_detection_source(f"voc:{tmp_path}", class_names=["tree"])
    source = open_detection_source(f"voc:{tmp_path}")
    with pytest.raises(ValueError, match="has no split 'train'; its splits are 'all'"):
        source.read_split("train")
    with pytest.raises(ValueError, match="unknown detection dataset 'pascal:x'; give"):
        open_detection_source("pascal:x")


def test_an_empty_split_folder_is_an_error(tmp_path):
    write_voc_pair(tmp_path / "train", "a", [("tree", (1, 2, 11, 12), 0)])
    (tmp_path / "val").mkdir()
    with pytest.raises(ValueError, match="val: no .xml annotation files"):
        open_detection_source(f"voc:{tmp_path}")


def test_a_corrupt_image_fails_when_loaded_naming_the_file(tmp_path):
    write_voc_pair(tmp_path, "a", [("tree", (1, 2, 11, 12), 0)])
    write_voc_pair(tmp_path, "b", [("tree", (1, 2, 11, 12), 0)])
    data = (tmp_path / "b.png").read_bytes()
    (tmp_path / "b.png").write_bytes(data[:40])
    split = open_detection_source(f"voc:{tmp_path}").read_split("all")
    assert load_image(split.examples[0]).shape == (HEIGHT, WIDTH, 3)
    with pytest.raises(ValueError, match="cannot decode image file .*b.png \\(corrupt"):
        load_image(split.examples[1])
    with pytest.raises(tf.errors.OpError, match="cannot decode image file .*b.png"):
        batches(split.as_tf_dataset())


def test_an_image_of_another_size_than_its_annotation_fails_naming_both(tmp_path):
    write_voc_pair(tmp_path, "a", [("tree", (1, 2, 11, 12), 0)], width=64, height=32)
    (example,) = open_detection_source(f"voc:{tmp_path}").read_split("all").examples
    with pytest.raises(ValueError, match="a.png: the image is 48x32 pixels, its annotation "
                                         "says 64x32"):
        load_image(example)


# coco: instances files.


def coco_json(images, annotations, categories=((7, "cat"), (3, "dog"))):
    """A COCO instances file; a category is ``(id, name)`` or ``(id, name, supercategory)``."""
    return json.dumps({
        "images": [{"id": i, "file_name": f, "width": WIDTH, "height": HEIGHT} for i, f in images],
        "annotations": [
            {"id": a_id, "image_id": image_id, "category_id": c_id, "bbox": list(bbox),
             "iscrowd": crowd, "area": bbox[2] * bbox[3]}
            for a_id, image_id, c_id, bbox, crowd in annotations],
        "categories": [dict(zip(("id", "name", "supercategory"), category))
                       for category in categories],
    })


@pytest.fixture
def coco(tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    pixels = write_image(root / "train" / "001.png")
    write_image(root / "train" / "002.jpg", seed=1)
    write_image(root / "val" / "010.png", seed=2)
    (root / "annotations" / "instances_train.json").write_text(coco_json(
        [(1, "001.png"), (2, "002.jpg")],
        [(100, 1, 7, (4, 5, 10, 20), 0), (101, 1, 3, (0, 0, 48, 32), 0),
         (102, 1, 3, (10, 10, 5, 5), 1), (103, 2, 7, (1, 1, 0, 3), 0)]))
    (root / "annotations" / "instances_val.json").write_text(coco_json(
        [(10, "010.png")], [(200, 10, 3, (2.5, 3.5, 4, 6), 0),
                            (201, 10, 7, (40, 28, 8.5, 4.5), 0)]))
    return root, pixels


def test_a_coco_folder_gives_xyxy_pixel_boxes_labels_in_category_id_order(coco):
    root, pixels = coco
    source = open_detection_source(f"coco:{root}")
    assert source.class_names == ["dog", "cat"] and source.category_ids == [3, 7]
    assert (source.splits, source.default_eval_split) == (("train", "val"), "val")
    train = source.read_split("train")
    first, second = train.examples
    assert (first["id"], first["image_id"]) == ("1", 1)
    assert first["image"] == str(root / "train" / "001.png")
    np.testing.assert_array_equal(first["boxes"], [[4, 5, 14, 25], [0, 0, 48, 32]])
    assert first["labels"].tolist() == [1, 0]
    # The crowd region is kept apart, the box without area left out (and said so).
    np.testing.assert_array_equal(first["crowd_boxes"], [[10, 10, 15, 15]])
    assert first["crowd_labels"].tolist() == [0]
    assert second["boxes"].shape == (0, 4)
    assert train.notes == "1 boxes without area left out"
    (val,) = batches(source.as_tf_dataset("val"))
    # Half a pixel past the edge (rounding): clipped to it.
    np.testing.assert_array_equal(val["boxes"], [[2.5, 3.5, 6.5, 9.5], [40, 28, 48, 32]])
    assert val["labels"].tolist() == [0, 1]
    a, _ = batches(train.as_tf_dataset())
    np.testing.assert_array_equal(a["image"], pixels)
    assert a["labels"].tolist() == [1, 0]


def test_a_coco_file_named_for_its_split_is_that_split(coco, monkeypatch):
    root, _ = coco
    (root / "train" / "instances_train2017.json").write_text(
        (root / "annotations" / "instances_train.json").read_text())
    source = open_detection_source(f"coco:{root / 'train' / 'instances_train2017.json'}")
    assert source.splits == ("train2017",)
    assert source.read_split("train2017").num_examples == 2
    monkeypatch.chdir(root / "train")
    (first, _) = open_detection_source("coco:instances_train2017.json").read_split(
        "train2017").examples
    assert load_image(first).shape == (HEIGHT, WIDTH, 3)


def write_coco_images(folder, count, prefix=""):
    """``count`` images in ``folder`` and their COCO ``(id, file_name)`` entries, one box each."""
    images = [(i, f"{prefix}{i:03d}.png") for i in range(1, count + 1)]
    for seed, (_, file_name) in enumerate(images):
        write_image(folder / file_name.rsplit("/", 1)[-1], seed)
    boxes = [(100 + i, i, 3, (1, 1, 4, 4), 0) for i, _ in images]
    return images, boxes


def test_a_file_without_a_split_holds_out_a_fixed_fifth_for_evaluation(tmp_path, capsys):
    images, boxes = write_coco_images(tmp_path, 10)
    (tmp_path / "labels.json").write_text(coco_json(images, boxes))
    source = open_detection_source(f"coco:{tmp_path / 'labels.json'}")
    assert (source.splits, source.default_eval_split) == (("train", "val", "all"), "val")
    ids = {split: [e["id"] for e in source.read_split(split).examples] for split in source.splits}
    assert (len(ids["train"]), len(ids["val"])) == (8, 2)
    assert sorted(ids["train"] + ids["val"]) == sorted(ids["all"]) == sorted(map(str, range(1, 11)))
    assert f"coco:{tmp_path / 'labels.json'}: labels.json names no split: a held-out 20% of its " \
           "10 images (2, split seed 0) is 'val'" in capsys.readouterr().out
    # The same images are held out every time it is opened.
    again = open_detection_source(f"coco:{tmp_path / 'labels.json'}").read_split("val")
    assert [e["id"] for e in again.examples] == ids["val"]


def test_label_studio_and_cvat_exports_put_the_images_in_images(tmp_path):
    # Label Studio: result.json beside images/, its file names "images/<name>".
    studio = tmp_path / "studio"
    images, boxes = write_coco_images(studio / "images", 5, prefix="images/")
    (studio / "result.json").write_text(coco_json(images, boxes))
    source = open_detection_source(f"coco:{studio}")
    assert source.splits == ("train", "val", "all")
    assert source.read_split("all").examples[0]["image"] == str(studio / "images" / "001.png")
    # CVAT: annotations/instances_default.json ("default": no subset) beside images/.
    cvat = tmp_path / "cvat"
    images, boxes = write_coco_images(cvat / "images", 5)
    (cvat / "annotations").mkdir()
    (cvat / "annotations" / "instances_default.json").write_text(coco_json(images, boxes))
    source = open_detection_source(f"coco:{cvat}")
    assert (source.splits, source.default_eval_split) == (("train", "val", "all"), "val")
    (first,) = batches(source.as_tf_dataset("val"))
    assert first["image"].shape == (HEIGHT, WIDTH, 3) and first["labels"].tolist() == [0]


def test_a_roboflow_export_is_a_folder_per_split_each_with_its_json(tmp_path, capsys):
    # Roboflow lists the dataset as category 0, the supercategory of the classes.
    categories = ((0, "cells", "none"), (1, "nucleus", "cells"), (2, "debris", "cells"))
    for split, count in (("train", 3), ("valid", 2), ("test", 1)):
        images, _ = write_coco_images(tmp_path / split, count)
        boxes = [(100 + i, i, 1 + i % 2, (1, 1, 4, 4), 0) for i, _ in images]
        (tmp_path / split / "_annotations.coco.json").write_text(
            coco_json(images, boxes, categories))
    (tmp_path / "README.roboflow.txt").write_text("exported from roboflow.com")
    source = open_detection_source(f"coco:{tmp_path}")
    assert (source.splits, source.default_eval_split) == (("train", "valid", "test"), "valid")
    assert (source.class_names, source.category_ids) == (["nucleus", "debris"], [1, 2])
    train = source.read_split("train").examples
    assert [e["labels"].tolist() for e in train] == [[1], [0], [1]]
    assert train[0]["image"] == str(tmp_path / "train" / "001.png")
    assert source.read_split("test").num_examples == 1
    assert capsys.readouterr().out == (f"coco:{tmp_path}: skipped 1 hidden or non-data entry: "
                                       "README.roboflow.txt\n")
    (tmp_path / "valid" / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="the split folder .*valid holds 2 .json files "
                                         "\\(_annotations.coco.json, other.json\\); keep one"):
        open_detection_source(f"coco:{tmp_path}")


def test_coco_class_names_given_map_categories_by_name(coco):
    root, _ = coco
    source = open_detection_source(f"coco:{root}", class_names=["cat", "bird", "dog"])
    assert source.category_ids == [7, None, 3]
    assert source.read_split("train").examples[0]["labels"].tolist() == [0, 2]
    with pytest.raises(ValueError, match="instances_.*json: the categories \\['cat'\\] are not "
                                         "among the classes \\['dog'\\]"):
        open_detection_source(f"coco:{root}", class_names=["dog"])


@pytest.mark.parametrize("images, annotations, match", [
    ([(1, "001.png")], [(100, 1, 5, (1, 1, 4, 4), 0)],
     "annotation 100 has category_id 5, not one of the categories \\[3, 7\\]"),
    ([(1, "001.png")], [(100, 1, 3, (40, 1, 10, 4), 0)],
     "annotation 100 has the bbox x=40 y=1 w=10 h=4, outside the 48x32 image 1"),
    ([(1, "001.png")], [(100, 1, 3, (1, 1, -2, 4), 0)], "annotation 100 .* negative width"),
    ([(1, "missing.png")], [], "image 1's file .*missing.png does not exist"),
    ([(1, "001.png")], [(100, 9, 3, (1, 1, 4, 4), 0)],
     "annotation 100 is for image id 9, which is not among the images"),
    ([], [], "has no images"),
])
def test_coco_bad_annotations_are_errors_naming_file_and_annotation(coco, images, annotations,
                                                                    match):
    root, _ = coco
    (root / "annotations" / "instances_train.json").write_text(coco_json(images, annotations))
    with pytest.raises(ValueError, match="instances_train.json: " + match):
        # Opening reads the smallest file (for the categories), the split the rest.
        open_detection_source(f"coco:{root}").read_split("train")


def test_coco_files_that_are_not_instances_are_errors(coco, tmp_path):
    root, _ = coco
    captions = {"images": [], "annotations": [{"id": 1, "image_id": 1, "caption": "a cat"}]}
    (root / "annotations" / "instances_val.json").write_text(json.dumps(captions))
    with pytest.raises(ValueError, match="instances_val.json: not a COCO instances file: no "
                                         "categories"):
        open_detection_source(f"coco:{root}")
    (root / "annotations" / "instances_val.json").write_text("{not json")
    with pytest.raises(ValueError, match="instances_val.json: not a readable JSON file"):
        open_detection_source(f"coco:{root}")
    with pytest.raises(ValueError, match="no COCO annotations: give annotations/instances_<split>"):
        open_detection_source(f"coco:{tmp_path / 'coco' / 'train'}")
    with pytest.raises(ValueError, match="coco:.*gone.json: no such file"):
        open_detection_source(f"coco:{tmp_path / 'gone.json'}")


def test_coco_splits_with_other_categories_are_an_error(coco):
    root, _ = coco
    (root / "annotations" / "instances_train.json").write_text(coco_json(
        [(1, "001.png")], [], categories=((3, "dog"), (8, "cat"))))
    source = open_detection_source(f"coco:{root}")
    with pytest.raises(ValueError, match="instances_(train|val).json: its categories differ "
                                         "from .*instances_(val|train).json's"):
        for split in source.splits:
            source.read_split(split)


# tfds: a tiny prepared detection dataset, and unprepared ones offline.


@pytest.fixture(scope="module")
def tiny_boxes_tfds(tmp_path_factory):
    tfds = pytest.importorskip("tensorflow_datasets")
    bbox = tfds.features.BBox(ymin=0.25, xmin=0.5, ymax=0.75, xmax=1.0)
    crowd = tfds.features.BBox(ymin=0.0, xmin=0.0, ymax=0.5, xmax=0.5)

    def examples(count):
        return [{"image": np.full((HEIGHT, WIDTH, 3), 10 * index, np.uint8),
                 "image/filename": f"im{index}.png",
                 "objects": [{"bbox": bbox, "label": index % 2, "is_crowd": False},
                             {"bbox": crowd, "label": 0, "is_crowd": True}]}
                for index in range(count)]

    features = {
        "image": tfds.features.Image(shape=(None, None, 3)),
        "image/filename": tfds.features.Text(),
        "objects": tfds.features.Sequence({
            "bbox": tfds.features.BBoxFeature(),
            "label": tfds.features.ClassLabel(names=["cell", "debris"]),
            "is_crowd": tf.bool,
        }),
    }
    return prepare_tiny_tfds("CoordattTinyBoxes", tmp_path_factory.mktemp("tfds"), features,
                             {"train": examples(3), "test": examples(1)})


def test_tfds_boxes_become_pixel_xyxy_without_the_crowd(tiny_boxes_tfds):
    source = open_detection_source("tfds:coordatt_tiny_boxes", data_dir=tiny_boxes_tfds)
    assert source.class_names == ["cell", "debris"] and source.category_ids is None
    assert (source.splits, source.default_eval_split) == (("train", "test"), "test")
    elements = batches(source.as_tf_dataset("train"))
    assert len(elements) == 3 and sorted(elements[0]) == ["boxes", "image", "labels"]
    for index, element in enumerate(elements):
        assert element["image"].shape == (HEIGHT, WIDTH, 3)
        assert element["image"][0, 0, 0] == 10 * index
        np.testing.assert_allclose(element["boxes"], [[24, 8, 48, 24]])
        assert element["labels"].tolist() == [index % 2]
    split = source.read_split("train[1:]", limit=1)
    assert split.num_examples == 1
    (example,) = list(split.examples)
    assert example["id"] == "im1.png" and (example["width"], example["height"]) == (WIDTH, HEIGHT)
    np.testing.assert_allclose(example["crowd_boxes"], [[0, 0, 24, 16]])
    assert split.examples[0]["id"] == "im1.png"
    assert load_image(example).shape == (HEIGHT, WIDTH, 3)
    with pytest.raises(ValueError, match="its splits are 'train', 'test'"):
        source.read_split("validation")
    with pytest.raises(ValueError, match="classes are \\['cell', 'debris'\\], not the "
                                         "class_names given \\['cell'\\]"):
        open_detection_source("tfds:coordatt_tiny_boxes", data_dir=tiny_boxes_tfds,
                              class_names=["cell"])


@pytest.mark.parametrize("name", ["voc/2007", "coco/2017"])
def test_tfds_unprepared_offline_fails_saying_how_to_prepare(tmp_path, monkeypatch, name):
    pytest.importorskip("tensorflow_datasets")
    from keras_coordatt.data.core import tfds as tfds_core

    monkeypatch.setattr(tfds_core, "network_reachable", lambda host, port: False)
    with pytest.raises(ConnectionError, match=f"(?s)tfds:{name} is not prepared in {tmp_path}.*"
                                              f"`tfds build {name} --data_dir DIR`"):
        open_detection_source(f"tfds:{name}", data_dir=str(tmp_path))


def test_tfds_datasets_without_boxes_are_refused(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(ValueError, match="tensorflow-datasets has no dataset 'no_such_boxes'"):
        open_detection_source("tfds:no_such_boxes", data_dir=str(tmp_path))


# Joined sources (VOC07+12) and evaluation on another source: load_task_datasets.


def _pipeline_options():
    from keras_coordatt.data.detection.pipeline import DetectionPipelineOptions
    from keras_coordatt.tasks.ssdlite import ssdlite_anchors

    return DetectionPipelineOptions(160, 2, ssdlite_anchors(160), augment=None)


def _year(root, stems, seed, classes=("car", "dog")):
    for split, names in (("train", stems[:-1]), ("val", stems[-1:])):
        for number, stem in enumerate(names):
            write_voc_pair(root / split, stem, [(classes[number % 2], (1, 2, 30, 20), 0),
                                                (classes[1], (4, 4, 12, 12), 0)], seed=seed)


def test_joined_folders_train_on_both_and_evaluate_on_the_eval_source(tmp_path):
    from keras_coordatt.data.task_data import load_task_datasets

    _year(tmp_path / "2007", ["a07", "b07", "v07"], seed=0)
    _year(tmp_path / "2012", ["a12", "b12", "c12", "v12"], seed=1)
    joined = f"voc:{tmp_path / '2007'}+voc:{tmp_path / '2012'}"
    data = load_task_datasets("detection", joined, _pipeline_options(), train_split="train",
                              eval_split="val", eval_spec=f"voc:{tmp_path / '2007'}")
    assert data.class_names == ["car", "dog"]
    assert [e["id"] for e in data.train] == ["a07", "b07", "a12", "b12", "c12"]
    assert [e["id"] for e in data.eval_examples] == ["v07"]
    assert "evaluated on voc:" in data.notes
    batches = data.train_for_epoch(0)
    assert int(batches.cardinality()) == 2  # 5 examples, batch 2, last dropped
    # the limit counts across the joined sources, in turn
    limited = load_task_datasets("detection", joined, _pipeline_options(), limit_train=3)
    assert [e["id"] for e in limited.train] == ["a07", "b07", "a12"]
    # without eval_spec the joined source evaluates on both years' split
    both = load_task_datasets("detection", joined, _pipeline_options(), eval_split="val")
    assert [e["id"] for e in both.eval_examples] == ["v07", "v12"]


def test_joined_or_eval_sources_with_other_classes_are_refused_naming_them(tmp_path):
    from keras_coordatt.data.task_data import load_task_datasets

    _year(tmp_path / "2007", ["a07", "v07"], seed=0)
    _year(tmp_path / "cats", ["a", "v"], seed=1, classes=("cat", "dog"))
    with pytest.raises(ValueError, match=r"voc:.*2007 has the classes \['car', 'dog'\], "
                                         r"voc:.*cats \['cat', 'dog'\]; joined sources need the "
                                         "same classes"):
        load_task_datasets("detection", f"voc:{tmp_path / '2007'}+voc:{tmp_path / 'cats'}",
                           _pipeline_options())
    with pytest.raises(ValueError, match=r"the eval dataset voc:.*cats has the classes \['cat', "
                                         r"'dog'\], the training dataset voc:.*2007"):
        load_task_datasets("detection", f"voc:{tmp_path / '2007'}", _pipeline_options(),
                           eval_spec=f"voc:{tmp_path / 'cats'}")
    with pytest.raises(ValueError, match="has no split 'test'; its splits are 'train', 'val'"):
        load_task_datasets("detection", f"voc:{tmp_path / '2007'}+voc:{tmp_path / '2007'}",
                           _pipeline_options(), eval_split="test")


def test_joined_tfds_datasets_stream_one_after_the_other(tiny_boxes_tfds):
    from keras_coordatt.data.task_data import JoinedExamples
    from keras_coordatt.data.task_data import load_task_datasets

    spec = "tfds:coordatt_tiny_boxes+tfds:coordatt_tiny_boxes"
    data = load_task_datasets("detection", spec, _pipeline_options(), eval_split="test",
                              data_dir=tiny_boxes_tfds)
    assert isinstance(data.train, JoinedExamples)
    assert len(data.train) == 6 and len(data.eval_examples) == 2
    assert [e["id"] for e in data.train] == ["im0.png", "im1.png", "im2.png"] * 2
    assert data.train[4]["id"] == "im1.png" and data.train[-1]["id"] == "im2.png"
    assert [e["id"] for e in data.train[2:4]] == ["im2.png", "im0.png"]
    with pytest.raises(IndexError):
        data.train[6]
    batches = list(data.train_for_epoch(0))
    assert len(batches) == 3 and all(b[0].shape[0] == 2 for b in batches)
