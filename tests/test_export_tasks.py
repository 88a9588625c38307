"""Detection and segmentation exports: serving SavedModels, TFLite files, their checks, and
export_task_model writing them all (keras_coordatt.export)."""

import json

import numpy as np
import pytest

from test_postprocess import small_ssd

pytestmark = pytest.mark.requires_tensorflow

SIDE = 160
CLASSES = ["tree", "car", "house"]
SETTINGS = dict(score_threshold=0.05, max_detections=20)


@pytest.fixture(scope="module")
def ssd():
    return small_ssd(len(CLASSES), SIDE, attention=None)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(-1, 1, (3, SIDE, SIDE, 3)).astype("float32")


@pytest.fixture(scope="module")
def float_detector(ssd):
    from keras_coordatt.export import detector_tflite

    return detector_tflite(ssd, **SETTINGS)


def keras_input(raw):
    """The serving signature's preprocessing, written out: stretch to SIDE, map to [-1, 1]."""
    import tensorflow as tf

    x = tf.image.resize(tf.cast(raw, tf.float32), (SIDE, SIDE), antialias=True)
    return (tf.clip_by_value(x, 0, 255) / 127.5 - 1.0).numpy()


def test_the_detector_savedmodel_returns_pixel_boxes_of_any_image_size(ssd, tmp_path):
    import tensorflow as tf

    from keras_coordatt.export import export_detector_serving
    from keras_coordatt.export.checks import match_detections
    from keras_coordatt.tasks import detector

    path = export_detector_serving(ssd, str(tmp_path / "detector"), CLASSES, **SETTINGS)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    reference = detector(ssd, **SETTINGS)
    rng = np.random.default_rng(1)
    for height, width in ((120, 200), (333, 250)):
        raw = rng.integers(0, 256, (2, height, width, 3), dtype=np.uint8)
        out = {k: v.numpy() for k, v in serve(images=tf.constant(raw)).items()}
        expected = {k: np.asarray(v) for k, v in reference(keras_input(raw)).items()}
        assert expected["count"].min() > 0
        np.testing.assert_array_equal(out["count"], expected["count"])
        scale = np.array([width, height, width, height], "float32")
        for i, n in enumerate(expected["count"]):
            # the test's own resize rounds a little differently: near-equal scores may swap
            pairs = match_detections(expected["boxes"][i, :n] * scale, expected["classes"][i, :n],
                                     out["boxes"][i, :n], out["classes"][i, :n], 0.9)
            assert len(pairs) == n
            a, b = np.array(pairs).T
            np.testing.assert_allclose(out["boxes"][i, b], expected["boxes"][i, a] * scale,
                                       atol=1e-3 * width)
            np.testing.assert_allclose(out["scores"][i, b], expected["scores"][i, a], atol=1e-3)
            assert np.all(np.diff(out["scores"][i, :n]) <= 0)
        assert out["boxes"][..., [2, 3]].max() > 0.5 * max(height, width)  # pixels, not 0..1
        n = out["count"][0]
        names = [name.decode() for name in out["class_names"][0]]
        assert names[:n] == [CLASSES[c] for c in out["classes"][0, :n]]
        assert set(names[n:]) <= {""}
    labels = (tmp_path / "detector" / "assets.extra" / "labels.txt").read_text().split()
    assert labels == CLASSES
    spec = json.loads((tmp_path / "detector" / "assets.extra" / "preprocessing.json").read_text())
    assert spec["inside_the_signature"]["pixel_range"] == [-1.0, 1.0]


