"""The detection report's figures, one builder per figure, from plain arrays.

Every builder returns a `matplotlib.figure.Figure` on Matplotlib's Agg canvas,
made without `pyplot`: no global figure registry and no GUI backend, so it works
in scripts, servers and notebooks alike (`fig.savefig(...)`; the quickstart
notebook shows them by saving to JPEG bytes: with the inline backend set to JPEG,
`display(fig)` of such a figure showed only its text form). Boxes are
normalised `[ymin, xmin, ymax, xmax]`.
"""

import textwrap

import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from keras_ssd.run_log import number_ranges

# Past this many classes, legends and the confusion matrix's numbers would hide the plots.
MAX_LABELLED_CLASSES = 25
# Ground truth and detections differ in line style as well as in colour.
GROUND_TRUTH_STYLE = {
    "edgecolor": "lime", "linestyle": "-", "linewidth": 2.0,
    "path_effects": [patheffects.withStroke(linewidth=3.5, foreground="black")],
}
DETECTION_STYLE = {"linestyle": "--", "linewidth": 1.5}


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _class_colour(index: int):
    """The colour of object class `index` in every figure (tab10, cycled)."""
    return matplotlib.colormaps["tab10"](index % 10)


def training_curves(log: dict, notes=()) -> Figure:
    """Loss, validation mAP and learning rate per epoch, and a note on what the log lacks.

    Args:
        log: `{column: float [E]}`, e.g. `keras_ssd.run_log.read_log(...).columns`
            (`epoch` 0-based; without it, the rows are epochs 0, 1, ...); NaN
            where an epoch has no value. Drawn when present: every column
            ending in `loss` (the total `loss`, and any separately logged
            terms), `val_mAP`, `learning_rate`; each through its finite values
            only, so `val_mAP` joins the evaluated epochs.
        notes: sentences on what could not be read (`RunLog.notes`), printed
            under the panels with the quantities that have no value and the
            epochs whose loss or learning rate is missing, NaN or infinite.

    Returns:
        One panel per quantity with a value (one empty panel when none has).
    """
    length = len(next(iter(log.values()))) if log else 0
    epochs = (np.asarray(log["epoch"]) if "epoch" in log else np.arange(length)) + 1
    panels = [
        ("loss", [name for name in log if name.endswith("loss")]),
        ("validation mAP", [name for name in log if name == "val_mAP"]),
        ("learning rate", [name for name in log if name == "learning_rate"]),
    ]
    missing = list(notes)
    drawn = []
    for title, columns in panels:
        finite = {column: np.isfinite(np.asarray(log[column], np.float64)) for column in columns}
        if not any(mask.any() for mask in finite.values()):
            why = " (no epoch was evaluated)" if title == "validation mAP" else ""
            missing.append(f"no {title} in the log{why}")
            continue
        if title != "validation mAP":  # val_mAP is missing by design between evaluations
            missing += [f"{column} missing, NaN or infinite at epoch(s) {number_ranges(epochs[~mask].astype(int))}"
                        for column, mask in finite.items() if mask.any() and not mask.all()]
        drawn.append((title, finite))
    width = 4.2 * max(1, len(drawn))
    # The note under the panels, wrapped at ~14 small characters per inch.
    note = "\n".join(textwrap.fill(text, int(14 * width), break_on_hyphens=False) for text in missing)
    figure = _figure(width, 3.2 + 0.2 * (note.count("\n") + 1 if note else 0))
    all_axes = figure.subplots(1, max(1, len(drawn)), squeeze=False)[0]
    for axes, (title, finite) in zip(all_axes, drawn):
        for column, mask in finite.items():
            axes.plot(epochs[mask], np.asarray(log[column])[mask], marker="o", markersize=3, label=column)
        # Every panel spans all epochs (one evaluated epoch still gets whole-number ticks).
        axes.set(title=title, xlabel="epoch", xlim=(np.nanmin(epochs) - 0.5, np.nanmax(epochs) + 0.5))
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axes.grid(alpha=0.3)
        if len(finite) > 1:
            axes.legend()
    if not drawn:
        all_axes[0].set_axis_off()
    if note:
        figure.supxlabel(note, fontsize="small", ha="left", x=0.01)
    return figure


