"""The conv + ReLU unit of SSD's base and extra layers, optionally batch-normalised."""

import keras

from keras_ssd.layers.conv2d import Conv2D
from keras_ssd.layers.fused_batch_norm import FusedBatchNormalization


def conv_relu(x, filters, kernel_size, name, batch_norm=False, batch_norm_momentum=0.99, **conv_kwargs):
    """Conv2D (`keras_ssd.layers.Conv2D`, named `name`) then ReLU; with `batch_norm`,
    Conv2D without bias -> BN -> ReLU.

    Args:
        x: float `[B, H, W, C]` tensor.
        filters, kernel_size, **conv_kwargs: as for `keras.layers.Conv2D`.
        name: the conv layer's name (the BN and ReLU take `name_bn`, `name_relu`).
        batch_norm: insert `BatchNormalization` (folded into the conv by TFLite;
            see `batch_norm_relu`).
        batch_norm_momentum: momentum of the batch norm's moving averages.

    Returns:
        float `[B, H', W', filters]`.
    """
    if not batch_norm:
        return Conv2D(filters, kernel_size, activation="relu", name=name, **conv_kwargs)(x)
    x = Conv2D(filters, kernel_size, use_bias=False, name=name, **conv_kwargs)(x)
    return batch_norm_relu(x, name, batch_norm_momentum)


def batch_norm_relu(x, name, momentum, max_value=None):
    """Batch normalisation (`name_bn`) then ReLU (`name_relu`, capped at `max_value`).

    Every batch norm of keras_ssd's own layers is built here: a
    `FusedBatchNormalization` (Keras' layer, trained with the fused kernel),
    synchronized across replicas so that distributed training uses the
    global batch's statistics and every worker keeps the same moving averages.

    Args:
        x: float `[B, H, W, C]` tensor.
        name: prefix of the two layers' names.
        momentum: momentum of the batch norm's moving averages.
        max_value: ReLU cap (6.0 for ReLU6), None for none.

    Returns:
        float `[B, H, W, C]`.
    """
    x = FusedBatchNormalization(momentum=momentum, synchronized=True, name=f"{name}_bn")(x)
    return keras.layers.ReLU(max_value, name=f"{name}_relu")(x)
