"""SSDLite's layers after the backbone (Sandler et al. 2018, section 6.2).

SSDLite replaces every regular conv of SSD's extra blocks and prediction
layers by a depthwise-separable one: a depthwise conv then a 1x1 conv. As in
MobileNetV2 (and the TF Object Detection API's ssdlite_mobilenet_v2),
every conv except the final 1x1 predictors is followed by batch norm and
ReLU6 (batch norm synchronized across replicas, as everywhere in keras_ssd);
convs before batch norm have no bias.
"""

import keras

from keras_ssd.backbones.conv import batch_norm_relu


def _bn_relu6(x, name, momentum):
    """BatchNormalization (`name_bn`, `momentum`) then ReLU6 (`name_relu`)."""
    return batch_norm_relu(x, name, momentum, max_value=6.0)


def _pointwise(x, filters, name, momentum):
    """1x1 conv without bias, BN, ReLU6: `[B, H, W, C]` -> `[B, H, W, filters]`."""
    return _bn_relu6(keras.layers.Conv2D(filters, 1, use_bias=False, name=name)(x), name, momentum)


def _depthwise(x, kernel_size, name, momentum, strides=1, padding="same"):
    """Depthwise conv without bias, BN, ReLU6: `[B, H, W, C]` -> `[B, H', W', C]`."""
    conv = keras.layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding=padding, use_bias=False, name=name
    )
    return _bn_relu6(conv(x), name, momentum)


def extra_block(x, block, name, cfg):
    """One SSDLite extra block: 1x1 bottleneck, kxk depthwise (strided), 1x1 to `filters`.

    Layers: `{name}_1` (1x1, `block.bottleneck_filters`), `{name}_2_pad`
    (explicit zero padding, when `block.padding`), `{name}_2_depthwise`,
    `{name}_2` (1x1, `block.filters`, the source map), each conv with BN and ReLU6.

    Args:
        x: float `[B, H, W, C]`.
        block: a `keras_ssd.config.ExtraBlock`.
        name: the block's prefix, e.g. "conv6".
        cfg: `SSDConfig`; uses `batch_norm_momentum` (SSDLite is batch-normalised
            throughout, so `batch_norm` is always True).

    Returns:
        float `[B, H', W', block.filters]`, H' = (H + 2 padding - k) // strides + 1.
    """
    momentum = cfg.batch_norm_momentum
    x = _pointwise(x, block.bottleneck_filters, f"{name}_1", momentum)
    if block.padding:
        x = keras.layers.ZeroPadding2D(block.padding, name=f"{name}_2_pad")(x)
    x = _depthwise(x, block.kernel_size, f"{name}_2_depthwise", momentum, block.strides, padding="valid")
    return _pointwise(x, block.filters, f"{name}_2", momentum)


def predictor(source, filters, name, cfg):
    """SSDLite prediction layer: 3x3 depthwise (BN, ReLU6), then a 1x1 conv with bias.

    Args:
        source: float `[B, H, W, C]` source map.
        filters: outputs per location (boxes * 4 or boxes * (num_classes + 1)).
        name: the 1x1 conv's name ("loc_k" or "conf_k"); the depthwise conv
            is `{name}_depthwise`.
        cfg: `SSDConfig`; uses `batch_norm_momentum` (the depthwise conv's batch norm).

    Returns:
        float `[B, H, W, filters]`, linear.
    """
    x = _depthwise(source, 3, f"{name}_depthwise", cfg.batch_norm_momentum)
    return keras.layers.Conv2D(filters, 1, name=name)(x)
