"""Default boxes fitted to a dataset's objects: scales, aspect ratios and, where
it pays, a stride-4 source.

SSD's tiling rule (paper section 2.2) leaves two things per source map to the
designer: the scale chain s_1 < ... < s_{m+1} (source k has min size s_k and
max size s_{k+1}) and the aspect ratios. The presets set them for PASCAL VOC
and COCO; on other data many objects can end with no default box at IoU >=
`match_iou_threshold`, and then they train one positive at most, regressed
from a box they barely overlap (`keras_ssd.evaluation.coverage`). This module
chooses both from the training boxes, scored with SSD's own rule on the tiled
boxes (centres and strides included):

1. the share of objects with a default box at IoU >= the matching threshold,
2. then the mean best IoU.

The search is a seeded coordinate descent over the log scales (kept in
increasing order) and over each source's ratio set (same number of ratios,
so the heads keep their boxes per location), from the preset and from a few
seeded perturbations of it. A box's best IoU over a source is found at the
grid centre nearest the object's centre on each axis (the overlap of two
boxes of fixed shapes shrinks with each axis' centre distance), so one
evaluation costs O(objects x boxes per location), not O(objects x N).

With `stride4="auto"` the same fit runs with a stride-4 source added
(`SSDConfig.with_stride4_source`, S3FD's remedy for small objects) and is
chosen when it matches at least `STRIDE4_GAIN` more of the objects. The
preset is kept when no fit is better.

    boxes = keras_ssd.training_boxes(examples, cfg, recipe.augment)
    fit = keras_ssd.fit_default_boxes(boxes, cfg)
    print(fit.describe())
    model = keras_ssd.build_ssd(fit.config)
"""

import dataclasses
import itertools
import math
import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from keras_ssd.config import SSDConfig
from keras_ssd.data.augment import AugmentOptions, augment_boxes, image_aspect
from keras_ssd.evaluation.coverage import default_box_coverage
from keras_ssd.layers.default_boxes import location_shapes

