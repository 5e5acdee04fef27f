"""SSD heads: the extra feature blocks and the prediction layers after the backbone.

Each module has the same two builders, both taking the `SSDConfig` last:
`extra_block(x, block, name, cfg)` and `predictor(source, filters, name, cfg)`.
`HEADS` maps `SSDConfig.head` to its module.
"""

from keras_ssd.heads import ssd, ssdlite

HEADS = {"ssd": ssd, "ssdlite": ssdlite}
