"""`SSDConfig`: every number that defines an SSD network, its boxes and its heads.

The presets reproduce the paper's networks (Liu et al. 2016, arXiv 1512.02325,
Table 1 and section 2.2; the Caffe `ssd_pascal.py` scripts give the exact
min/max sizes and steps) and add `ssd_tiny`, the same design made small enough
to train on a 2-core CPU in minutes, and `ssdlite320_mobilenetv2`, the mobile
SSDLite of the MobileNetV2 paper (Sandler et al. 2018, section 6.2).
"""

import dataclasses
from typing import Optional, Tuple, Union

from keras_ssd.backbones import BACKBONES
from keras_ssd.backbones.vgg16 import VGG16_WIDTHS
from keras_ssd.heads import HEADS
from keras_ssd.layers.default_boxes import CLIP_MODES
from keras_ssd.layers.preprocessing import VGG_BGR_MEAN


# The `SSDConfig` fields that make the default boxes.
BOX_FIELDS = ("stride4_source", "feature_map_sizes", "steps", "min_sizes", "max_sizes", "aspect_ratios")


@dataclasses.dataclass(frozen=True)
class ExtraBlock:
    """One SSD extra feature block: a 1x1 conv then a kxk conv, both ReLU.

    With `SSDConfig.head == "ssdlite"` the kxk conv is depthwise-separable
    (kxk depthwise conv on the bottleneck, then a 1x1 conv to `filters`) and
    every conv is followed by batch norm and ReLU6.

    Attributes:
        bottleneck_filters: filters of the 1x1 conv.
        filters: filters of the kxk conv (this block's source map depth).
        kernel_size: side of the second conv's kernel.
        strides: stride of the second conv.
        padding: explicit zero padding (pixels per side) before the second conv,
            as in Caffe/torchvision, so map sizes and alignment are exact.
    """

    bottleneck_filters: int
    filters: int
    kernel_size: int = 3
    strides: int = 2
    padding: int = 1


