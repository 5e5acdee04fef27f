"""A fitted box layout with a stride-4 source through every export: `.keras`, SavedModel, TFLite, ONNX.

`fit_default_boxes` gives configs the presets never have: scales off the
preset chain, ratios such as 1.5, and a stride-4 source (conv3_3) in front
of the others, which adds an L2-normalised branch and 6400 default boxes at
160 px. Each export must carry that layout, and its detections must agree
with the Keras detector within the tolerances the preset model's tests use
(test_saved_model.py, test_tflite.py, test_onnx.py, test_mobile_runtimes.py).

The model (`fitted_model`): the fitted config built with `build_ssd`, every
layer copied from the shipped demo model (the fit keeps each source's boxes
per location, so the shapes match), so the network finds the shapes' objects
and scores them apart. The demo model has its own trained stride-4 source;
a demo model without one (the preset's layout) leaves the new predictors
random, with the edits test_ssdlite_export.py makes to its random SSDLite so
that their boxes score apart (no ties) and a few per image pass the 0.3 the
parity checks compare above: the class kernel is scaled down and the
background logit gets a bias, the box kernel is scaled down so that decoded
boxes stay near their default boxes. The images (`images`, overriding the
session fixture) add four with small objects to four of the export tests'.
(`test_compared_detections_include_stride4_boxes_and_the_objects` checks
that the compared detections hold both kinds.)

The exports are made once per module. The int8 files are checked as the
preset's are short of their mAP (test_mobile_runtimes.py, test_onnx.py): the
`.tflite` by its anchors and by MediaPipe against `TFLiteDetector` on the
same file, the `.onnx` by its graph and interface. Their agreement with Keras
is held by mAP on the demo model (test_demo_model.py), which a model with a
random source would not make meaningful.
"""

import os

import keras
import numpy as np
import onnx
import pytest
from ai_edge_litert.interpreter import Interpreter
from conftest import SHAPES, assert_same_detections, shapes_examples
from onnx_graphs import quantised_network_convs
from round_trips import check_keras_file_round_trip
from test_mobile_runtimes import MIN_SCORE, assert_mediapipe_matches, run_runtime

import keras_ssd
from keras_ssd import data, export
from keras_ssd.layers.default_boxes import location_shapes
from keras_ssd.ops import boxes as box_ops

# Edits of the stride-4 source's random predictors (module docstring).
STRIDE4_CLASS_KERNEL_SCALE = 0.15
STRIDE4_BACKGROUND_BIAS = 2.0
STRIDE4_BOX_KERNEL_SCALE = 0.1


@pytest.fixture(scope="module")
def box_fit():
    """`fit_default_boxes` of `ssd_tiny` (3 classes, 160 px) on 64 shapes training images.

    The shapes data's default objects (3-80% of the side, up to 4 per image)
    after the paper's augmentation: many are too small for a stride-8 box, so
    the fit adds the stride-4 source on its own (`stride4="auto"`).
    """
    cfg = keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=3)
    boxes = keras_ssd.training_boxes(data.load("shapes", "train", num_examples=64), cfg)
    return keras_ssd.fit_default_boxes(boxes, cfg)


@pytest.fixture(scope="module")
def images():
    """uint8 `[8, 160, 160, 3]`: four of the export tests' validation images (one object of
    25-60% of the side) and four with up to three objects of 3-8% (5-13 px), which a
    trained stride-4 source detects."""
    small = shapes_examples("validation", 4, object_size=(0.03, 0.08), max_objects=3, seed=11)
    return np.stack([e["image"] for e in shapes_examples("validation", 4) + small])


def _fitted_model(cfg, demo_model):
    """An `SSD` of `cfg` with `demo_model`'s weights where they fit (module docstring).

    Args:
        cfg: `ssd_tiny`'s config with fitted boxes and the stride-4 source.
        demo_model: the shipped demo model (`ssd_tiny`, same classes).

    Returns:
        The model. When `demo_model` has no stride-4 source, `conv3_3_norm`
        keeps its initial scale and the stride-4 predictors `loc_0` / `conf_0`
        their seeded random kernels, edited.
    """
    # A demo model without the stride-4 source has predictors k where this model has k + 1.
    shift = 0 if demo_model.ssd_config.stride4_source else 1
    assert cfg.stride4_source and cfg.boxes_per_location[shift:] == demo_model.ssd_config.boxes_per_location
    model = keras_ssd.build_ssd(cfg, class_names=demo_model.class_names)
    for layer in model.layers:
        if not layer.weights or (shift and layer.name in ("conv3_3_norm", "loc_0", "conf_0")):
            continue
        kind, _, index = layer.name.rpartition("_")
        name = f"{kind}_{int(index) - shift}" if kind in ("loc", "conf") else layer.name
        layer.set_weights(demo_model.get_layer(name).get_weights())
    if not shift:  # the demo model's stride-4 branch is trained: every weight is its
        return model
    conf = model.get_layer("conf_0")
    kernel, bias = conf.get_weights()
    bias = bias.reshape(-1, cfg.num_classes + 1)
    bias[:, 0] = STRIDE4_BACKGROUND_BIAS
    conf.set_weights([kernel * STRIDE4_CLASS_KERNEL_SCALE, bias.reshape(-1)])
    loc = model.get_layer("loc_0")
    kernel, bias = loc.get_weights()
    loc.set_weights([kernel * STRIDE4_BOX_KERNEL_SCALE, bias])
    return model


