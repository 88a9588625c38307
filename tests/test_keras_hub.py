"""keras-hub's DeepLabV3 and RetinaNet tasks on our backbones (as_keras_hub_backbone).

The tasks need keras-hub (``make test`` installs it with ``--no-deps``); the
argument checks and the missing-keras-hub message are tested without it.
Tasks are compiled with ``run_eagerly=True``: one eager step of these
networks takes seconds where tracing the training graph takes about 25 s on
a 2-core CPU.
"""

import importlib.util
import sys
import types

import keras
import numpy as np
import pytest

from keras_coordatt.models import EfficientNetB0
from keras_coordatt.models import MobileNeXt
from keras_coordatt.models import MobileNetV2
from keras_coordatt.models import MobileNetV2Backbone
from keras_coordatt.models import as_keras_hub_backbone
from keras_coordatt.models import keras_hub as hub_interop

needs_keras_hub = pytest.mark.skipif(importlib.util.find_spec("keras_hub") is None,
                                     reason="keras-hub is not installed (make test installs it)")
HEIGHT, WIDTH = 64, 96  # not square, so a swapped mask shape fails


@pytest.fixture(scope="module")
def keras_hub():
    return pytest.importorskip("keras_hub")


@pytest.fixture(scope="module")
def classifier():
    """A MobileNetV2 + CA classifier, as a user would have after loading weights into it."""
    keras.utils.set_random_seed(1)
    return MobileNetV2(input_shape=(HEIGHT, WIDTH, 3), alpha=0.35, attention="ca", classes=5)


@pytest.fixture(scope="module")
def segmenter(keras_hub, classifier):
    encoder = as_keras_hub_backbone(classifier)
    deeplab = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder, spatial_pyramid_pooling_key="P5", upsampling_size=8,
        dilation_rates=[6, 12, 18], low_level_feature_key="P2", projection_filters=16,
        image_shape=(HEIGHT, WIDTH, 3))
    model = keras_hub.models.DeepLabV3ImageSegmenter(backbone=deeplab, num_classes=3)
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
    return model


def images(count=1, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (count, HEIGHT, WIDTH, 3)).astype("float32")


@needs_keras_hub
def test_the_hub_backbone_is_a_feature_pyramid_backbone_on_our_graph(keras_hub, classifier):
    encoder = as_keras_hub_backbone(classifier)
    assert isinstance(encoder, keras_hub.models.FeaturePyramidBackbone)
    backbone = classifier.backbone
    assert encoder.coordatt_backbone is backbone and encoder.name == f"{backbone.name}_hub"
    # The same tensors by level, the final map as output, no classification top.
    assert {k: v is backbone.pyramid_outputs[k] for k, v in encoder.pyramid_outputs.items()} == {
        "P2": True, "P3": True, "P4": True, "P5": True}
    assert encoder.output is backbone.output and "predictions" not in [l.name for l in encoder.layers]
    # The same variables, so weights loaded into the classifier are the encoder's.
    assert [id(v) for v in encoder.weights] == [id(v) for v in backbone.weights]
    assert encoder.get_layer("block_1_attention") is classifier.get_layer("block_1_attention")
    x = images()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(encoder(x)),
                                  keras.ops.convert_to_numpy(backbone(x)))
    assert encoder.image_shape == (HEIGHT, WIDTH, 3)
    assert encoder.preprocessing.pixel_range == (-1.0, 1.0)


@needs_keras_hub
def test_the_hub_backbone_goes_through_a_keras_hub_preset_folder(keras_hub, classifier, tmp_path):
    encoder = as_keras_hub_backbone(classifier)
    encoder.save_to_preset(tmp_path / "preset")
    loaded = keras_hub.models.Backbone.from_preset(str(tmp_path / "preset"))
    assert isinstance(loaded, keras_hub.models.FeaturePyramidBackbone)
    assert loaded.coordatt_backbone.get_config() == classifier.backbone.get_config()
    for saved, restored in zip(encoder.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, restored)


@needs_keras_hub
def test_deeplab_segmenter_gives_masks_of_the_input_size_and_trains_our_weights(
        segmenter, classifier):
    x = images(2)
    masks = keras.ops.convert_to_numpy(segmenter(x))
    assert masks.shape == (2, HEIGHT, WIDTH, 3)
    # The segmenter holds each of our variables once and trains them in place.
    assert len({id(v) for v in segmenter.weights}) == len(segmenter.weights)
    assert {id(v) for v in classifier.backbone.weights} <= {id(v) for v in segmenter.weights}
    kernel = classifier.get_layer("block_1_attention").weights[0]
    before = keras.ops.convert_to_numpy(kernel).copy()
    labels = keras.utils.to_categorical(np.random.default_rng(1).integers(0, 3, (2, HEIGHT, WIDTH)), 3)
    loss = segmenter.train_on_batch(x, labels)
    loss = loss[0] if isinstance(loss, (list, tuple)) else loss
    assert np.isfinite(loss) and loss > 0
    assert not np.allclose(keras.ops.convert_to_numpy(kernel), before)
    assert not np.allclose(keras.ops.convert_to_numpy(segmenter(x)), masks)