# Candidate aspect ratios r (each gives an r and a 1/r box).
RATIO_CHOICES = (1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
# `stride4="auto"` adds the stride-4 source when it matches at least this share
# more of the objects than the fit without it.
STRIDE4_GAIN = 0.05
# Scale factors tried per scale and pass of the coordinate descent.
_FACTORS = (np.exp(np.linspace(-np.log(2.0), np.log(2.0), 13)),
            np.exp(np.linspace(-np.log(1.25), np.log(1.25), 9)),
            np.exp(np.linspace(-np.log(1.06), np.log(1.06), 7)))
# Neighbouring scales differ by at least this factor.
_MIN_SCALE_GAP = 1.05
# Objects on which positives per object are counted against every default box.
_POSITIVES_SAMPLE = 1000


class Candidate(NamedTuple):
    """A box layout and how well it fits the objects.

    Attributes:
        config: the `SSDConfig`.
        matched_share: share of the objects with a default box at IoU >=
            `config.match_iou_threshold`.
        mean_best_iou: mean over the objects of their best IoU.
        mean_positives: default boxes at IoU >= the threshold per object (on a
            seeded sample of at most 1000 objects).
        gmacs: multiply-accumulates per image of the network, in billions.
    """

    config: SSDConfig
    matched_share: float
    mean_best_iou: float
    mean_positives: float
    gmacs: float

    def describe(self) -> str:
        """E.g. "72.4% matched (mean best IoU 0.58, 3.1 positives per object; 2390 boxes, 0.20 GMACs)"."""
        return (f"{self.matched_share:.1%} matched (mean best IoU {self.mean_best_iou:.2f}, "
                f"{self.mean_positives:.1f} positives per object; {self.config.num_boxes} boxes, "
                f"{self.gmacs:.2f} GMACs)")


@dataclasses.dataclass(frozen=True)
class BoxFit:
    """The result of `fit_default_boxes`.

    Attributes:
        preset: the config it started from, measured.
        fitted: the fit on the preset's source maps.
        stride4: the fit with a stride-4 source added (None when not tried).
        chosen: the one to train: `preset` when no fit is better.
        num_objects: objects the fit measured.
        seconds: wall time of the fit.
    """

    preset: Candidate
    fitted: Candidate
    stride4: Candidate | None
    chosen: Candidate
    num_objects: int
    seconds: float

    @property
    def config(self) -> SSDConfig:
        """The chosen `SSDConfig`."""
        return self.chosen.config

    @property
    def choice(self) -> str:
        """Which candidate was chosen: "preset", "fitted" or "stride4"."""
        if self.chosen is self.preset:
            return "preset"
        return "stride4" if self.chosen is self.stride4 else "fitted"

    def summary(self) -> str:
        """One line: the preset's share of matched objects and the chosen boxes'."""
        threshold = self.preset.config.match_iou_threshold
        line = (f"default boxes: the preset covers {self.preset.matched_share:.1%} of {self.num_objects} "
                f"training objects at IoU >= {threshold:g}; ")
        if self.choice == "preset":
            best = max((c for c in (self.fitted, self.stride4) if c is not None), key=lambda c: c.matched_share)
            return line + f"kept (the best fit covers {best.matched_share:.1%})"
        added = ", a stride-4 source added" if self.choice == "stride4" else ""
        return line + f"fitted: {self.chosen.matched_share:.1%} ({layout(self.chosen.config)}{added})"

    def describe(self) -> str:
        """A few lines for logs: each candidate, what was chosen and why."""
        threshold = self.preset.config.match_iou_threshold
        lines = [f"default boxes, {self.num_objects} training objects at IoU >= {threshold:g} "
                 f"(fitted in {self.seconds:.1f} s):",
                 f"  preset:              {self.preset.describe()}",
                 f"  fitted:              {self.fitted.describe()}; {layout(self.fitted.config)}"]
        if self.stride4 is not None:
            lines.append(f"  fitted + stride 4:   {self.stride4.describe()}; {layout(self.stride4.config)}")
        if self.choice == "preset":
            lines.append("  chosen: the preset's (no fit matches more objects)")
        elif self.choice == "stride4":
            lines.append("  chosen: fitted with a stride-4 source")
        else:
            lines.append("  chosen: fitted" + (" (the stride-4 source gains too little)" if self.stride4 else ""))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-serialisable form, for a run's metrics."""
        def candidate(c):
            return None if c is None else {
                "matched_share": c.matched_share, "mean_best_iou": c.mean_best_iou,
                "mean_positives": c.mean_positives, "gmacs": c.gmacs, "num_boxes": c.config.num_boxes,
                "stride4_source": c.config.stride4_source, "min_sizes": list(c.config.min_sizes),
                "max_sizes": list(c.config.max_sizes),
                "aspect_ratios": [list(r) for r in c.config.aspect_ratios]}
        return {"num_objects": self.num_objects, "seconds": self.seconds, "chosen": self.choice,
                "preset": candidate(self.preset), "fitted": candidate(self.fitted),
                "stride4": candidate(self.stride4)}


def layout(cfg: SSDConfig) -> str:
    """The box fields of `cfg` in one line: scales in px and ratios per source."""
    scales = ", ".join(f"{s:g}" for s in (*cfg.min_sizes, cfg.max_sizes[-1]))
    ratios = " ".join("/".join(f"{r:g}" for r in rs) for rs in cfg.aspect_ratios)
    return f"scales {scales} px, ratios {ratios}"


class _GridScorer:
    """Best IoU of each object with the default boxes of one source, at the
    grid centre nearest the object's centre (exact for unclipped boxes)."""

    def __init__(self, boxes, cfg):
        boxes = np.asarray(boxes, np.float64)
        self.y0, self.x0, self.y1, self.x1 = (boxes[:, i : i + 1] for i in range(4))
        self.area = (self.y1 - self.y0) * (self.x1 - self.x0)
        self.cy, self.cx = (self.y0 + self.y1) / 2, (self.x0 + self.x1) / 2
        self.cfg = cfg

    def _axis(self, centre, side, step):
        """Nearest grid centre to each object centre, `[M, 1]`."""
        index = np.clip(np.floor(centre / step), 0, side - 1)
        return (index + 0.5) * step

    def source(self, k, min_size, max_size, ratios) -> np.ndarray:
        """float64 `[M]`: best IoU over source k's boxes with these sizes and ratios."""
        cfg = self.cfg
        side, step = cfg.feature_map_sizes[k], cfg.steps[k] / cfg.image_size
        shapes = location_shapes(min_size, max_size, ratios, cfg.image_size)
        h, w = shapes[None, :, 0], shapes[None, :, 1]
        if cfg.clip_boxes == "center":
            h, w = np.minimum(h, 1.0), np.minimum(w, 1.0)
        cy, cx = self._axis(self.cy, side, step), self._axis(self.cx, side, step)
        by0, by1, bx0, bx1 = cy - h / 2, cy + h / 2, cx - w / 2, cx + w / 2
        if cfg.clip_boxes is True or cfg.clip_boxes == "corners":
            by0, by1, bx0, bx1 = (np.clip(v, 0.0, 1.0) for v in (by0, by1, bx0, bx1))
        inter = (np.clip(np.minimum(self.y1, by1) - np.maximum(self.y0, by0), 0, None)
                 * np.clip(np.minimum(self.x1, bx1) - np.maximum(self.x0, bx0), 0, None))
        union = self.area + (by1 - by0) * (bx1 - bx0) - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        return iou.max(axis=1)

    def best(self) -> np.ndarray:
        """float64 `[M]`: best IoU over every source with the config's own boxes."""
        cfg = self.cfg
        return np.max([self.source(k, cfg.min_sizes[k], cfg.max_sizes[k], cfg.aspect_ratios[k])
                       for k in range(len(cfg.feature_map_sizes))], axis=0)


class _Search:
    """Coordinate descent over one config's scale chain and ratio sets."""

    def __init__(self, boxes, cfg, ratio_choices):
        self.scorer = _GridScorer(boxes, cfg)
        self.threshold = cfg.match_iou_threshold
        self.ratio_choices = tuple(sorted(set(float(r) for r in ratio_choices)))
        self.size = cfg.image_size

    def _best_per_source(self, scales, ratios):
        return np.stack([self.scorer.source(k, scales[k], scales[k + 1], ratios[k]) for k in range(len(ratios))])

    def _score(self, per_source):
        best = per_source.max(axis=0)
        # Matched objects first; the mean best IoU (< 1) only breaks ties.
        return int(np.sum(best >= self.threshold)) + float(np.mean(best))

    def run(self, scales, ratios):
        """Returns `(score, scales, ratios)` after descending from the given start."""
        scales, ratios = list(scales), list(ratios)
        per_source = self._best_per_source(scales, ratios)
        score = self._score(per_source)
        for factors in _FACTORS:
            for j in range(len(scales)):
                score = self._descend_scale(j, factors, scales, ratios, per_source, score)
            for k in range(len(ratios)):
                score = self._descend_ratios(k, scales, ratios, per_source, score)
        return score, scales, ratios

    def _descend_scale(self, j, factors, scales, ratios, per_source, score):
        """Moves scale j (the min size of source j, max size of source j - 1) to its best value."""
        low = scales[j - 1] * _MIN_SCALE_GAP if j > 0 else 1.0
        high = scales[j + 1] / _MIN_SCALE_GAP if j + 1 < len(scales) else 1.5 * self.size
        sources = [k for k in (j - 1, j) if 0 <= k < len(ratios)]
        best = (score, scales[j], per_source[sources].copy())
        for value in scales[j] * factors:
            if not low <= value <= high or value == scales[j]:
                continue
            trial = scales[:j] + [value] + scales[j + 1 :]
            for k in sources:
                per_source[k] = self.scorer.source(k, trial[k], trial[k + 1], ratios[k])
            trial_score = self._score(per_source)
            if trial_score > best[0]:
                best = (trial_score, value, per_source[sources].copy())
        scales[j] = best[1]
        per_source[sources] = best[2]
        return best[0]

    def _descend_ratios(self, k, scales, ratios, per_source, score):
        """Gives source k its best ratio set of the same size."""
        best = (score, ratios[k], per_source[k].copy())
        for choice in itertools.combinations(self.ratio_choices, len(ratios[k])):
            per_source[k] = self.scorer.source(k, scales[k], scales[k + 1], choice)
            trial_score = self._score(per_source)
            if trial_score > best[0]:
                best = (trial_score, choice, per_source[k].copy())
        ratios[k] = tuple(best[1])
        per_source[k] = best[2]
        return best[0]


def _fit_one(boxes, cfg, ratio_choices, starts, rng):
    """The best config with `cfg`'s sources: a descent from `cfg` and from `starts - 1` perturbations."""
    search = _Search(boxes, cfg, ratio_choices)
    preset_scales = [*cfg.min_sizes, cfg.max_sizes[-1]]
    best = None
    for start in range(starts):
        scales = preset_scales
        if start:  # a seeded jitter of the preset's chain, kept increasing
            jittered = sorted(s * math.exp(rng.uniform(-0.4, 0.4)) for s in preset_scales)
            scales = jittered[:1]
            for s in jittered[1:]:
                scales.append(max(s, scales[-1] * _MIN_SCALE_GAP))
        found = search.run(scales, cfg.aspect_ratios)
        if best is None or found[0] > best[0]:
            best = found
    _, scales, ratios = best
    return dataclasses.replace(
        cfg,
        min_sizes=tuple(round(float(s), 2) for s in scales[:-1]),
        max_sizes=tuple(round(float(s), 2) for s in scales[1:]),
        aspect_ratios=tuple(tuple(float(x) for x in r) for r in ratios),
    )


def _with_ratio_counts(cfg, counts, choices):
    """`cfg` with `counts[k]` ratios on source k: its own first, then the choices nearest 2."""
    counts = tuple(counts)
    if len(counts) != len(cfg.aspect_ratios) or not all(0 <= n <= len(choices) for n in counts):
        raise ValueError(f"ratio_counts must give 0 to {len(choices)} ratios for each of the "
                         f"{len(cfg.aspect_ratios)} sources, got {counts!r}")
    nearest_two = sorted(choices, key=lambda r: abs(math.log(r / 2.0)))
    ratios = []
    for own, n in zip(cfg.aspect_ratios, counts):
        ratios.append(tuple(sorted(([*own] + [r for r in nearest_two if r not in own])[:n])))
    return dataclasses.replace(cfg, aspect_ratios=tuple(ratios))


def _gmacs(cfg, known) -> float:
    """GMACs per image of `cfg`'s network; `known` keeps them per network shape (box sizes do not change it)."""
    from keras_ssd.model import build_ssd  # the network, only for its GMACs
    from keras_ssd.model_stats import count_macs

    shape = (cfg.stride4_source, cfg.boxes_per_location)
    if shape not in known:
        known[shape] = count_macs(build_ssd(cfg)) / 1e9
    return known[shape]


def _measure(boxes, sample, cfg, known_gmacs) -> Candidate:
    best = _GridScorer(boxes, cfg).best()
    return Candidate(
        cfg,
        float(np.mean(best >= cfg.match_iou_threshold)),
        float(np.mean(best)),
        default_box_coverage(sample, cfg).mean_positives,
        _gmacs(cfg, known_gmacs),
    )


def _better(a: Candidate, b: Candidate) -> bool:
    return (a.matched_share, a.mean_best_iou) > (b.matched_share, b.mean_best_iou)


def fit_default_boxes(
    boxes,
    cfg: SSDConfig,
    *,
    stride4="auto",
    ratio_choices=RATIO_CHOICES,
    ratio_counts=None,
    starts: int = 3,
    seed: int = 0,
    max_objects: int = 20000,
) -> BoxFit:
    """Fits the default boxes of `cfg` to a dataset's objects.

    Args:
        boxes: float `[M, 4]`, the training objects as the matcher sees them,
            normalised `[ymin, xmin, ymax, xmax]` (`training_boxes` gives
            them after the recipe's augmentation).
        cfg: the `SSDConfig` to start from (its sources, boxes per location
            and matching threshold are kept).
        stride4: "auto" (add a stride-4 source when it matches at least
            `STRIDE4_GAIN` more of the objects), True (always, when the
            backbone has one) or False (never).
        ratio_choices: the aspect ratios a source may take.
        ratio_counts: how many ratios each source of `cfg` takes (each adds
            two boxes per location); None keeps `cfg`'s, so the heads keep
            their boxes per location. Other counts change the heads' shapes:
            for heads that train from scratch. A stride-4 source takes one.
        starts: descents per layout: from `cfg`'s scales, then from seeded
            perturbations of them.
        seed: seeds the perturbations and the object samples; the same seed
            and boxes give the same fit.
        max_objects: at most this many objects (a seeded sample) are fitted.

    Returns:
        A `BoxFit`; `.config` is the config to train.

    Raises:
        ValueError: `boxes` is not `[M, 4]` with M >= 1, `stride4` is not one
            of "auto", True, False, or True for a backbone without a stride-4
            map, or `ratio_counts` has another length than `cfg`'s sources or
            a count outside 0 .. len(ratio_choices).
    """
    start_time = time.time()
    boxes = np.asarray(boxes, np.float64)
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or not len(boxes):
        raise ValueError(f"boxes must be [M, 4] normalised [ymin, xmin, ymax, xmax] with M >= 1; "
                         f"got shape {boxes.shape}")
    if stride4 not in ("auto", True, False):
        raise ValueError(f"stride4 must be 'auto', True or False, got {stride4!r}")
    start = cfg if ratio_counts is None else _with_ratio_counts(cfg, ratio_counts, ratio_choices)
    rng = np.random.default_rng(seed)
    if len(boxes) > max_objects:
        boxes = boxes[np.sort(rng.choice(len(boxes), max_objects, replace=False))]
    sample = boxes[np.sort(rng.choice(len(boxes), min(len(boxes), _POSITIVES_SAMPLE), replace=False))]
    known_gmacs = {}
    preset = _measure(boxes, sample, cfg, known_gmacs)
    fitted = _measure(boxes, sample, _fit_one(boxes, start, ratio_choices, starts, rng), known_gmacs)
    with_stride4 = None
    if stride4 is True or (stride4 == "auto" and cfg.backbone == "vgg16" and not cfg.stride4_source):
        with_stride4 = _measure(boxes, sample, _fit_one(boxes, start.with_stride4_source(), ratio_choices, starts, rng),
                                known_gmacs)
    chosen = fitted
    if with_stride4 is not None and (stride4 is True or with_stride4.matched_share >= fitted.matched_share + STRIDE4_GAIN):
        chosen = with_stride4
    if not _better(chosen, preset):
        chosen = preset
    return BoxFit(preset, fitted, with_stride4, chosen, len(boxes), time.time() - start_time)


def training_boxes(examples, cfg: SSDConfig, augment=AugmentOptions(), *, seed: int = 0,
                   max_examples: int | None = None, progress_every: int | None = None) -> np.ndarray:
    """The objects of a dataset as the matcher sees them in training.

    One pass over `examples` through the recipe's geometric augmentation
    (`keras_ssd.data.augment.augment_boxes`: zoom-out, crop, flip; objects
    dropped as training drops them), which changes object sizes.

    Args:
        examples: a `tf.data.Dataset` of example dicts from `keras_ssd.data.load`
            (`"image"` `[H, W, 3]` for its aspect, `"boxes"` `[M, 4]`
            normalised `[ymin, xmin, ymax, xmax]`).
        cfg: the `SSDConfig` trained (its `image_size`).
        augment: the recipe's `AugmentOptions`, or False for the boxes as annotated.
        seed: seeds the augmentation.
        max_examples: read at most this many examples (None: all).
        progress_every: print a line every this many examples (None: quiet).

    Returns:
        float32 `[M_total, 4]`, normalised `[ymin, xmin, ymax, xmax]`.
    """
    if max_examples is not None:
        examples = examples.take(max_examples)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    size = int(cfg.image_size)

    @tf.autograph.experimental.do_not_convert
    def geometry(example, pair):
        boxes = tf.reshape(tf.cast(example["boxes"], tf.float32), [-1, 4])
        if augment is False:
            return boxes
        return augment_boxes(boxes, image_aspect(example["image"]), size, pair, augment)

    mapped = tf.data.Dataset.zip((examples, seeds)).map(geometry, num_parallel_calls=tf.data.AUTOTUNE)
    found = [np.zeros((0, 4), np.float32)]
    for count, boxes in enumerate(mapped, start=1):
        found.append(boxes.numpy())
        if progress_every and count % progress_every == 0:
            print(f"  {count} examples read for the default-box fit")
    return np.concatenate(found)
