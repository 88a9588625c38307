"""Pascal VOC XML annotations (keras_coordatt.data.detection.voc): read, every bad input named."""

import numpy as np
import pytest

from keras_coordatt.data.detection.voc import read_voc_annotation
from keras_coordatt.data.detection.voc import read_voc_folder
from made_data import voc_xml


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    (tmp_path / "a.xml").write_text(voc_xml(objects=[("tree", (1, 2, 11, 12), 0),
                                                     ("snag", (0, 0, 40, 30), 1)]))
    return tmp_path


def test_an_annotation_reads_boxes_names_difficulty_and_its_image(folder):
    annotation = read_voc_annotation(folder / "a.xml", class_names=["tree", "snag"])
    np.testing.assert_array_equal(annotation["boxes"], [[1, 2, 11, 12], [0, 0, 40, 30]])
    assert annotation["names"] == ["tree", "snag"]
    assert annotation["difficult"].tolist() == [False, True]
    assert (annotation["width"], annotation["height"]) == (40, 30)
    assert annotation["image"] == str(folder / "a.png")


def test_an_image_named_otherwise_is_found_by_the_xml_files_stem(tmp_path):
    # DeepForest's OSBS_029.xml names OSBS_029.tif; the package ships OSBS_029.png too.
    (tmp_path / "site.png").write_bytes(b"\x89PNG")
    (tmp_path / "site.xml").write_text(voc_xml(filename="site.tif"))
    assert read_voc_annotation(tmp_path / "site.xml")["image"] == str(tmp_path / "site.png")


def test_an_annotation_without_objects_has_no_boxes(folder):
    (folder / "a.xml").write_text(voc_xml(objects=()))
    assert read_voc_annotation(folder / "a.xml")["boxes"].shape == (0, 4)


@pytest.mark.parametrize("objects, match", [
    ((("tree", (1, 2, 41, 12), 0),), "object 0 \\(tree\\) has the box xmin=1 ymin=2 xmax=41 "
                                     "ymax=12, outside the 40x30 image"),
    ((("tree", (5, 2, 5, 12), 0),), "without area"),
    ((("tree", (-1, 2, 5, 12), 0),), "outside the 40x30 image"),
    ((("tree", (1, 2, 11, 12), 0), ("oak", (1, 2, 11, 12), 0)),
     "object 1 is a 'oak', not one of the classes \\['tree', 'snag'\\]"),
    ((("tree", (1, "two", 11, 12), 0),), "object 0's <ymin> is 'two', not a number"),
])
def test_bad_boxes_and_names_are_errors_naming_file_and_object(folder, objects, match):
    (folder / "a.xml").write_text(voc_xml(objects=objects))
    with pytest.raises(ValueError, match=match) as error:
        read_voc_annotation(folder / "a.xml", class_names=["tree", "snag"])
    assert str(folder / "a.xml") in str(error.value)


def test_missing_tags_images_and_files_are_named(folder, tmp_path):
    (folder / "a.xml").write_text("<annotation><filename>a.png</filename></annotation>")
    with pytest.raises(ValueError, match="a.xml: the image has no <size><width>"):
        read_voc_annotation(folder / "a.xml")
    (folder / "b.xml").write_text(voc_xml(filename="missing.jpg"))
    with pytest.raises(ValueError, match="b.xml: no image for it: tried missing.jpg, b.jpg, b.jpeg, b.png"):
        read_voc_annotation(folder / "b.xml")
    (folder / "c.xml").write_text("<annotation><size>")
    with pytest.raises(ValueError, match="c.xml: not a readable Pascal VOC XML file"):
        read_voc_annotation(folder / "c.xml")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no .xml annotation files"):
        read_voc_folder(empty)
    with pytest.raises(ValueError, match="voc:.*nowhere: no such folder"):
        read_voc_folder(tmp_path / "nowhere")


def test_a_folder_reads_every_annotation_in_order(folder):
    (folder / "b.png").write_bytes(b"\x89PNG")
    (folder / "b.xml").write_text(voc_xml(filename="b.png"))
    assert [a["image"][-5:] for a in read_voc_folder(folder)] == ["a.png", "b.png"]