def test_the_float_detector_tflite_has_builtin_nms_and_the_documented_outputs(
        ssd, images, float_detector):
    from ai_edge_litert.interpreter import Interpreter

    from keras_coordatt.export import check_detector_tflite
    from keras_coordatt.export import run_detector_tflite
    from keras_coordatt.export import tflite_op_names
    from keras_coordatt.export.tflite import DETECTOR_OUTPUTS
    from keras_coordatt.tasks import detector

    ops = tflite_op_names(float_detector)
    assert "NON_MAX_SUPPRESSION_V4" in ops
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
    interpreter = Interpreter(model_content=float_detector)
    interpreter.allocate_tensors()
    (source,) = interpreter.get_input_details()
    assert tuple(source["shape"]) == (1, SIDE, SIDE, 3) and source["dtype"] == np.float32
    outputs = interpreter.get_output_details()
    assert [d["name"] for d in outputs] == list(DETECTOR_OUTPUTS)
    assert [tuple(d["shape"]) for d in outputs] == [(1, 20, 4), (1, 20), (1, 20), (1,)]
    assert all(d["dtype"] == np.float32 for d in outputs)
    # the order is the file's own: index 0 is the boxes, ymin first
    interpreter.set_tensor(source["index"], images[:1])
    interpreter.invoke()
    expected = {k: np.asarray(v) for k, v in detector(ssd, **SETTINGS)(images).items()}
    raw = [interpreter.get_tensor(d["index"]) for d in outputs]
    n = int(raw[3][0])
    assert n == expected["count"][0] > 0
    np.testing.assert_allclose(raw[0][0, :n], expected["boxes"][0, :n][:, [1, 0, 3, 2]], atol=1e-3)

    got = run_detector_tflite(float_detector, images, xnnpack=False)
    np.testing.assert_array_equal(got["count"], expected["count"])
    np.testing.assert_array_equal(got["classes"], expected["classes"])
    print(f"float32 TFLite detector vs Keras (builtin kernels): max |box difference| "
          f"{np.abs(got['boxes'] - expected['boxes']).max():.2e}, max |score difference| "
          f"{np.abs(got['scores'] - expected['scores']).max():.2e}")
    # the network's float32 rounding differs between TF and TFLite kernels;
    # softmax scores move a little more than the boxes
    np.testing.assert_allclose(got["scores"], expected["scores"], atol=1e-3)
    np.testing.assert_allclose(got["boxes"], expected["boxes"], atol=1e-4)
    report = check_detector_tflite(float_detector, ssd, images, **SETTINGS)
    assert report["ok"] and report["agreement"] == 1.0 and report["same_counts"]
    assert report["explained"] == report["tflite_detections"]
    assert report["found"] == report["clear"] > 0


def test_the_detector_check_fails_loudly_on_another_model(ssd, images, float_detector):
    from keras_coordatt.export import ExportCheckError
    from keras_coordatt.export import check_detector_tflite

    other = small_ssd(len(CLASSES), SIDE, attention=None, seed=1)
    with pytest.raises(ExportCheckError, match="disagrees with Keras") as caught:
        check_detector_tflite(float_detector, other, images, **SETTINGS)
    assert caught.value.report["agreement"] < 0.5


def near_tied(ssd):
    """The detector with class logits shrunk to 1e-5 of themselves: every score ties with
    many others within float32 rounding, as in a barely trained detector."""
    import keras

    tied = keras.models.clone_model(ssd)
    tied.set_weights(ssd.get_weights())
    for layer in tied.layers:
        if layer.name.startswith("ssd_class_") and layer.name.endswith("_conv"):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * 1e-5, bias])
    return tied


TIED = dict(score_threshold=0.01, max_detections=100)


@pytest.fixture(scope="module")
def tied_ssd(ssd):
    return near_tied(ssd)


@pytest.mark.parametrize("quantization", [None, "int8"])
def test_a_detector_file_whose_near_tied_scores_reorder_passes(tied_ssd, quantization):
    """Near-tied scores come out of the file in another order than out of Keras, so other
    detections make the top 100 and survive NMS; that is no error, in either precision."""
    from keras_coordatt.export import check_detector_tflite
    from keras_coordatt.export import detector_tflite

    images = np.random.default_rng(0).uniform(-1, 1, (4, SIDE, SIDE, 3)).astype("float32")
    content = detector_tflite(tied_ssd, quantization, representative_data=images, **TIED)
    report = check_detector_tflite(content, tied_ssd, images, **TIED)
    assert report["matched_share"] < 0.99  # not the same list: the old check failed it
    assert report["ok"] and report["agreement"] == 1.0
    assert report["quantized"] == (quantization == "int8")


def off_by_a_percent(ssd):
    import keras

    rng = np.random.default_rng(1)
    wrong = keras.models.clone_model(ssd)
    wrong.set_weights([w * (1 + 0.01 * rng.standard_normal(w.shape)).astype(w.dtype)
                       for w in ssd.get_weights()])
    return wrong


