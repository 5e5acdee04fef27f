"""The SSD network: base, extra feature layers and multibox heads (paper Fig. 2)."""

import keras

from keras_ssd.backbones.conv import conv_relu
from keras_ssd.backbones.vgg16 import load_vgg16_weights, vgg_features
from keras_ssd.config import VGG16_WIDTHS, SSDConfig
from keras_ssd.distribute import build_from_local_replica, in_multi_worker_mode, reducible_across_workers
from keras_ssd.layers.l2_normalization import L2Normalization
from keras_ssd.layers.preprocessing import VGGPreprocessing


def _source_maps(images, cfg):
    """Preprocesses raw images and returns the list of source feature maps."""
    x = VGGPreprocessing(cfg.pixel_mean_bgr, name="preprocessing")(images)
    conv4_3, fc7 = vgg_features(x, cfg)
    sources = [L2Normalization(cfg.l2norm_scale, name="conv4_3_norm")(conv4_3), fc7]
    x = fc7
    # Caffe numbers the extra blocks conv6 .. conv(5 + n) after fc6/fc7.
    for index, block in enumerate(cfg.extra_blocks, start=6):
        x = conv_relu(x, block.bottleneck_filters, 1, f"conv{index}_1", cfg.batch_norm)
        if block.padding:
            x = keras.layers.ZeroPadding2D(block.padding, name=f"conv{index}_2_pad")(x)
        x = conv_relu(
            x, block.filters, block.kernel_size, f"conv{index}_2", cfg.batch_norm, strides=block.strides
        )
        sources.append(x)
    return sources


def _multibox_heads(sources, cfg):
    """3x3 conv heads on every source -> `y_pred` `[B, N, 4 + num_classes + 1]`."""
    offsets, logits = [], []
    for k, (source, boxes) in enumerate(zip(sources, cfg.boxes_per_location)):
        loc = keras.layers.Conv2D(boxes * 4, 3, padding="same", name=f"loc_{k}")(source)
        conf = keras.layers.Conv2D(
            boxes * (cfg.num_classes + 1), 3, padding="same", name=f"conf_{k}"
        )(source)
        offsets.append(keras.layers.Reshape((-1, 4), name=f"loc_{k}_flat")(loc))
        logits.append(keras.layers.Reshape((-1, cfg.num_classes + 1), name=f"conf_{k}_flat")(conf))
    offsets = keras.layers.Concatenate(axis=1, name="box_offsets")(offsets)
    logits = keras.layers.Concatenate(axis=1, name="class_logits")(logits)
    y_pred = keras.layers.Concatenate(axis=-1, name="concat_pred")([offsets, logits])
    # Float32 output even under mixed precision: the loss and decoder need it.
    return keras.layers.Activation("linear", dtype="float32", name="y_pred")(y_pred)


@keras.saving.register_keras_serializable(package="keras_ssd")
class SSD(keras.Model):
    """SSD training model: RGB images 0..255 `[B, S, S, 3]` -> `y_pred` `[B, N, 4 + C + 1]`.

    `y_pred[..., :4]` are box offsets `[ty, tx, th, tw]` against the default
    boxes, `y_pred[..., 4:]` class logits with background at index 0.

    Args:
        config: an `SSDConfig` (or its dict form).
        class_names: optional list of `num_classes` names stored with the model.
    """

    def __init__(self, config, class_names=None, **kwargs):
        cfg = config if isinstance(config, SSDConfig) else SSDConfig(**config)
        if class_names is not None and len(class_names) != cfg.num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} names but num_classes is {cfg.num_classes}"
            )
        images = keras.Input((cfg.image_size, cfg.image_size, 3), name="images")
        sources = _source_maps(images, cfg)
        sizes = tuple(int(s.shape[1]) for s in sources)
        if sizes != cfg.feature_map_sizes:
            raise ValueError(
                f"Config {cfg.name!r} expects source maps {cfg.feature_map_sizes} but the network "
                f"at image_size={cfg.image_size} gives {sizes}"
            )
        kwargs.setdefault("name", cfg.name)
        super().__init__(images, _multibox_heads(sources, cfg), **kwargs)
        self.ssd_config = cfg
        self.class_names = list(class_names) if class_names is not None else None

    # Two Keras 3.15 TF-trainer hooks adjusted so that `fit` runs under
    # MultiWorkerMirroredStrategy (keras-team/keras#20585); see keras_ssd.distribute.
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is None or self._distribute_strategy is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        build_from_local_replica(self, iterator)

    def train_step(self, data):
        logs = super().train_step(data)
        return reducible_across_workers(logs) if in_multi_worker_mode(self.distribute_strategy) else logs

    def get_config(self):
        return {
            "config": self.ssd_config.to_dict(),
            "class_names": self.class_names,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_ssd(cfg, backbone_weights=None, class_names=None):
    """Builds the SSD training model for `cfg`.

    Args:
        cfg: an `SSDConfig`, e.g. `SSDConfig.from_preset("ssd300_vgg16")`.
        backbone_weights: None (random), "imagenet" (Keras' VGG16 download), or a
            path to weights saved from `keras.applications.VGG16`. fc6/fc7 are
            subsampled from fc1/fc2 when the weights include them.
        class_names: optional names of the `num_classes` classes, kept in the model.

    Returns:
        An `SSD` Keras model mapping RGB images 0..255 `[B, S, S, 3]` to
        `y_pred` float32 `[B, N, 4 + num_classes + 1]`.
    """
    model = SSD(cfg, class_names=class_names)
    if backbone_weights is not None:
        if cfg.vgg_widths != VGG16_WIDTHS:
            raise ValueError(
                f"backbone_weights={backbone_weights!r} needs VGG16 widths, but preset "
                f"{cfg.name!r} has vgg_widths={cfg.vgg_widths}; pass backbone_weights=None"
            )
        load_vgg16_weights(model, backbone_weights)
    return model
