"""VGG16 as SSD uses it (paper section 3, "Base network"; Caffe's reduced VGG).

Changes from `keras.applications.VGG16`: pool3 uses ceil mode (padding
"same") so a 300 px input gives a 38x38 conv4_3; pool5 is 3x3 stride 1;
fc6/fc7 become a 3x3 conv with dilation 6 and a 1x1 conv, 1024 filters each.
Conv layers keep Keras' names (`block{b}_conv{c}`) so ImageNet weights load by name.
Without pretrained weights, convs keep Keras' Glorot (Caffe's "xavier")
initialisation, which SSD's Caffe model uses for its new layers; with raw
0..255 inputs it keeps activations moderate, where He initialisation makes
fc7 activations ~80x larger and training diverges.
"""

import keras
import numpy as np

from keras_ssd.backbones.conv import conv_relu
from keras_ssd.backbones.keras_applications import keras_application
from keras_ssd.layers.l2_normalization import L2Normalization
from keras_ssd.layers.preprocessing import VGGPreprocessing

# Filters of each conv in VGG16's blocks 1..5 (the widths ImageNet weights fit).
VGG16_WIDTHS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def source_map_sides(image_size, stride4_source=False):
    """Sides of the sources at `image_size` px: `(conv4_3, fc7)`, or
    `(conv3_3, conv4_3, fc7)` with `stride4_source`.

    Max-pools 1, 2 and 4 round down, pool3 rounds up (Caffe's ceil mode), pool5
    keeps the side: conv3_3 is at stride 4, conv4_3 at stride 8 and fc7 at
    stride 16, e.g. 75, 38 and 19 at 300 px.
    """
    conv3_3 = image_size // 2 // 2
    conv4_3 = -(-conv3_3 // 2)
    sides = (conv4_3, conv4_3 // 2)
    return (conv3_3,) + sides if stride4_source else sides


def source_maps(images, cfg):
    """SSD's VGG sources from raw images: L2-normalised conv4_3 and fc7, after
    an L2-normalised conv3_3 when `cfg.stride4_source`.

    Args:
        images: float `[B, S, S, 3]` RGB in 0..255.
        cfg: `SSDConfig`; uses `pixel_mean_bgr`, `l2norm_scale`, `stride4_source`
            and the VGG fields.

    Returns:
        `[conv4_3_norm, fc7]`: `[B, S/8, S/8, C4]` (ceil) and `[B, S/16, S/16, fc7_filters]`;
        with `stride4_source`, `[conv3_3_norm, conv4_3_norm, fc7]`, conv3_3_norm
        `[B, S/4, S/4, C3]` (floor).
    """
    x = VGGPreprocessing(cfg.pixel_mean_bgr, name="preprocessing")(images)
    conv3_3, conv4_3, fc7 = vgg_features(x, cfg)
    sources = [L2Normalization(cfg.l2norm_scale, name="conv4_3_norm")(conv4_3), fc7]
    if cfg.stride4_source:
        sources.insert(0, L2Normalization(cfg.l2norm_scale, name="conv3_3_norm")(conv3_3))
    return sources


def vgg_features(images, cfg):
    """Applies the VGG-style base to preprocessed images.

    Args:
        images: float `[B, S, S, 3]` tensor, already mean-subtracted.
        cfg: `SSDConfig`; uses `vgg_widths`, `fc6_*`, `fc7_filters`.

    Returns:
        `(conv3_3, conv4_3, fc7)`: the last conv of blocks 3 and 4 and fc7,
        `[B, S/4, S/4, C3]` (floor), `[B, S/8, S/8, C4]` (ceil) and
        `[B, S/16, S/16, fc7_filters]`.
    """
    x = images
    conv3_3 = conv4_3 = None
    bn = {"batch_norm": cfg.batch_norm, "batch_norm_momentum": cfg.batch_norm_momentum}
    for block, widths in enumerate(cfg.vgg_widths, start=1):
        for i, filters in enumerate(widths, start=1):
            x = conv_relu(x, filters, 3, f"block{block}_conv{i}", padding="same", **bn)
        if block == 3:
            conv3_3 = x
        if block == 4:
            conv4_3 = x
        if block < 5:
            # pool3 (block 3) must round up: Caffe's ceil mode == "same" for 2x2/2.
            padding = "same" if block == 3 else "valid"
            x = keras.layers.MaxPooling2D(2, 2, padding=padding, name=f"block{block}_pool")(x)
    x = keras.layers.MaxPooling2D(3, 1, padding="same", name="block5_pool")(x)
    x = conv_relu(x, cfg.fc6_filters, 3, "fc6", padding="same", dilation_rate=cfg.fc6_dilation, **bn)
    fc7 = conv_relu(x, cfg.fc7_filters, 1, "fc7", **bn)
    return conv3_3, conv4_3, fc7


def subsample_fc(fc1_kernel, fc1_bias, fc2_kernel, fc2_bias):
    """The paper's "reduced" fc6/fc7 from VGG16's fc1/fc2.

    fc1 `[7*7*512, 4096]` becomes a 3x3x512x1024 conv by keeping every 3rd
    spatial tap and every 4th output unit (Caffe's VGG_ILSVRC_16_layers_fc_reduced);
    fc2 `[4096, 4096]` becomes 1x1x1024x1024 by keeping every 4th unit on both sides.

    Returns:
        `(fc6_kernel [3,3,512,1024], fc6_bias [1024], fc7_kernel [1,1,1024,1024], fc7_bias [1024])`.
    """
    fc6_kernel = np.reshape(fc1_kernel, (7, 7, 512, 4096))[::3, ::3, :, ::4]
    fc7_kernel = fc2_kernel[::4, ::4][None, None]
    return fc6_kernel, fc1_bias[::4], fc7_kernel, fc2_bias[::4]


def load_weights(model, weights):
    """Copies VGG16 weights into an SSD model built by `build_ssd`.

    Args:
        model: the SSD Keras model (conv layers named like Keras' VGG16).
        weights: "imagenet" (downloaded by Keras) or a path to weights saved from
            `keras.applications.VGG16` (`.weights.h5`, with or without the top).
            When the file has fc1/fc2, fc6/fc7 are initialised by subsampling.

    Returns:
        Names of the layers that received weights.

    Raises:
        ValueError: the model's VGG widths are not VGG16's, or `weights` is
            not a VGG16 weights file.
    """
    cfg = model.ssd_config
    if cfg.vgg_widths != VGG16_WIDTHS:
        raise ValueError(
            f"backbone_weights={weights!r} needs VGG16 widths, but preset "
            f"{cfg.name!r} has vgg_widths={cfg.vgg_widths}; pass backbone_weights=None"
        )
    # With the top when the file has it: fc1/fc2 give fc6/fc7.
    source = keras_application(keras.applications.VGG16, weights, imagenet_top=True)
    loaded = []
    for block, widths in enumerate(VGG16_WIDTHS, start=1):
        for i in range(1, len(widths) + 1):
            name = f"block{block}_conv{i}"
            model.get_layer(name).set_weights(source.get_layer(name).get_weights())
            loaded.append(name)
    layer_names = {layer.name for layer in source.layers}
    if {"fc1", "fc2"} <= layer_names:
        fc6_kernel, fc6_bias, fc7_kernel, fc7_bias = subsample_fc(
            *source.get_layer("fc1").get_weights(), *source.get_layer("fc2").get_weights()
        )
        model.get_layer("fc6").set_weights([fc6_kernel, fc6_bias])
        model.get_layer("fc7").set_weights([fc7_kernel, fc7_bias])
        loaded += ["fc6", "fc7"]
    return loaded