@dataclasses.dataclass(frozen=True)
class SSDConfig:
    """Configuration of an SSD detector.

    Sizes are in pixels of the square network input. Boxes produced from this
    config are normalised `[ymin, xmin, ymax, xmax]`.

    Attributes:
        name: preset name (informational).
        num_classes: object classes, background excluded.
        image_size: side of the square network input in pixels.
        backbone: one of `BACKBONES`: "vgg16" (VGG-style, widths below; the
            sources are conv4_3, L2-normalised, and fc7) or "mobilenet_v2"
            (`keras.applications.MobileNetV2`; the sources are block 13's
            expansion output, 576 channels at stride 16, and the final
            1280-channel 1x1 conv at stride 32, as in the TF Object Detection
            API's ssdlite_mobilenet_v2).
        head: one of `HEADS`: "ssd" (the paper: extra blocks of a 1x1 and a
            kxk conv with ReLU, 3x3 conv predictors) or "ssdlite" (Sandler et
            al. 2018, section 6.2: the extra blocks' kxk conv and the 3x3
            predictors are depthwise-separable, with batch norm and ReLU6
            after every conv but the final 1x1 predictors).
        vgg_widths: filters of each conv in VGG blocks 1..5 (vgg16 only).
        fc6_filters, fc6_dilation, fc7_filters: the converted fully connected
            layers (fc6 is 3x3 dilated, fc7 is 1x1; vgg16 only).
        batch_norm: batch normalisation after every base and extra conv (not
            in the paper's VGG SSD; `ssd_tiny` uses it to train from scratch
            quickly). MobileNetV2 and the "ssdlite" head always have it, so
            they require True.
        batch_norm_momentum: momentum of those batch norms' moving averages:
            the VGG base and the "ssd" extra blocks, or MobileNetV2 and the
            "ssdlite" layers (Keras' 0.99 by default; `ssd_tiny`'s few hundred
            steps want the faster 0.9; `ssdlite320_mobilenetv2` has
            torchvision's ssdlite320 value, 0.97, where Keras' MobileNetV2
            has 0.999).
        stride4_source: adds a source at stride 4 before the backbone's two,
            for objects too small for a stride-8 default box to reach the
            matching IoU (S3FD, Zhang et al. 2017): the last conv of VGG block
            3 (`conv3_3` in VGG16, side S/4 rounded down), L2-normalised as
            conv4_3 is (vgg16 only). Its entries come first in every
            per-source field; `with_stride4_source` adds it to a config.
            False builds exactly the network without it.
        extra_blocks: extra feature blocks appended after the last backbone source.
        feature_map_sizes: expected side of each source map (checked by
            `build_ssd`).
        steps: pixel stride of the default-box centres on each source.
        min_sizes, max_sizes: default-box scales s_k and s_{k+1} in pixels.
        aspect_ratios: extra ratios r per source; each adds r and 1/r.
        clip_boxes: how default boxes are clipped to the unit square (the paper
            does not clip): False; True or "corners" clips the corner form
            `[ymin, xmin, ymax, xmax]` to [0, 1]; "center" clips in the centre
            form as torchvision's `DefaultBoxGenerator(clip=True)` does: h and
            w are clamped to at most 1, centres are kept, so boxes stay
            centred and may reach past the image.
        pixel_mean_bgr: per-channel mean, BGR order, subtracted from the 0..255
            input by the model's preprocessing layer (default: Caffe/Keras VGG16's
            ImageNet mean; torchvision's SSD300 uses 255 * its RGB `image_mean`).
            vgg16 only: mobilenet_v2 maps 0..255 to [-1, 1] (x / 127.5 - 1),
            as `keras.applications.mobilenet_v2.preprocess_input` does.
        l2norm_scale: initial per-channel scale of the conv4_3 L2Normalization
            (vgg16 only).
        variances: encoding variances for (y, x, h, w).
        match_iou_threshold: IoU at or above which a default box is positive.
        neg_pos_ratio: hard negatives per positive in the loss.
        score_threshold: per-class score below which detections are dropped.
        nms_iou_threshold: IoU of non-maximum suppression.
        pre_nms_top_k: candidates per class kept before NMS.
        max_detections: detections kept per image after NMS.
    """

    name: str = "ssd300_vgg16"
    num_classes: int = 20
    image_size: int = 300
    backbone: str = "vgg16"
    head: str = "ssd"
    vgg_widths: Tuple[Tuple[int, ...], ...] = VGG16_WIDTHS
    fc6_filters: int = 1024
    fc6_dilation: int = 6
    fc7_filters: int = 1024
    batch_norm: bool = False
    batch_norm_momentum: float = 0.99
    stride4_source: bool = False
    extra_blocks: Tuple[ExtraBlock, ...] = (
        ExtraBlock(256, 512, 3, 2, 1),
        ExtraBlock(128, 256, 3, 2, 1),
        ExtraBlock(128, 256, 3, 1, 0),
        ExtraBlock(128, 256, 3, 1, 0),
    )
    feature_map_sizes: Tuple[int, ...] = (38, 19, 10, 5, 3, 1)
    steps: Tuple[float, ...] = (8, 16, 32, 64, 100, 300)
    min_sizes: Tuple[float, ...] = (30, 60, 111, 162, 213, 264)
    max_sizes: Tuple[float, ...] = (60, 111, 162, 213, 264, 315)
    aspect_ratios: Tuple[Tuple[float, ...], ...] = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
    clip_boxes: Union[bool, str] = False
    pixel_mean_bgr: Tuple[float, float, float] = VGG_BGR_MEAN
    l2norm_scale: float = 20.0
    variances: Tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
    match_iou_threshold: float = 0.5
    neg_pos_ratio: float = 3.0
    score_threshold: float = 0.01
    nms_iou_threshold: float = 0.45
    pre_nms_top_k: int = 400
    max_detections: int = 200

    def __post_init__(self):
        # JSON/YAML give lists; store tuples so the config stays hashable.
        object.__setattr__(self, "vgg_widths", tuple(tuple(w) for w in self.vgg_widths))
        object.__setattr__(
            self,
            "extra_blocks",
            tuple(b if isinstance(b, ExtraBlock) else ExtraBlock(**b) for b in self.extra_blocks),
        )
        object.__setattr__(self, "aspect_ratios", tuple(tuple(r) for r in self.aspect_ratios))
        for field in (
            "feature_map_sizes",
            "steps",
            "min_sizes",
            "max_sizes",
            "variances",
            "pixel_mean_bgr",
        ):
            object.__setattr__(self, field, tuple(getattr(self, field)))
        self._validate()

    def _validate(self):
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {self.num_classes!r}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32 px, got {self.image_size!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"Unknown backbone {self.backbone!r}; valid: {tuple(BACKBONES)}")
        if self.head not in HEADS:
            raise ValueError(f"Unknown head {self.head!r}; valid: {tuple(HEADS)}")
        if not self.batch_norm and (self.backbone == "mobilenet_v2" or self.head == "ssdlite"):
            raise ValueError(
                f"backbone {self.backbone!r} with head {self.head!r} is batch-normalised "
                "throughout; batch_norm must be True, got False"
            )
        if self.stride4_source and self.backbone != "vgg16":
            raise ValueError(
                f"stride4_source needs the vgg16 backbone (its block 3 is the stride-4 map); "
                f"backbone {self.backbone!r} has none"
            )
        per_source = {
            "steps": self.steps,
            "min_sizes": self.min_sizes,
            "max_sizes": self.max_sizes,
            "aspect_ratios": self.aspect_ratios,
        }
        n = len(self.feature_map_sizes)
        for field, value in per_source.items():
            if len(value) != n:
                raise ValueError(
                    f"{field} has {len(value)} entries but feature_map_sizes has {n}: {value!r}"
                )
        backbone_sources = 3 if self.stride4_source else 2
        if n != backbone_sources + len(self.extra_blocks):
            raise ValueError(
                f"feature_map_sizes has {n} sources but the network has "
                f"{backbone_sources + len(self.extra_blocks)} ({backbone_sources} from the backbone "
                f"and {len(self.extra_blocks)} extras)"
            )
        for lo, hi in zip(self.min_sizes, self.max_sizes):
            if not 0 < lo <= hi:
                raise ValueError(f"need 0 < min_size <= max_size, got {lo!r} and {hi!r}")
        for ratios in self.aspect_ratios:
            if any(r <= 0 or r == 1 for r in ratios):
                raise ValueError(f"aspect ratios must be positive and not 1, got {ratios!r}")
        if len(self.variances) != 4 or min(self.variances) <= 0:
            raise ValueError(f"variances must be 4 positive numbers, got {self.variances!r}")
        if self.clip_boxes not in CLIP_MODES:
            raise ValueError(f"clip_boxes must be one of {CLIP_MODES!r}, got {self.clip_boxes!r}")
        if len(self.pixel_mean_bgr) != 3:
            raise ValueError(
                f"pixel_mean_bgr must be 3 numbers (B, G, R), got {self.pixel_mean_bgr!r}"
            )

    @property
    def boxes_per_location(self) -> Tuple[int, ...]:
        """Default boxes at each location of each source: 2 + 2 * len(ratios)."""
        return tuple(2 + 2 * len(r) for r in self.aspect_ratios)

    @property
    def boxes_per_source_map(self) -> Tuple[int, ...]:
        """Default boxes of each source map (side^2 x boxes per location), in `default_boxes` order."""
        return tuple(f * f * k for f, k in zip(self.feature_map_sizes, self.boxes_per_location))

    @property
    def num_boxes(self) -> int:
        """Total number of default boxes N."""
        return sum(self.boxes_per_source_map)

    def source_map_sizes(self, image_size: int) -> Tuple[int, ...]:
        """Side of each source map this network gives at `image_size` px.

        The backbone's sources (two, or three with `stride4_source`) follow
        its own rule (`source_map_sides` in `keras_ssd/backbones/`); extra
        block k gives
        `(H + 2 padding - kernel_size) // strides + 1`. (`build_ssd` checks
        `feature_map_sizes` against the built network.)
        """
        sides = list(BACKBONES[self.backbone].source_map_sides(image_size, self.stride4_source))
        for block in self.extra_blocks:
            sides.append((sides[-1] + 2 * block.padding - block.kernel_size) // block.strides + 1)
        return tuple(sides)

    def with_image_size(self, image_size: int) -> "SSDConfig":
        """This config at another input side, default boxes scaled with the image.

        The network is fully convolutional, so its weights fit any size; what
        changes is the box layout: `feature_map_sizes` from `source_map_sizes`,
        `min_sizes` and `max_sizes` keep their fraction of the image side
        (rounded to 0.01 px), `steps` become `image_size / side`. E.g.
        `ssdlite320_mobilenetv2` at 160 px has maps 10, 5, 3, 2, 1, 1 and
        840 default boxes, ~1/4 of the compute per image.

        Raises:
            ValueError: `image_size` is below 32 px or so small that a source
                map would be empty.
        """
        if not isinstance(image_size, int) or image_size < 32:
            raise ValueError(f"image_size must be an int of at least 32 px, got {image_size!r}")
        if image_size == self.image_size:
            return self
        sides = self.source_map_sizes(image_size)
        if min(sides) < 1:
            raise ValueError(
                f"{self.name} at image_size={image_size} would give source maps {sides}; "
                "use a larger image_size"
            )
        scale = image_size / self.image_size
        return dataclasses.replace(
            self,
            image_size=image_size,
            feature_map_sizes=sides,
            steps=tuple(image_size / side for side in sides),
            min_sizes=tuple(round(s * scale, 2) for s in self.min_sizes),
            max_sizes=tuple(round(s * scale, 2) for s in self.max_sizes),
        )

    def with_stride4_source(self) -> "SSDConfig":
        """This config with a stride-4 source added in front of the others.

        The new source's side comes from the backbone (S/4, e.g. 40 at 160 px,
        75 at 300 px), its step is `image_size / side`, its default boxes
        follow SSD's scale chain one step below the first source (min size
        half of today's first, max size today's first) with aspect ratio 2,
        i.e. 4 boxes per location. The other sources are unchanged.

        Raises:
            ValueError: the config has one already, or its backbone has no
                stride-4 map.
        """
        if self.stride4_source:
            raise ValueError(f"{self.name} already has a stride-4 source")
        side = BACKBONES[self.backbone].source_map_sides(self.image_size, True)[0]
        return dataclasses.replace(  # validation rejects a backbone without a stride-4 map
            self,
            stride4_source=True,
            feature_map_sizes=(side,) + self.feature_map_sizes,
            steps=(self.image_size / side,) + self.steps,
            min_sizes=(round(self.min_sizes[0] / 2, 2),) + self.min_sizes,
            max_sizes=(self.min_sizes[0],) + self.max_sizes,
            aspect_ratios=((2,),) + self.aspect_ratios,
        )

    def with_preset_boxes(self) -> Optional["SSDConfig"]:
        """This config with the default boxes of its preset, when they differ from its own.

        A config fitted with `keras_ssd.fit_default_boxes` keeps its preset's
        `name`; this gives what it would have trained without the fit.

        Returns:
            This config with the `BOX_FIELDS` of the preset `name` at
            `image_size`, or None when `name` is no preset, the boxes are the
            preset's, or the preset's source maps do not fit this network.
        """
        if self.name not in PRESETS:
            return None
        preset = SSDConfig.from_preset(self.name, image_size=self.image_size, num_classes=self.num_classes)
        boxes = {field: getattr(preset, field) for field in BOX_FIELDS}
        if all(getattr(self, field) == value for field, value in boxes.items()):
            return None
        try:
            return dataclasses.replace(self, **boxes)
        except ValueError:  # other extra blocks than the preset's
            return None

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "SSDConfig":
        """Returns the preset `name` with `overrides` applied.

        An `image_size` override rescales the preset's box layout as
        `with_image_size` does; box-layout fields given beside it win.

        Raises:
            ValueError: for an unknown preset or an unknown override field;
                the message lists the valid names.
        """
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; valid presets: {sorted(PRESETS)}")
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise ValueError(f"Unknown SSDConfig field(s) {unknown}; valid fields: {sorted(valid)}")
        preset = PRESETS[name]
        if "image_size" in overrides:
            preset = preset.with_image_size(overrides["image_size"])
        return dataclasses.replace(preset, **overrides)

    def to_dict(self) -> dict:
        """Plain-Python (JSON-serialisable) form; `SSDConfig(**d)` rebuilds it."""
        return dataclasses.asdict(self)


def _box_layout(size, maps, scales):
    """`SSDConfig` box fields for source map sides `maps` at input `size` px.

    `scales` are the fractions s_1 .. s_{m+1} of the image side: source k gets
    min size s_k and max size s_{k+1} (pixels, rounded to 0.01) and the
    stride `size / maps[k]`.
    """
    sizes = [round(s * size, 2) for s in scales]
    return {
        "feature_map_sizes": tuple(maps),
        "steps": tuple(size / f for f in maps),
        "min_sizes": tuple(sizes[:-1]),
        "max_sizes": tuple(sizes[1:]),
    }


def _tiny_preset() -> SSDConfig:
    """SSD's design at 160 px: VGG-style 3x3 convs and max-pools (ceil pool3),
    L2-normalised stride-8 source, dilated fc6 and 1x1 fc7, three extra blocks,
    the same box rules. Early blocks have one conv and few filters (0.2 GMACs)
    so it trains on 2 CPU cores in minutes; batch normalisation after each conv
    lets it train from scratch at a high learning rate. Its scales start at 0.06 of the
    image side (COCO-style, as torchvision's SSD300 uses 0.07) rather than the
    paper's 0.1, because small objects are common in the "shapes" data."""
    size = 160
    maps = (20, 10, 5, 3, 1)
    scales = (0.06, 0.15, 0.33, 0.54, 0.75, 0.96)
    return SSDConfig(
        name="ssd_tiny",
        image_size=size,
        vgg_widths=((16,), (32,), (64,), (96, 96), (128, 128)),
        fc6_filters=192,
        fc6_dilation=3,
        fc7_filters=192,
        batch_norm=True,
        batch_norm_momentum=0.9,
        extra_blocks=(
            ExtraBlock(64, 128, 3, 2, 1),
            ExtraBlock(64, 128, 3, 2, 1),
            ExtraBlock(64, 128, 3, 1, 0),
        ),
        aspect_ratios=((2,), (2, 3), (2, 3), (2,), (2,)),
        **_box_layout(size, maps, scales),
    )


def _ssdlite_preset() -> SSDConfig:
    """SSDLite on MobileNetV2 at 320 px (Sandler et al. 2018, section 6.2; the TF
    Object Detection API's ssdlite_mobilenet_v2 and torchvision's ssdlite320 are
    the references).

    Sources (side at 320 px, channels): block 13's expansion output (20, 576,
    stride 16), MobileNetV2's final 1x1 conv (10, 1280, stride 32), then four
    extra blocks of a 1x1 bottleneck to half the depth, a 3x3 stride-2
    depthwise conv (1 px zero padding) and a 1x1 conv to 512, 256, 256, 128:
    sides 5, 3, 2, 1 (ceil halving). Map sizes 20, 10, 5, 3, 2, 1.

    Default boxes: 6 per location on every source (ratios 1, 2, 1/2, 3, 1/3
    and the extra sqrt(s_k s_{k+1}) box, as torchvision's ssdlite320), i.e.
    6 * (400 + 100 + 25 + 9 + 4 + 1) = 3234 boxes. Scales s_k = 0.1, 0.2,
    0.35, 0.5, 0.65, 0.8 and s_{k+1} of the last = 0.95: the TF OD API's
    linear 0.2..0.95 shifted down one source, its lowest-layer 0.1 box made a
    full source, so objects down to ~30 px have a matching box (min sizes 32,
    64, 112, 160, 208, 256 px; max sizes 64, 112, 160, 208, 256, 304 px).
    Steps 320 / side: 16, 32, 64, 106.67, 160, 320.

    Parameters at 20 classes: 3,449,860 = MobileNetV2 without its top
    2,257,984 + extras 661,568 + predictors 530,308 (derived layer by layer
    in tests/test_ssdlite.py); 0.713 GMACs per image (611.2 M in MobileNetV2).
    """
    size = 320
    maps = (20, 10, 5, 3, 2, 1)
    scales = (0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95)
    return SSDConfig(
        name="ssdlite320_mobilenetv2",
        image_size=size,
        backbone="mobilenet_v2",
        head="ssdlite",
        batch_norm=True,
        batch_norm_momentum=0.97,
        extra_blocks=(
            ExtraBlock(256, 512, 3, 2, 1),
            ExtraBlock(128, 256, 3, 2, 1),
            ExtraBlock(128, 256, 3, 2, 1),
            ExtraBlock(64, 128, 3, 2, 1),
        ),
        aspect_ratios=((2, 3),) * len(maps),
        **_box_layout(size, maps, scales),
    )


PRESETS = {
    "ssd300_vgg16": SSDConfig(),
    "ssd512_vgg16": SSDConfig(
        name="ssd512_vgg16",
        image_size=512,
        extra_blocks=(
            ExtraBlock(256, 512, 3, 2, 1),
            ExtraBlock(128, 256, 3, 2, 1),
            ExtraBlock(128, 256, 3, 2, 1),
            ExtraBlock(128, 256, 3, 2, 1),
            ExtraBlock(128, 256, 4, 1, 1),
        ),
        feature_map_sizes=(64, 32, 16, 8, 4, 2, 1),
        steps=(8, 16, 32, 64, 128, 256, 512),
        min_sizes=(35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8),
        max_sizes=(76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6),
        aspect_ratios=((2,), (2, 3), (2, 3), (2, 3), (2, 3), (2,), (2,)),
    ),
    "ssd_tiny": _tiny_preset(),
    "ssdlite320_mobilenetv2": _ssdlite_preset(),
}