def another_network(ssd):
    return small_ssd(len(CLASSES), SIDE, attention=None, seed=1)


# float32 files are checked within float32 rounding, so weights 1% off fail; int8 files
# within int8's rounding, which 1% hides, so another network.
@pytest.mark.parametrize("quantization, wrong", [(None, off_by_a_percent),
                                                 ("int8", another_network)])
def test_a_detector_file_of_other_weights_fails_in_float32_and_int8(ssd, images, quantization,
                                                                     wrong):
    from keras_coordatt.export import ExportCheckError
    from keras_coordatt.export import check_detector_tflite
    from keras_coordatt.export import detector_tflite

    content = detector_tflite(wrong(ssd), quantization, representative_data=images, **SETTINGS)
    with pytest.raises(ExportCheckError, match="detections are none Keras makes") as caught:
        check_detector_tflite(content, ssd, images, **SETTINGS)
    report = caught.value.report
    assert report["quantized"] == (quantization == "int8") and report["agreement"] < 0.5


def test_tiled_prediction_runs_the_tflite_file_in_place_of_keras(ssd, float_detector):
    import types

    from keras_coordatt.export import run_detector_tflite
    from keras_coordatt.export.checks import match_detections
    from keras_coordatt.tasks import predict_detections

    rng = np.random.default_rng(2)
    examples = [{"image": rng.integers(0, 256, (230, 300, 3), dtype=np.uint8)}]
    preprocessing = types.SimpleNamespace(pixel_range=(-1.0, 1.0))
    calls = []

    def tflite(tiles):
        calls.append(len(tiles))
        return run_detector_tflite(float_detector, tiles)

    kwargs = dict(tile_size=SIDE, max_detections=SETTINGS["max_detections"])
    expected = predict_detections(ssd, examples, preprocessing, **kwargs)[0]
    got = predict_detections(ssd, examples, preprocessing, predictor=tflite, **kwargs)[0]
    assert sum(calls) == 4  # 2 x 2 tiles of 160 px cover 300 x 230
    assert len(expected["boxes"]) > 0
    pairs = match_detections(expected["boxes"], expected["labels"], got["boxes"], got["labels"],
                             0.9)
    # near-tied scores may let the merge keep the other of two equal boxes
    assert len(pairs) >= 0.95 * max(len(expected["boxes"]), len(got["boxes"]))
    a, b = np.array(pairs).T
    np.testing.assert_allclose(got["boxes"][b], expected["boxes"][a], atol=0.1)  # pixels


def test_the_int8_detector_converts_with_builtins_and_is_checked(ssd, images):
    from keras_coordatt.export import TFLiteModel
    from keras_coordatt.export import check_detector_tflite
    from keras_coordatt.export import detector_tflite
    from keras_coordatt.export import tflite_op_names
    from keras_coordatt.export.tflite import DETECTOR_OUTPUTS

    content = detector_tflite(ssd, "int8", representative_data=images, **SETTINGS)
    ops = tflite_op_names(content)
    assert "NON_MAX_SUPPRESSION_V4" in ops and "DEQUANTIZE" in ops
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
    assert TFLiteModel(content).output_names == list(DETECTOR_OUTPUTS)
    report = check_detector_tflite(content, ssd, images, min_agreement=0.0, **SETTINGS)
    print(f"int8 detector vs Keras (random weights): {report}")
    assert report["quantized"] and report["keras_detections"] > 0
    assert (report["score_tolerance"], report["box_tolerance"]) == (0.1, 0.1)
    assert report["tflite_detections"] > 0 and 0.0 <= report["agreement"] <= 1.0


# --- segmentation ---

