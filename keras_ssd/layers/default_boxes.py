"""Default (anchor) boxes of SSD, section 2.2 of the paper."""

import itertools
import math

import keras
import numpy as np
import tensorflow as tf

# False: none; True / "corners": clip yxyx corners; "center": clamp h, w to <= 1.
CLIP_MODES = (False, True, "corners", "center")


def location_shapes(min_size, max_size, aspect_ratios, image_size):
    """float64 `[2 + 2 len(aspect_ratios), 2]`: (h, w) of the default boxes at
    one location of a source, normalised, in `DefaultBoxes`' order.

    Args:
        min_size, max_size: the source's scales s_k and s_{k+1} in pixels.
        aspect_ratios: its extra ratios r.
        image_size: side of the square input in pixels.
    """
    s = min_size / image_size
    s_prime = math.sqrt(s * max_size / image_size)
    shapes = [(s, s), (s_prime, s_prime)]
    for r in aspect_ratios:
        root = math.sqrt(r)
        shapes += [(s / root, s * root), (s * root, s / root)]
    return np.array(shapes, np.float64)


@keras.saving.register_keras_serializable(package="keras_ssd")
class DefaultBoxes(keras.layers.Layer):
    """Generates SSD default boxes, normalised `[ymin, xmin, ymax, xmax]`.

    On source map k (side f_k, stride `steps[k]` px) the box centres are
    `((i + 0.5) * step / image_size, (j + 0.5) * step / image_size)` for row i
    and column j. At each location the boxes come in this order (as (h, w)
    with s = min_size / image_size, s' = max_size / image_size):

        (s, s), (sqrt(s s'), sqrt(s s')), then for each ratio r:
        (s / sqrt(r), s sqrt(r)) [wide: w = s sqrt r] and (s sqrt(r), s / sqrt(r)).

    Boxes are ordered source by source, row-major over locations, then by the
    order above, which is the order of a reshaped `[B, H, W, k * 4]` head.

    Calling the layer on any tensor with a batch dimension returns the boxes
    tiled to `[B, N, 4]`; `boxes()` returns them as numpy `[N, 4]`.

    Args:
        image_size: side of the square input in pixels.
        feature_map_sizes: side of each source map.
        steps: centre stride of each source in pixels.
        min_sizes, max_sizes: scales s_k and s_{k+1} of each source in pixels.
        aspect_ratios: extra ratios of each source.
        clip: False (no clipping); True or "corners": clip the corner form
            `[ymin, xmin, ymax, xmax]` to [0, 1]; "center": clip in the centre
            form, as torchvision's `DefaultBoxGenerator(clip=True)` does: h and
            w are clamped to at most 1 before converting to corners, centres
            are kept (a box taller or wider than the image keeps its centre
            and gets side 1; boxes may reach past the image).
    """

    def __init__(
        self,
        image_size,
        feature_map_sizes,
        steps,
        min_sizes,
        max_sizes,
        aspect_ratios,
        clip=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size = image_size
        self.feature_map_sizes = tuple(int(f) for f in feature_map_sizes)
        self.steps = tuple(float(s) for s in steps)
        self.min_sizes = tuple(float(s) for s in min_sizes)
        self.max_sizes = tuple(float(s) for s in max_sizes)
        self.aspect_ratios = tuple(tuple(float(r) for r in rs) for rs in aspect_ratios)
        if clip not in CLIP_MODES:
            raise ValueError(f"clip must be one of {CLIP_MODES!r}, got {clip!r}")
        self.clip = clip

    @classmethod
    def from_ssd_config(cls, cfg, **kwargs):
        """Builds the layer from an `SSDConfig`."""
        return cls(
            image_size=cfg.image_size,
            feature_map_sizes=cfg.feature_map_sizes,
            steps=cfg.steps,
            min_sizes=cfg.min_sizes,
            max_sizes=cfg.max_sizes,
            aspect_ratios=cfg.aspect_ratios,
            clip=cfg.clip_boxes,
            **kwargs,
        )

    def boxes(self):
        """Returns numpy float32 `[N, 4]` yxyx default boxes."""
        per_source = []
        for k, size in enumerate(self.feature_map_sizes):
            offsets = (np.arange(size) + 0.5) * self.steps[k] / self.image_size
            centres = np.array(list(itertools.product(offsets, offsets)))  # row-major (cy, cx)
            shapes = location_shapes(self.min_sizes[k], self.max_sizes[k], self.aspect_ratios[k], self.image_size)
            cy = np.repeat(centres[:, 0], len(shapes))
            cx = np.repeat(centres[:, 1], len(shapes))
            h = np.tile(shapes[:, 0], len(centres))
            w = np.tile(shapes[:, 1], len(centres))
            if self.clip == "center":
                # torchvision clamps its (w, h) pairs only; centres past 1 (e.g.
                # SSD300's 10x10 map at step 32 reaches 1.013) are left alone.
                h, w = np.minimum(h, 1.0), np.minimum(w, 1.0)
            per_source.append(np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], -1))
        boxes = np.concatenate(per_source, axis=0)
        if self.clip == "corners" or (self.clip and not isinstance(self.clip, str)):
            boxes = np.clip(boxes, 0.0, 1.0)
        return boxes.astype(np.float32)

    def call(self, inputs):
        boxes = tf.constant(self.boxes())
        batch = tf.shape(inputs)[0]
        return tf.tile(boxes[None], [batch, 1, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.boxes()), 4)

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            feature_map_sizes=list(self.feature_map_sizes),
            steps=list(self.steps),
            min_sizes=list(self.min_sizes),
            max_sizes=list(self.max_sizes),
            aspect_ratios=[list(r) for r in self.aspect_ratios],
            clip=self.clip,
        )
        return config


def default_boxes(cfg):
    """Default boxes of an `SSDConfig`: numpy float32 `[N, 4]`, yxyx, normalised."""
    return DefaultBoxes.from_ssd_config(cfg).boxes()
