"""`with_num_classes`: new class heads, everything else kept."""

import keras
import numpy as np
import pytest

import keras_ssd


@pytest.mark.numerics
def test_keeps_backbone_and_box_heads_and_replaces_class_heads(tiny_cfg, tmp_path):
    source = keras_ssd.build_ssd(tiny_cfg, class_names=["circle", "square", "triangle"])
    for variable in source.weights:  # make every weight distinctive
        variable.assign(np.random.default_rng(0).normal(size=variable.shape))
    model = keras_ssd.with_num_classes(source, 5, ["a", "b", "c", "d", "e"])
    assert isinstance(model, keras_ssd.SSD) and model.class_names == ["a", "b", "c", "d", "e"]
    assert model.ssd_config == keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=5)
    assert model.output_shape == (None, tiny_cfg.num_boxes, 4 + 5 + 1)
    replaced = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        old = source.get_layer(layer.name).get_weights()
        new = layer.get_weights()
        if layer.name.startswith("conf_"):
            replaced += 1
            boxes = tiny_cfg.boxes_per_location[int(layer.name.split("_")[1])]
            assert new[0].shape == old[0].shape[:3] + (boxes * 6,)
            assert np.all(new[1] == 0)  # fresh init: zero bias
        else:
            for a, b in zip(old, new):
                np.testing.assert_array_equal(a, b, err_msg=layer.name)
    assert replaced == len(tiny_cfg.feature_map_sizes)
    # The box offsets of the new model equal the old ones; it saves and loads.
    images = np.random.default_rng(1).integers(0, 256, (1, 160, 160, 3)).astype(np.float32)
    np.testing.assert_allclose(
        model.predict(images, verbose=0)[..., :4],
        source.predict(images, verbose=0)[..., :4],
        rtol=1e-5,
        atol=1e-5,
    )
    path = tmp_path / "five.keras"
    model.save(path)
    assert keras.models.load_model(path).class_names == ["a", "b", "c", "d", "e"]


def test_keeps_the_rest_of_the_config(tiny_cfg):
    cfg = keras_ssd.SSDConfig.from_preset(
        "ssd_tiny", num_classes=3, clip_boxes="center", pixel_mean_bgr=(1.0, 2.0, 3.0)
    )
    model = keras_ssd.with_num_classes(keras_ssd.build_ssd(cfg), 1)
    assert model.ssd_config.clip_boxes == "center"
    assert model.ssd_config.pixel_mean_bgr == (1.0, 2.0, 3.0)
    assert model.class_names is None


def test_errors(tiny_cfg):
    model = keras_ssd.build_ssd(tiny_cfg)
    with pytest.raises(ValueError, match="class_names has 1 names but num_classes is 2"):
        keras_ssd.with_num_classes(model, 2, ["only"])
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        keras_ssd.with_num_classes(model, 0)
    with pytest.raises(ValueError, match="needs an SSD model"):
        keras_ssd.with_num_classes(keras.Sequential([keras.Input((2,))]), 2)
