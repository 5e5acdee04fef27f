"""The SSD network: base, extra feature layers and multibox heads (paper Fig. 2)."""

import keras

from keras_ssd import ssdlite
from keras_ssd.backbones import mobilenet_v2, vgg16
from keras_ssd.backbones.conv import conv_relu
from keras_ssd.config import SSDConfig
from keras_ssd.distribute import build_from_local_replica, in_multi_worker_mode, reducible_across_workers


def _extra_block(x, block, name, cfg):
    """The paper's extra block: 1x1 conv `{name}_1`, padding, kxk conv `{name}_2`, ReLU."""
    bn = {"batch_norm": cfg.batch_norm, "batch_norm_momentum": cfg.batch_norm_momentum}
    x = conv_relu(x, block.bottleneck_filters, 1, f"{name}_1", **bn)
    if block.padding:
        x = keras.layers.ZeroPadding2D(block.padding, name=f"{name}_2_pad")(x)
    return conv_relu(x, block.filters, block.kernel_size, f"{name}_2", strides=block.strides, **bn)


def _predictor(source, filters, name, cfg):
    """The paper's prediction layer: a linear 3x3 conv `name` (nothing in `cfg` changes it)."""
    del cfg
    return keras.layers.Conv2D(filters, 3, padding="same", name=name)(source)


# `SSDConfig.backbone` -> (raw images, cfg -> its 2 source maps; weights loader).
_BACKBONES = {
    "vgg16": (vgg16.source_maps, vgg16.load_vgg16_weights),
    "mobilenet_v2": (mobilenet_v2.source_maps, mobilenet_v2.load_mobilenet_v2_weights),
}
# `SSDConfig.head` -> (extra block builder, prediction layer builder), each taking
# the cfg last. SSDLite is batch-normalised throughout (SSDConfig requires
# batch_norm=True), so it reads only the momentum.
_HEADS = {
    "ssd": (_extra_block, _predictor),
    "ssdlite": (
        lambda x, block, name, cfg: ssdlite.extra_block(x, block, name, cfg.batch_norm_momentum),
        lambda source, filters, name, cfg: ssdlite.predictor(source, filters, name, cfg.batch_norm_momentum),
    ),
}


def _source_maps(images, cfg):
    """Preprocesses raw images and returns the list of source feature maps."""
    sources = _BACKBONES[cfg.backbone][0](images, cfg)
    extra_block = _HEADS[cfg.head][0]
    x = sources[-1]
    # Caffe numbers the extra blocks conv6 .. conv(5 + n) after fc6/fc7.
    for index, block in enumerate(cfg.extra_blocks, start=6):
        x = extra_block(x, block, f"conv{index}", cfg)
        sources.append(x)
    return sources


def _multibox_heads(sources, cfg):
    """Prediction layers on every source -> `y_pred` `[B, N, 4 + num_classes + 1]`."""
    predictor = _HEADS[cfg.head][1]
    offsets, logits = [], []
    for k, (source, boxes) in enumerate(zip(sources, cfg.boxes_per_location)):
        loc = predictor(source, boxes * 4, f"loc_{k}", cfg)
        conf = predictor(source, boxes * (cfg.num_classes + 1), f"conf_{k}", cfg)
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
        backbone_weights: None (random), "imagenet" (Keras' download of the
            backbone's ImageNet weights), or a path to weights saved from
            `keras.applications.VGG16` (vgg16; fc6/fc7 are subsampled from
            fc1/fc2 when the weights include them) or
            `keras.applications.MobileNetV2` (mobilenet_v2, width 1.0).
        class_names: optional names of the `num_classes` classes, kept in the model.

    Returns:
        An `SSD` Keras model mapping RGB images 0..255 `[B, S, S, 3]` to
        `y_pred` float32 `[B, N, 4 + num_classes + 1]`.
    """
    model = SSD(cfg, class_names=class_names)
    if backbone_weights is not None:
        _BACKBONES[cfg.backbone][1](model, backbone_weights)
    return model
