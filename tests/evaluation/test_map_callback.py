import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssd.evaluation import MeanAveragePrecisionCallback, VOCEvaluator

HIT, OTHER = [0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]


class FixedDetector(keras.Model):
    """Stand-in for build_detector(...): one class-0 box at HIT, score 1, for every image."""

    def call(self, images):
        batch = keras.ops.shape(images)[0]
        ones = keras.ops.ones((batch, 1))
        return {
            "detection_boxes": ones[:, :, None] * keras.ops.convert_to_tensor(HIT),
            "detection_scores": ones,
            "detection_classes": keras.ops.zeros((batch, 1), "int32"),
            "num_detections": keras.ops.ones((batch,), "int32"),
        }


def _val_dataset():
    # Images 0, 1 have their object at HIT, images 2, 3 at OTHER (padded to M=2, label -1).
    # Ranked (ties keep feed order): TP, TP, FP, FP with 4 positives:
    # recall .25, .5, .5, .5; precision 1, 1, 2/3, 1/2 -> VOC2010+ AP = .5 * 1 = 0.5.
    boxes = np.zeros((4, 2, 4), np.float32)
    boxes[:2, 0], boxes[2:, 0] = HIT, OTHER
    labels = np.array([[0, -1]] * 4, np.int32)
    return tf.data.Dataset.from_tensor_slices(
        {
            "image": np.zeros((4, 8, 8, 3), np.uint8),
            "boxes": boxes,
            "labels": labels,
            "difficult": np.zeros((4, 2), bool),
            "is_crowd": np.zeros((4, 2), bool),
            "original_size": np.full((4, 2), 8, np.int32),
        }
    ).batch(3)


def _trainable_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_evaluate_runs_detector_over_dataset():
    callback = MeanAveragePrecisionCallback(
        _val_dataset(), VOCEvaluator(1, metric="voc12"), detector=FixedDetector(), verbose=0
    )
    assert callback.evaluate()["mAP"] == pytest.approx(0.5)
    assert callback.evaluate()["mAP"] == pytest.approx(0.5)  # evaluator reset between runs
    assert callback.evaluator.num_images == 4


def test_plain_python_detector_without_compiling():
    def numpy_detector(images):
        batch = images.shape[0]
        return {
            "detection_boxes": np.tile(np.array(HIT, np.float32), (batch, 1, 1)),
            "detection_scores": np.ones((batch, 1), np.float32),
            "detection_classes": np.zeros((batch, 1), np.int32),
            "num_detections": np.ones(batch, np.int32),
        }

    callback = MeanAveragePrecisionCallback(
        _val_dataset(),
        VOCEvaluator(1, metric="voc12"),
        detector=numpy_detector,
        compile_detector=False,
        verbose=0,
    )
    assert callback.evaluate()["mAP"] == pytest.approx(0.5)


# ModelCheckpoint warns on the epochs the callback skips (frequency=2); that is expected.
@pytest.mark.filterwarnings("ignore:Can save best model only")
def test_logs_val_map_for_checkpointing_and_builds_detector_from_trained_model(tmp_path, capsys):
    built_for = []

    def detector_fn(model):
        built_for.append(model)
        return FixedDetector()

    model = _trainable_model()
    callback = MeanAveragePrecisionCallback(
        _val_dataset(), VOCEvaluator(1, metric="voc12"), detector_fn=detector_fn, frequency=2
    )
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "best.keras"), monitor="val_mAP", mode="max", save_best_only=True
    )
    x = np.zeros((4, 2), np.float32)
    history = model.fit(x, x[:, :1], epochs=4, verbose=0, callbacks=[callback, checkpoint])
    # Evaluated after epochs 2 and 4 only; the detector is built once, from the fitted model.
    assert history.history["val_mAP"] == pytest.approx([0.5, 0.5])
    assert built_for == [model]
    assert (tmp_path / "best.keras").exists()
    assert callback.last_result["per_class_ap"][0] == pytest.approx(0.5)
    assert capsys.readouterr().out.count("val_mAP = 0.5000") == 2


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="exactly one"):
        MeanAveragePrecisionCallback([], VOCEvaluator(1))
    with pytest.raises(ValueError, match="exactly one"):
        MeanAveragePrecisionCallback(
            [], VOCEvaluator(1), detector=FixedDetector(), detector_fn=lambda m: m
        )
    with pytest.raises(ValueError, match="0"):
        MeanAveragePrecisionCallback([], VOCEvaluator(1), detector=FixedDetector(), frequency=0)
