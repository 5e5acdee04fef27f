"""The paper's SSD head (Liu et al. 2016, Fig. 2): conv extra blocks and 3x3 conv predictors."""

import keras

from keras_ssd.backbones.conv import conv_relu


def extra_block(x, block, name, cfg):
    """One extra feature block: 1x1 conv `{name}_1`, zero padding, kxk conv `{name}_2`, ReLU.

    Args:
        x: float `[B, H, W, C]`.
        block: a `keras_ssd.config.ExtraBlock`.
        name: the block's prefix, e.g. "conv6" (Caffe's numbering).
        cfg: `SSDConfig`; uses `batch_norm` and `batch_norm_momentum`.

    Returns:
        float `[B, H', W', block.filters]`, H' = (H + 2 padding - k) // strides + 1.
    """
    bn = {"batch_norm": cfg.batch_norm, "batch_norm_momentum": cfg.batch_norm_momentum}
    x = conv_relu(x, block.bottleneck_filters, 1, f"{name}_1", **bn)
    if block.padding:
        x = keras.layers.ZeroPadding2D(block.padding, name=f"{name}_2_pad")(x)
    return conv_relu(x, block.filters, block.kernel_size, f"{name}_2", strides=block.strides, **bn)


def predictor(source, filters, name, cfg):
    """The paper's prediction layer: a linear 3x3 conv named `name`, the same for every config.

    Args:
        source: float `[B, H, W, C]` source map.
        filters: outputs per location (boxes * 4 or boxes * (num_classes + 1)).
        name: "loc_k" or "conf_k".
        cfg: `SSDConfig` (the same builder signature as `heads.ssdlite`; no field changes it).

    Returns:
        float `[B, H, W, filters]`.
    """
    return keras.layers.Conv2D(filters, 3, padding="same", name=name)(source)