@needs_keras_hub
def test_the_segmenter_round_trips_through_a_keras_file(segmenter, tmp_path, monkeypatch, keras_hub):
    path = tmp_path / "segmenter.keras"
    segmenter.save(path)
    # As in a process that has not made the class yet: the stand-in in the registry loads it.
    monkeypatch.setitem(keras.saving.get_custom_objects(), hub_interop.REGISTERED_NAME,
                        hub_interop._LoadKerasHubBackbone)
    loaded = keras.saving.load_model(path, compile=False)
    assert isinstance(loaded, keras_hub.models.DeepLabV3ImageSegmenter)
    encoder = loaded.backbone.image_encoder
    assert isinstance(encoder, keras_hub.models.FeaturePyramidBackbone)
    assert isinstance(encoder.coordatt_backbone, MobileNetV2Backbone)
    assert (encoder.coordatt_backbone.attention, encoder.coordatt_backbone.alpha) == ("ca", 0.35)
    assert sorted(encoder.pyramid_outputs) == ["P2", "P3", "P4", "P5"]
    for saved, restored in zip(segmenter.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, restored)
    x = images(seed=3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(segmenter(x)), atol=1e-5)


@needs_keras_hub
def test_retinanet_detector_predicts_and_trains_on_our_backbone(keras_hub):
    backbone = MobileNetV2Backbone(image_shape=(HEIGHT, WIDTH, 3), alpha=0.35, attention="ca")
    retinanet = keras_hub.models.RetinaNetBackbone(
        image_encoder=as_keras_hub_backbone(backbone), min_level=3, max_level=5, use_p5=False,
        image_shape=(HEIGHT, WIDTH, 3))
    # Levels 3-5 of our pyramid at strides 8, 16, 32, through keras-hub's FPN.
    assert {k: tuple(v.shape[1:3]) for k, v in retinanet.pyramid_outputs.items()} == {
        "P3": (8, 12), "P4": (4, 6), "P5": (2, 3)}
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=retinanet, num_classes=2, bounding_box_format="yxyx", pre_logits_num_conv_layers=1)
    detector.compile(run_eagerly=True)
    x = images(2)
    detections = detector.predict(x, verbose=0)
    assert detections["boxes"].shape[0] == 2 and detections["boxes"].shape[2] == 4
    assert detections["labels"].shape == detections["confidence"].shape
    # Pixel boxes (y1, x1, y2, x2); label -1 pads the first image to two boxes.
    boxes = np.array([[[8, 8, 40, 56], [0, 0, 0, 0]], [[10, 20, 50, 70], [30, 40, 62, 94]]],
                     "float32")
    labels = np.array([[1, -1], [0, 1]], "float32")
    before = [keras.ops.convert_to_numpy(v).copy() for v in backbone.trainable_weights]
    history = detector.fit(x, {"boxes": boxes, "labels": labels}, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert history.history["bbox_regression_loss"][0] > 0  # the boxes were matched to anchors
    changed = [not np.array_equal(b, keras.ops.convert_to_numpy(v))
               for b, v in zip(before, backbone.trainable_weights)]
    assert sum(changed) > len(changed) // 2


@needs_keras_hub
@pytest.mark.parametrize("build, attention, levels", [
    (MobileNeXt, "se", ["P2", "P3", "P4", "P5"]),
    (EfficientNetB0, "cbam", ["P2", "P3", "P4", "P5"]),
    (lambda **kwargs: MobileNetV2(output_stride=16, **kwargs), None, ["P2", "P3", "P4"]),
])
def test_every_family_wraps_and_its_config_rebuilds_it(build, attention, levels):
    model = build(input_shape=(HEIGHT, WIDTH, 3), alpha=0.35, attention=attention,
                  include_top=False)
    encoder = as_keras_hub_backbone(model, name="encoder")
    assert sorted(encoder.pyramid_outputs) == levels
    assert encoder.output is model.output and encoder.name == "encoder"
    config = encoder.get_config()
    rebuilt = type(encoder).from_config(config)
    assert type(rebuilt.coordatt_backbone) is type(model)
    assert rebuilt.get_config() == config
    assert rebuilt.count_params() == model.count_params()
    assert not set(map(id, rebuilt.weights)) & set(map(id, model.weights))  # new variables
    assert {k: tuple(v.shape) for k, v in rebuilt.pyramid_outputs.items()} == {
        k: tuple(v.shape) for k, v in model.pyramid_outputs.items()}


def test_a_model_without_a_pyramid_is_refused_by_name():
    image = keras.Input((32, 32, 3))
    plain = keras.Model(image, keras.layers.Conv2D(4, 3)(image), name="plain")
    with pytest.raises(ValueError, match="'plain'.*has no pyramid_outputs.*MobileNetV2"):
        as_keras_hub_backbone(plain)
    foreign = keras.Model(plain.inputs, plain.outputs, name="foreign")
    foreign.pyramid_outputs = {"P2": plain.output}
    with pytest.raises(TypeError, match="'foreign'.*not a keras_coordatt Backbone"):
        as_keras_hub_backbone(foreign)


def test_a_missing_keras_hub_names_the_install_command(monkeypatch):
    backbone = MobileNetV2Backbone(image_shape=(32, 32, 3), alpha=0.35)
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # `import keras_hub` now fails
    with pytest.raises(ImportError) as error:
        as_keras_hub_backbone(backbone)
    message = str(error.value)
    assert "pip install --no-deps keras-hub==" in message and "regex tokenizers" in message
    assert "tensorflow-text" in message


def test_a_keras_hub_without_feature_pyramid_backbone_is_refused(monkeypatch):
    backbone = MobileNetV2Backbone(image_shape=(32, 32, 3), alpha=0.35)
    old = types.ModuleType("keras_hub")
    old.__version__ = "0.15.0"
    old.models = types.SimpleNamespace()
    monkeypatch.setitem(sys.modules, "keras_hub", old)
    with pytest.raises(ImportError, match="keras-hub 0.15.0 has no models.FeaturePyramidBackbone"):
        as_keras_hub_backbone(backbone)
