"""MobileNetV2 as SSDLite uses it (Sandler et al. 2018, section 6.2).

The network is `keras.applications.MobileNetV2` (width 1.0) without its
classifier, nested in the SSD model as one layer named "mobilenet_v2", so
ImageNet weights load layer by layer under Keras' names. Its two SSD sources
are those of the TF Object Detection API's ssdlite_mobilenet_v2:

* `block_13_expand_relu`: the 1x1 expansion (96 -> 576 channels, BN, ReLU6)
  of the first stride-32 block, taken before its stride-2 depthwise conv, so
  at stride 16 (20x20 at 320 px);
* `out_relu`: the final 1x1 conv (320 -> 1280, BN, ReLU6) at stride 32.

Keras' MobileNetV2 sets batch-norm momentum 0.999 (for long ImageNet runs);
here it is `SSDConfig.batch_norm_momentum` (0.97 in `ssdlite320_mobilenetv2`,
torchvision's ssdlite320 value, PyTorch momentum 0.03), so that the moving
statistics follow the weights within ~100 steps of detection training (0.97^100
= 0.05 of the old statistics left, against 0.90 at 0.999). As every batch
norm of keras_ssd (see `backbones/conv.py`), they are synchronized across replicas.
"""

import keras

from keras_ssd.backbones.keras_applications import keras_application

SOURCE_LAYERS = ("block_13_expand_relu", "out_relu")
BACKBONE_NAME = "mobilenet_v2"


def source_map_sides(image_size, stride4_source=False):
    """Sides of the two sources at `image_size` px: `(stride 16, stride 32)`.

    `stride4_source` must be False: `SSDConfig` allows a stride-4 source
    with vgg16 only.

    Every stride-2 layer rounds up (`keras.applications`' `correct_pad`), e.g.
    20 and 10 at 320 px, 10 and 5 at 160 px.
    """
    stride16 = image_size
    for _ in range(4):
        stride16 = -(-stride16 // 2)
    return stride16, -(-stride16 // 2)


def source_maps(images, cfg):
    """SSDLite's two MobileNetV2 sources from raw images.

    Args:
        images: float `[B, S, S, 3]` RGB in 0..255; mapped to [-1, 1] by a
            `Rescaling` layer named "preprocessing" (x / 127.5 - 1, as
            `keras.applications.mobilenet_v2.preprocess_input`).
        cfg: `SSDConfig`; uses `image_size` and `batch_norm_momentum`.

    Returns:
        `[expansion_13, final_conv]`: `[B, S/16, S/16, 576]` and
        `[B, S/32, S/32, 1280]` (sides rounded up).
    """
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocessing")(images)
    base = keras.applications.MobileNetV2(
        input_shape=(cfg.image_size, cfg.image_size, 3), include_top=False, weights=None
    )
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum, layer.synchronized = cfg.batch_norm_momentum, True
    backbone = keras.Model(
        base.inputs, [base.get_layer(name).output for name in SOURCE_LAYERS], name=BACKBONE_NAME
    )
    return list(backbone(x))


def load_weights(model, weights):
    """Copies MobileNetV2 weights into an SSD model built by `build_ssd`.

    Args:
        model: the SSD Keras model with a nested "mobilenet_v2" backbone.
        weights: "imagenet" (Keras downloads the no-top file; fails offline)
            or a path to weights saved from `keras.applications.MobileNetV2`
            at width 1.0 (`.weights.h5`, with or without the top; the top is
            not used).

    Returns:
        Names of the backbone layers that received weights.

    Raises:
        ValueError: `weights` is not a MobileNetV2 weights file.
    """
    source = keras_application(keras.applications.MobileNetV2, weights, imagenet_top=False)
    loaded = []
    for layer in model.get_layer(BACKBONE_NAME).layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
            loaded.append(layer.name)
    return loaded
