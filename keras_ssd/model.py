"""The SSD network: base, extra feature layers and multibox heads (paper Fig. 2)."""

import os

import keras

from keras_ssd import distribute
from keras_ssd.backbones import BACKBONES
from keras_ssd.config import SSDConfig
from keras_ssd.heads import HEADS


def _source_maps(images, cfg):
    """Preprocesses raw images and returns the list of source feature maps."""
    sources = BACKBONES[cfg.backbone].source_maps(images, cfg)
    extra_block = HEADS[cfg.head].extra_block
    x = sources[-1]
    # Caffe numbers the extra blocks conv6 .. conv(5 + n) after fc6/fc7.
    for index, block in enumerate(cfg.extra_blocks, start=6):
        x = extra_block(x, block, f"conv{index}", cfg)
        sources.append(x)
    return sources


def _multibox_heads(sources, cfg):
    """Prediction layers on every source -> `y_pred` `[B, N, 4 + num_classes + 1]`."""
    predictor = HEADS[cfg.head].predictor
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

    # Multi-worker only: two Keras TF-trainer hooks adjusted so that `fit` runs under
    # a MultiWorkerMirroredStrategy of several workers (keras-team/keras#20585, open;
    # needed with Keras 3.15, the version pinned in setup.cfg). Every other strategy
    # takes Keras' own path. The two-worker test in tests/training/test_train.py
    # fails when Keras changes these hooks or fixes the issue; then remove both.
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is None or not distribute.in_multi_worker_mode(self._distribute_strategy):
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        distribute.build_from_local_replica(self, iterator)

    def train_step(self, data):
        logs = super().train_step(data)
        if distribute.in_multi_worker_mode(self.distribute_strategy):
            return distribute.reducible_across_workers(logs)
        return logs

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
        BACKBONES[cfg.backbone].load_weights(model, backbone_weights)
    return model


def ssd_config_of(model, purpose):
    """The `SSDConfig` of an `SSD` model, or a ValueError saying what `purpose` needs.

    Args:
        model: the object to check (a Keras model, usually).
        purpose: what the caller does, for the message, e.g. "export_tflite".

    Raises:
        ValueError: `model` has no `ssd_config` (it is not built by `build_ssd`
            or loaded from a `.keras` file saved from one).
    """
    cfg = getattr(model, "ssd_config", None)
    if not isinstance(cfg, SSDConfig):
        raise ValueError(
            f"{purpose} needs an SSD model from keras_ssd.build_ssd (or a .keras file saved from "
            f"one), got {type(model).__name__}"
        )
    return cfg


def load_ssd(path):
    """Loads an `SSD` model from a `.keras` file, uncompiled.

    Raises:
        ValueError: the file is missing, not a Keras archive, or holds another
            kind of model (the message names the file).
    """
    path = str(path)
    if not os.path.isfile(path):
        raise ValueError(f"Model file {path!r} does not exist")
    try:
        model = keras.saving.load_model(path, compile=False)
    except (ValueError, OSError, KeyError, TypeError) as error:
        raise ValueError(f"{path!r} is not a .keras model file that keras_ssd can load: {error}") from error
    if not isinstance(model, SSD):
        raise ValueError(f"{path!r} holds a {type(model).__name__}, not an SSD model saved by keras_ssd")
    return model