@pytest.fixture(scope="module")
def fitted_model(box_fit, trained_model):
    """The fitted config's model (`_fitted_model`), seeded."""
    keras.utils.set_random_seed(0)  # module fixtures are set up before the per-test seed
    return _fitted_model(box_fit.config, trained_model)


@pytest.fixture(scope="module")
def fitted_detector(fitted_model):
    return keras_ssd.build_detector(fitted_model)


@pytest.fixture(scope="module")
def fitted_expected(fitted_detector, images):
    """The Keras detector's output on the 8 validation images, as numpy."""
    return {k: np.asarray(v) for k, v in fitted_detector(images.astype(np.float32)).items()}


@pytest.fixture(scope="module")
def fitted_saved_model(fitted_model, tmp_path_factory):
    return export.export_saved_model(fitted_model, tmp_path_factory.mktemp("fitted") / "serving", name="fitted")


@pytest.fixture(scope="module")
def fitted_tflite(fitted_model, tmp_path_factory):
    """The fitted model as a float32 `.tflite` (regular NMS, as `tflite_files["none"]`)."""
    return export.export_tflite(fitted_model, str(tmp_path_factory.mktemp("fitted_tflite") / "fitted.tflite"))


@pytest.fixture(scope="module")
def calibration():
    """uint8 `[16, 160, 160, 3]` training images for the int8 files.

    Fewer than conftest's `int8_file` (100): nothing here depends on how well
    the int8 files are calibrated (their anchors and graphs, and MediaPipe
    against `TFLiteDetector` on the same file), and calibration is most of an
    int8 conversion's time.
    """
    return export.calibration_images(
        data.load("shapes", "train", num_examples=16, seed=1, **SHAPES), SHAPES["image_size"], 16
    )


@pytest.fixture(scope="module")
def fitted_int8(fitted_model, calibration, tmp_path_factory):
    """The fitted model as an int8 `.tflite`."""
    path = str(tmp_path_factory.mktemp("fitted_int8") / "fitted_int8.tflite")
    return export.export_tflite(fitted_model, path, quantize="int8", calibration=calibration, verbose=False)


@pytest.fixture(scope="module")
def fitted_onnx(fitted_model, tmp_path_factory):
    return export.export_onnx(fitted_model, tmp_path_factory.mktemp("fitted_onnx") / "fitted.onnx", verbose=False)


def test_fit_adds_the_stride4_source_and_moves_the_boxes_off_the_preset(box_fit):
    preset, cfg = box_fit.preset.config, box_fit.config
    assert box_fit.chosen is box_fit.stride4
    assert cfg.stride4_source and not preset.stride4_source
    assert cfg.feature_map_sizes == (40,) + preset.feature_map_sizes
    assert cfg.num_boxes == preset.num_boxes + 40 * 40 * cfg.boxes_per_location[0]
    assert cfg.min_sizes[1:] != preset.min_sizes and cfg.max_sizes[1:] != preset.max_sizes
    preset_ratios = {r for ratios in preset.aspect_ratios for r in ratios}
    assert {r for ratios in cfg.aspect_ratios for r in ratios} - preset_ratios, cfg.aspect_ratios


def test_compared_detections_include_stride4_boxes_and_the_objects(fitted_expected, box_fit):
    # Parity means something for the new source only if its boxes are among the compared
    # detections (score > 0.3), and for the others if the objects are found too; a few per
    # image, well under the 200 kept and the 400 candidates per class.
    cfg = box_fit.config
    longest = [location_shapes(*source, cfg.image_size).max()
               for source in zip(cfg.min_sizes, cfg.max_sizes, cfg.aspect_ratios)]
    # Shorter than every default box of the other sources and longer than every stride-4 one
    # (whose offsets are scaled down): a detection below it comes from the stride-4 source.
    small = (longest[0] + min(longest[1:])) / 2
    assert longest[0] < small < min(longest[1:])
    stride4, others = [], []
    for b, n in enumerate(fitted_expected["num_detections"]):
        boxes = fitted_expected["detection_boxes"][b, :n][fitted_expected["detection_scores"][b, :n] > 0.3]
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        stride4.append(int((sides < small).sum()))
        others.append(int((sides >= small).sum()))
    # The first four images hold one large object each, the last four small ones.
    assert sum(stride4[4:]) >= 4 and min(others[:4]) >= 1 and max(stride4) + max(others) < 100, (stride4, others)


