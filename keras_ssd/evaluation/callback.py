"""Keras callback that measures mAP on a validation set during `fit`."""

from collections.abc import Callable

import keras
import tensorflow as tf


class MeanAveragePrecisionCallback(keras.callbacks.Callback):
    """Evaluates a detector every `frequency` epochs and logs its mAP.

    The value is written into the epoch logs as `logs[log_name]` (default
    `"val_mAP"`), so `ModelCheckpoint(monitor="val_mAP", mode="max")`,
    `EarlyStopping`, `CSVLogger` and `History` see it, provided this callback comes
    *before* them in the `callbacks` list (Keras calls callbacks in list order).
    On epochs that are skipped (`frequency > 1`) the key is absent.

    Example:
        ```python
        map_cb = MeanAveragePrecisionCallback(
            val_ds, VOCEvaluator(cfg.num_classes, "voc07"),
            detector_fn=lambda m: keras_ssd.build_detector(m, cfg))
        model.fit(train_ds, callbacks=[map_cb, keras.callbacks.ModelCheckpoint(
            "best.keras", monitor="val_mAP", mode="max", save_best_only=True)])
        ```

    Args:
        dataset: iterable of batch dicts (e.g. a `tf.data.Dataset`) with `"image"`
            `[B, S, S, 3]` (RGB 0..255, any numeric dtype; cast to float32) and
            the ground-truth keys the evaluator reads (`"boxes"` normalised
            `[ymin, xmin, ymax, xmax]` `[B, M, 4]`, `"labels"` `[B, M]` padded
            with -1, `"difficult"`, `"is_crowd"`, `"original_size"`).
        evaluator: an object with `reset()`, `update(detections, ground_truth)`
            and `result() -> {"mAP": float, ...}`, e.g. `VOCEvaluator` or
            `COCOEvaluator`.
        detector: a callable, float32 images `[B, S, S, 3]` -> the detection dict
            (`detection_boxes` `[B, K, 4]` normalised yxyx, `detection_scores`,
            `detection_classes`, `num_detections`). It must read the training
            weights, as `keras_ssd.build_detector(model, cfg)` does (it wraps
            the same model object).
        detector_fn: instead of `detector`, a factory `detector_fn(model)`
            applied to the model being trained (built once, on first use).
        compile_detector: wrap the detector in `tf.function` (about 2x faster
            than eager calls for `build_detector` models on CPU); pass False for a
            callable that TensorFlow cannot trace (e.g. one returning numpy).
        frequency: evaluate after every `frequency`-th epoch (1-based: epochs
            `frequency`, `2 * frequency`, ...).
        log_name: key written into the epoch logs.
        verbose: 1 prints one line per evaluation, 0 is silent.

    Attributes:
        last_result: the evaluator's full result from the latest evaluation
            (None before the first).
    """

    def __init__(
        self,
        dataset,
        evaluator,
        detector: Callable | None = None,
        detector_fn: Callable | None = None,
        compile_detector: bool = True,
        frequency: int = 1,
        log_name: str = "val_mAP",
        verbose: int = 1,
    ):
        super().__init__()
        if (detector is None) == (detector_fn is None):
            raise ValueError(
                "Pass exactly one of detector and detector_fn; got "
                f"detector={detector!r}, detector_fn={detector_fn!r}"
            )
        if int(frequency) < 1:
            raise ValueError(f"frequency must be a positive number of epochs; got {frequency!r}")
        self.dataset = dataset
        self.evaluator = evaluator
        self.detector_fn = detector_fn
        self.frequency = int(frequency)
        self.log_name = log_name
        self.verbose = verbose
        self.last_result = None
        self.compile_detector = compile_detector
        self._detector = None if detector is None else self._maybe_compile(detector)
        self._detector_model = None

    def _maybe_compile(self, detector):
        if not self.compile_detector:
            return detector
        return tf.function(detector, reduce_retracing=True)

    @property
    def detector(self) -> Callable:
        """The detector `evaluate` runs (with `detector_fn`: the current model's, built on first use)."""
        if self.detector_fn is not None and self._detector_model is not self.model:
            self._detector = self._maybe_compile(self.detector_fn(self.model))
            self._detector_model = self.model
        return self._detector

    def evaluate(self) -> dict:
        """Runs the detector over `dataset` and returns the evaluator's result."""
        detector = self.detector
        self.evaluator.reset()
        for batch in self.dataset:
            detections = detector(keras.ops.cast(batch["image"], "float32"))
            self.evaluator.update(detections, batch)
        self.last_result = self.evaluator.result()
        return self.last_result

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.frequency:
            return
        value = self.evaluate()["mAP"]
        if logs is not None:
            logs[self.log_name] = value
        if self.verbose:
            print(f"Epoch {epoch + 1}: {self.log_name} = {value:.4f}")