@pytest.fixture(scope="module")
def deeplab():
    import keras

    from keras_coordatt.models import MobileNetV2
    from keras_coordatt.tasks import DeepLabV3

    keras.utils.set_random_seed(0)
    backbone = MobileNetV2(input_shape=(96, 96, 3), include_top=False, alpha=0.35,
                           attention=None, output_stride=16)
    model = DeepLabV3(backbone, num_classes=4)
    settle = np.random.default_rng(2).uniform(-1, 1, (4, 96, 96, 3)).astype("float32")
    norms = [layer for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(settle, training=True)
    return model


def test_the_segmenter_savedmodel_gives_masks_at_the_image_size(deeplab, tmp_path):
    import tensorflow as tf

    from keras_coordatt.export import export_segmenter_serving

    names = ["background", "a", "b", "c"]
    path = export_segmenter_serving(deeplab, str(tmp_path / "segmenter"), names)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    raw = np.random.default_rng(3).integers(0, 256, (2, 70, 130, 3), dtype=np.uint8)
    mask = serve(images=tf.constant(raw))["mask"].numpy()
    assert mask.shape == (2, 70, 130) and mask.dtype == np.uint8
    x = tf.image.resize(tf.cast(raw, tf.float32), (96, 96), antialias=True) / 127.5 - 1.0
    logits = tf.image.resize(deeplab(x), (70, 130), method="bilinear")
    expected = np.argmax(logits.numpy(), -1)
    assert len(np.unique(expected)) > 1
    agreement = np.mean(mask == expected)
    print(f"segmenter SavedModel vs Keras: {agreement:.5%} of pixels agree")
    assert agreement >= 0.999


def test_the_segmenter_tflite_mask_equals_keras(deeplab):
    from keras_coordatt.export import TFLiteModel
    from keras_coordatt.export import check_segmenter_tflite
    from keras_coordatt.export import segmenter_tflite
    from keras_coordatt.export import tflite_op_names

    images = np.random.default_rng(4).uniform(-1, 1, (3, 96, 96, 3)).astype("float32")
    content = segmenter_tflite(deeplab)
    assert "ARG_MAX" in tflite_op_names(content)
    assert TFLiteModel(content).output_names == ["mask"]
    report = check_segmenter_tflite(content, deeplab, images)
    print(f"segmenter TFLite float32 vs Keras: {report}")
    assert report["ok"] and report["pixel_agreement"] >= 0.999 and not report["quantized"]


# --- export_task_model: every file written and checked ---

def test_export_task_model_writes_every_file_and_names_the_one_that_disagrees(
        ssd, tmp_path, monkeypatch):
    from keras_coordatt.export import ExportCheckError
    from keras_coordatt.export import TFLiteModel
    from keras_coordatt.export import export_task_model
    from keras_coordatt.export import task_bundle

    rng = np.random.default_rng(5)
    examples = [{"image": rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)} for _ in range(4)]
    real_check = task_bundle.check_detector_tflite

    def int8_disagrees(content, model, images, **kwargs):
        if TFLiteModel(content).quantized:
            raise ExportCheckError("check_detector_tflite: 1 of 9 detections matched",
                                   {"matched_share": 0.11})
        return real_check(content, model, images, **kwargs)

    monkeypatch.setattr(task_bundle, "check_detector_tflite", int8_disagrees)
    lines = []
    with pytest.raises(ExportCheckError, match=r"^detection_int8.tflite disagree with Keras "
                       r"beyond tolerance \(the files are kept\); see .*export_report.json"):
        export_task_model(ssd, "detection", str(tmp_path), CLASSES, examples, examples,
                          check_images=3, run="runs/forest", log=lines.append, **SETTINGS)
    report = json.loads((tmp_path / "export_report.json").read_text())
    assert (report["run"], report["task"], report["check_images"]) == ("runs/forest", "detection", 3)
    assert report["detection_float32.tflite"]["ok"]
    assert report["detection_float32.tflite"]["agreement"] == 1.0
    assert report["detection_int8.tflite"] == {
        "ok": False, "error": "check_detector_tflite: 1 of 9 detections matched",
        "matched_share": 0.11}
    for name in ("detection_float32.tflite", "detection_int8.tflite", "saved_model/saved_model.pb"):
        assert (tmp_path / name).exists(), name
    assert lines[0] == f"wrote {tmp_path / 'saved_model'}"
    assert lines[1].endswith("checked against Keras") and lines[2].endswith("FAILED its check")


def test_export_task_model_names_an_unknown_task(ssd, tmp_path):
    from keras_coordatt.export import export_task_model

    with pytest.raises(ValueError, match=r"task='pose'; expected one of \('detection', "):
        export_task_model(ssd, "pose", str(tmp_path), CLASSES, [], [])
    assert not list(tmp_path.iterdir())