def precision_recall_curves(curves, names, metric: str) -> Figure:
    """Each class's precision-recall curve and the interpolated curve its AP integrates.

    Args:
        curves: `PrecisionRecallCurve` per class.
        names: class names, same order.
        metric: `"voc07"` (the 11 interpolated points are drawn) or `"voc12"`
            (the monotone envelope, a step curve, is drawn).
    """
    figure = _figure(6.0, 5.0)
    axes = figure.subplots()
    for index, (name, curve) in enumerate(zip(names, curves)):
        if not curve.num_positives:
            continue
        colour = _class_colour(index)
        axes.plot(curve.recall, curve.precision, color=colour, alpha=0.35, linewidth=1)
        points, values = curve.interpolated(metric)
        label = f"{name}  AP {curve.average_precision(metric):.3f}"
        if metric == "voc07":
            axes.plot(points, values, "o-", color=colour, markersize=4, label=label)
        else:
            axes.step(np.r_[0.0, points], np.r_[values[:1], values], where="pre", color=colour, label=label)
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.02),
             title=f"precision-recall ({metric}; faint: raw, bold: interpolated)")
    axes.grid(alpha=0.3)
    if len(curves) <= MAX_LABELLED_CLASSES:
        axes.legend(loc="lower left", fontsize=8)
    return figure


def f1_curves(curves, names, score_threshold: float) -> Figure:
    """F1 against the score threshold per class, its best point marked.

    Args:
        curves: `PrecisionRecallCurve` per class.
        names: class names, same order.
        score_threshold: the report's stated threshold, drawn as a line.
    """
    figure = _figure(6.0, 4.0)
    axes = figure.subplots()
    for index, (name, curve) in enumerate(zip(names, curves)):
        if not curve.num_positives:
            continue
        thresholds, f1 = curve.f1_curve()
        best = curve.best_f1()
        axes.plot(thresholds, f1, color=_class_colour(index),
                  label=f"{name}  F1 {best.f1:.3f} at {best.threshold:.2f}")
        axes.plot([best.threshold], [best.f1], "o", color=_class_colour(index))
    axes.axvline(score_threshold, color="grey", linestyle=":", label=f"report threshold {score_threshold:g}")
    axes.set(xlabel="score threshold", ylabel="F1", xlim=(0, 1), ylim=(0, 1.02), title="F1 against score threshold")
    axes.grid(alpha=0.3)
    if len(curves) <= MAX_LABELLED_CLASSES:
        axes.legend(loc="lower left", fontsize=8)
    return figure


def confusion_matrix(matrix, names, score_threshold: float, normalised: bool = False) -> Figure:
    """The detection confusion matrix as a heat map with its numbers.

    Args:
        matrix: int `[C + 1, C + 1]` from `DetectionAnalysis.confusion_matrix`.
        names: the C class names.
        score_threshold: the threshold it was counted at (in the title).
        normalised: divide each row by its sum (rows that sum to 0 stay 0).
    """
    matrix = np.asarray(matrix, np.float64)
    labels = [*map(str, names), "background"]
    totals = matrix.sum(axis=1, keepdims=True)
    shown = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0) if normalised else matrix
    side = min(2.0 + 0.6 * len(labels), 20.0)
    figure = _figure(side + 1.0, side)
    axes = figure.subplots()
    image = axes.imshow(shown, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, shrink=0.8)
    peak = shown.max()
    if len(names) <= MAX_LABELLED_CLASSES:
        for (row, column), value in np.ndenumerate(shown):
            text = f"{value:.2f}" if normalised else f"{int(value)}"
            axes.text(column, row, text, ha="center", va="center", fontsize=8,
                      color="white" if peak and value > peak / 2 else "black")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set(xlabel="detected class (background: missed)", ylabel="true class (background: false positives)",
             title=f"confusion at score >= {score_threshold:g}" + (", row-normalised" if normalised else ""))
    return figure