def test_keras_file_round_trips_the_fitted_config(fitted_model, fitted_expected, images, tmp_path):
    path = tmp_path / "fitted.keras"
    loaded = check_keras_file_round_trip(fitted_model, images[:2].astype(np.float32), path)
    assert loaded.ssd_config == fitted_model.ssd_config
    assert loaded.class_names == ["circle", "square", "triangle"]
    detector = export.load_detector(str(path), precision="float32")
    assert detector.class_names == ["circle", "square", "triangle"]
    assert assert_same_detections(fitted_expected, detector(images), tol=1e-3) >= len(images) // 2


@pytest.mark.numerics
def test_saved_model_matches_keras(fitted_saved_model, fitted_expected, images):
    detector = export.load_detector(os.path.dirname(fitted_saved_model))
    assert detector.class_names == ["circle", "square", "triangle"]
    assert assert_same_detections(fitted_expected, detector(images), tol=1e-3) >= len(images) // 2


def _postprocess_anchors(path):
    """The anchors input of every `TFLite_Detection_PostProcess` op of a `.tflite` file, in graph order."""
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    ops = [op for op in interpreter._get_ops_details() if op["op_name"] == "TFLite_Detection_PostProcess"]
    return [interpreter.get_tensor(op["inputs"][2]) for op in ops]


# The float32 and the int8 file (int8 calibration is the slow part).
TFLITE_FILES = ["fitted_tflite", pytest.param("fitted_int8", marks=pytest.mark.slow)]


@pytest.mark.parametrize("tflite_file", TFLITE_FILES)
def test_tflite_anchors_are_the_fitted_default_boxes(request, box_fit, tflite_file):
    cfg = box_fit.config
    expected = box_ops.corners_to_center(keras_ssd.default_boxes(cfg)).numpy()
    # Regular NMS: one op per class on the default boxes, then the merge op on the survivors.
    *per_class, _ = _postprocess_anchors(request.getfixturevalue(tflite_file))
    assert len(per_class) == cfg.num_classes
    for anchors in per_class:
        assert anchors.dtype == np.float32 and anchors.shape == (cfg.num_boxes, 4)
        np.testing.assert_array_equal(anchors, expected)


@pytest.mark.numerics
def test_tflite_float32_matches_keras(fitted_tflite, fitted_expected, images):
    actual = export.load_detector(fitted_tflite)(images)
    assert assert_same_detections(fitted_expected, actual, tol=1e-3) >= len(images) // 2
    assert actual["detection_boxes"].min() >= 0.0 and actual["detection_boxes"].max() <= 1.0


@pytest.mark.parametrize("tflite_file", TFLITE_FILES)
def test_mediapipe_object_detector_loads_the_fitted_file_and_agrees(request, images, tmp_path, tflite_file):
    path = request.getfixturevalue(tflite_file)
    metadata = export.read_detection_metadata(path)
    assert metadata["class_names"] == ["circle", "square", "triangle"]
    expected = export.TFLiteDetector(path, num_threads=1)(images)
    mediapipe = run_runtime("mediapipe", path, images, tmp_path, "--min-score", str(MIN_SCORE))
    assert assert_mediapipe_matches(mediapipe, expected, metadata["class_names"], SHAPES["image_size"]) >= 8


@pytest.mark.numerics
def test_onnx_matches_keras(fitted_onnx, fitted_expected, images):
    model = onnx.load(fitted_onnx)
    onnx.checker.check_model(model)
    assert "NonMaxSuppression" in {node.op_type for node in model.graph.node}
    actual = export.load_detector(fitted_onnx)(images)
    assert assert_same_detections(fitted_expected, actual, tol=1e-3, score_tol=1e-4) >= len(images) // 2 + 1
    np.testing.assert_array_equal(actual["num_detections"], fitted_expected["num_detections"])


@pytest.mark.slow
def test_onnx_int8_quantises_the_network_with_the_stride4_branch_and_keeps_the_interface(
    fitted_model, fitted_onnx, calibration, images, tmp_path
):
    path = export.export_onnx(fitted_model, tmp_path / "fitted_int8.onnx", quantize="int8", calibration=calibration,
                              verbose=False)
    int8, float32 = onnx.load(path), onnx.load(fitted_onnx)
    onnx.checker.check_model(int8)
    convs = quantised_network_convs(int8)
    # The stride-4 source's predictors are quantised like the others.
    assert any("conf_0" in conv.name for conv in convs) and any("loc_0" in conv.name for conv in convs)
    decoder = [node for node in int8.graph.node if "/detection_decoder" in node.name]
    assert decoder and not any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in decoder)
    assert [(i.name, i.type) for i in int8.graph.input] == [(i.name, i.type) for i in float32.graph.input]
    assert [(o.name, o.type) for o in int8.graph.output] == [(o.name, o.type) for o in float32.graph.output]
    detector = export.load_detector(path)
    assert detector.class_names == ["circle", "square", "triangle"]
    detected = detector(images)
    assert detected["detection_boxes"].shape == (len(images), 200, 4) and (detected["num_detections"] > 0).all()
