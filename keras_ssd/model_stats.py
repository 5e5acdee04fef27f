"""Analytic cost of a model: multiply-accumulates of its convolutions."""

import keras


def count_macs(model):
    """Multiply-accumulates per image of every `Conv2D` and `DepthwiseConv2D` in
    `model` (nested models included).

    Counts kernel MACs only (out_h * out_w * k_h * k_w * c_in * c_out; for a
    depthwise conv c_out is the depth multiplier), the convention of the
    paper's and torchvision's GMAC figures.

    Returns:
        int, MACs for one image.
    """
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            _, out_h, out_w, _ = layer.output.shape
            k_h, k_w, c_in, c_out = layer.kernel.shape
            total += out_h * out_w * k_h * k_w * c_in * c_out
    return total
