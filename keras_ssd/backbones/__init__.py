"""Backbones: feature extractors that feed SSD's first two source maps.

Each module has `source_maps(images, cfg)` (raw RGB 0..255 images -> its two
source maps, preprocessing included), `source_map_sides(image_size, stride4_source)` (the
sides those maps have at an input side, its own rounding rule) and
`load_weights(model, weights)` (ImageNet or a saved `keras.applications` file).
`BACKBONES` maps `SSDConfig.backbone` to its module.
"""

from keras_ssd.backbones import mobilenet_v2, vgg16

BACKBONES = {"vgg16": vgg16, "mobilenet_v2": mobilenet_v2}
