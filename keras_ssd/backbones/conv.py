"""The conv + ReLU unit of SSD's base and extra layers, optionally batch-normalised."""

import keras


def conv_relu(x, filters, kernel_size, name, batch_norm=False, batch_norm_momentum=0.99, **conv_kwargs):
    """Conv2D (named `name`) then ReLU; with `batch_norm`, Conv2D without bias -> BN -> ReLU.

    Args:
        x: float `[B, H, W, C]` tensor.
        filters, kernel_size, **conv_kwargs: as for `keras.layers.Conv2D`.
        name: the conv layer's name (the BN and ReLU take `name_bn`, `name_relu`).
        batch_norm: insert `BatchNormalization` (folded into the conv by TFLite),
            synchronized across replicas so that distributed training uses
            the global batch's statistics and every worker keeps the same
            moving averages.
        batch_norm_momentum: momentum of the batch norm's moving averages.

    Returns:
        float `[B, H', W', filters]`.
    """
    if not batch_norm:
        return keras.layers.Conv2D(filters, kernel_size, activation="relu", name=name, **conv_kwargs)(x)
    x = keras.layers.Conv2D(filters, kernel_size, use_bias=False, name=name, **conv_kwargs)(x)
    x = keras.layers.BatchNormalization(momentum=batch_norm_momentum, synchronized=True, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)