def coverage(coverage_result, preset=None) -> Figure:
    """Best default-box IoU against object size, and the unmatchable share per size range.

    Args:
        coverage_result: a `keras_ssd.evaluation.coverage.Coverage`.
        preset: the `Coverage` of the same objects by the preset's default
            boxes (fitted boxes), drawn beside it per size range; or None.
    """
    figure = _figure(11.0, 4.2)
    scatter_axes, bar_axes = figure.subplots(1, 2)
    sizes = np.maximum(coverage_result.sizes, 1e-3)
    for source in np.unique(coverage_result.source):
        chosen = coverage_result.source == source
        scatter_axes.scatter(sizes[chosen], coverage_result.best_iou[chosen], s=8, alpha=0.6,
                             color=matplotlib.colormaps["viridis"](source / max(1, coverage_result.source.max())),
                             label=f"source map {source}")
    scatter_axes.axhline(coverage_result.threshold, color="red", linestyle="--",
                         label=f"matching threshold {coverage_result.threshold:g}")
    for scale in coverage_result.scales:
        scatter_axes.axvline(scale, color="grey", linestyle=":", linewidth=0.8)
    scatter_axes.set(xscale="log", xlabel="object size sqrt(h w), input px (dotted: default-box min sizes)",
                     ylabel="best IoU with a default box", ylim=(0, 1),
                     title=f"default-box coverage: {coverage_result.share_unmatchable:.1%} below the threshold")
    scatter_axes.legend(fontsize=7, loc="lower right")
    bins = coverage_result.by_size()
    labels = [f"{low:.0f}-{high:.0f}" if np.isfinite(high) else f">={low:.0f}" for low, high, *_ in bins]
    sets = [("this model" if preset is not None else None, bins, "tab:red")]
    if preset is not None:
        sets.append((f"preset's boxes ({preset.share_unmatchable:.1%} in all)", preset.by_size(coverage_result.scales),
                     "tab:grey"))
    width = 0.8 / len(sets)
    for index, (label, counts, colour) in enumerate(sets):
        shares = [0.0 if np.isnan(b.share) else b.share for b in counts]
        positions = np.arange(len(counts)) + (index - (len(sets) - 1) / 2) * width
        bars = bar_axes.bar(positions, shares, width, color=colour, label=label)
        for bar, b in zip(bars, counts):
            bar_axes.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{b.unmatchable}/{b.count}",
                          ha="center", va="bottom", fontsize=7 if preset is not None else 8)
    if preset is not None:
        bar_axes.legend(fontsize=7, loc="upper right")
    bar_axes.set_xticks(range(len(bins)), labels)
    bar_axes.set(xlabel="object size, input px", ylabel="share below the matching threshold", ylim=(0, 1.1),
                 title="unmatchable objects by size")
    return figure


def example_images(examples, names, score_threshold: float, columns: int = 3, max_detections: int = 30) -> Figure:
    """A grid of images with their ground truth and detections drawn.

    Args:
        examples: list of `(title, image, detections, ground_truth)`: image
            uint8 `[H, W, 3]`, detections an `ImageDetections` (only those
            scored >= `score_threshold` are drawn), ground truth an
            `ImageGroundTruth`.
        names: class names, for the detection labels.
        score_threshold: lowest detection score drawn.
        columns: images per row.
        max_detections: the most detections drawn on one image (the
            highest-scored; the title says how many more passed the threshold).
    """
    rows = max(1, -(-len(examples) // columns))
    figure = _figure(3.6 * columns, 3.8 * rows + 0.4)
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.flat:
        axes.set_axis_off()
    for axes, (title, image, dets, gt) in zip(grid.flat, examples):
        height, width = image.shape[:2]
        scale = np.array([height, width, height, width])
        axes.imshow(image)
        for box in gt.boxes * scale:
            axes.add_patch(Rectangle((box[1], box[0]), box[3] - box[1], box[2] - box[0], fill=False,
                                     **GROUND_TRUTH_STYLE))
        shown = np.argsort(-dets.scores, kind="stable")[: int(np.sum(dets.scores >= score_threshold))]
        if shown.size > max_detections:
            title += f" ({shown.size - max_detections} more detections not drawn)"
        shown = shown[:max_detections]
        for box, score, cls in zip(dets.boxes[shown] * scale, dets.scores[shown], dets.classes[shown]):
            colour = _class_colour(int(cls))
            axes.add_patch(Rectangle((box[1], box[0]), box[3] - box[1], box[2] - box[0], fill=False,
                                     edgecolor=colour, **DETECTION_STYLE))
            axes.text(box[1], box[0], f"{names[int(cls)]} {score:.2f}", color="white", fontsize=7, va="bottom",
                      bbox={"facecolor": colour, "alpha": 0.8, "pad": 1, "linewidth": 0})
        axes.set_title(title, fontsize=9)
    figure.suptitle(f"ground truth: solid green; detections with score >= {score_threshold:g}: dashed, "
                    "coloured by class", fontsize=10)
    return figure
