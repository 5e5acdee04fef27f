import keras
import numpy as np
import pytest
import tensorflow as tf
from round_trips import check_config_round_trip

import keras_ssd
from keras_ssd import SSDLoss
from keras_ssd.losses import highest_per_row


def _cross_entropy(logits, label):
    logits = np.asarray(logits, np.float64)
    return np.log(np.exp(logits).sum()) - logits[label]


# One image, 6 default boxes, 2 object classes (3 logits, background first).
LABELS = [1, 0, 0, 0, 0, -1]  # one positive, four negatives, one ignored
LOGITS = [[1, 2, 0], [0, 0, 0], [2, 0, 0], [0, 1, 0], [0, 0, 3], [0, 5, 5]]
TARGET_OFFSETS = [[0, 0, 0, 0]] + [[0, 0, 0, 0]] * 5
PRED_OFFSETS = [[0.5, -2.0, 0.0, 0.1]] + [[9.0, 9.0, 9.0, 9.0]] * 5


def _case(labels=LABELS):
    y_true = np.concatenate([TARGET_OFFSETS, np.array(labels)[:, None]], 1)[None]
    y_pred = np.concatenate([PRED_OFFSETS, LOGITS], 1)[None]
    return y_true.astype(np.float32), y_pred.astype(np.float32)


def _expected_single_image():
    # Positive: CE of box 0 for class 1 = log(e + e^2 + 1) - 2. Smooth L1: 0.5*0.5^2 + (2-0.5) + 0 + 0.5*0.1^2 = 1.63.
    positive = _cross_entropy(LOGITS[0], 1) + 1.63
    # Negatives' CE: box1 log 3, box2 log(e^2+2)-2, box3 log(2+e), box4 log(2+e^3).
    # 3 x 1 positive = 3 hardest: boxes 4, 3, 1 (box 2 is the easiest; box 5 is ignored).
    negatives = sum(_cross_entropy(LOGITS[i], 0) for i in (4, 3, 1))
    return positive + negatives  # N = 1


def _ranked_below(values, counts):
    """Reference: rank each row by a stable descending sort, keep ranks below the count."""
    order = np.argsort(-values, axis=1, kind="stable")
    rank = np.argsort(order, axis=1, kind="stable")
    return rank < counts[:, None]


@pytest.mark.parametrize("counts", [[0.0, 0.0, 0.0], [3.0, 0.0, 7.5], [1.0, 200.0, 0.5], [500.0, 500.0, 500.0]])
def test_highest_per_row_keeps_what_a_full_ranking_keeps(counts):
    # Quarter steps: many ties, which go to the lower index as in a stable sort.
    values = np.round(np.random.default_rng(0).random((3, 400)) * 8) / 4 - 1
    counts = np.asarray(counts, np.float32)
    got = highest_per_row(tf.constant(values, tf.float32), tf.constant(counts)).numpy()
    np.testing.assert_array_equal(got, _ranked_below(values, counts))
    assert got.sum(1).tolist() == np.minimum(np.ceil(counts), 400).astype(int).tolist()


def test_hand_computed_value():
    y_true, y_pred = _case()
    expected = _expected_single_image()
    assert float(SSDLoss()(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(0.4076 + 1.63 + 3.0949 + 1.5514 + 1.0986, abs=1e-3)


def test_normaliser_counts_positives_of_the_whole_batch():
    y_true, y_pred = _case()
    no_positive, _ = _case([0, 0, 0, 0, 0, 0])
    # Image 2 has no positive, so no negative is mined from it and N stays 1.
    batch_true = np.concatenate([y_true, no_positive])
    batch_pred = np.concatenate([y_pred, y_pred])
    assert float(SSDLoss()(batch_true, batch_pred)) == pytest.approx(_expected_single_image(), rel=1e-5)
    # Two identical images: the sum doubles and so does N.
    twice = SSDLoss()(np.concatenate([y_true] * 2), np.concatenate([y_pred] * 2))
    assert float(twice) == pytest.approx(_expected_single_image(), rel=1e-5)


@pytest.mark.parametrize("reduction", ["sum", "sum_over_batch_size", "mean", None])
def test_value_does_not_depend_on_keras_reduction(reduction):
    y_true, y_pred = _case()
    y_true, y_pred = np.concatenate([y_true] * 3), np.concatenate([y_pred] * 3)
    assert float(SSDLoss(reduction=reduction)(y_true, y_pred)) == pytest.approx(
        _expected_single_image(), rel=1e-5
    )


def test_zero_positives_gives_zero_loss_and_finite_gradient():
    y_true, _ = _case([0, 0, 0, 0, 0, 0])
    y_pred = tf.Variable(_case()[1])
    with tf.GradientTape() as tape:
        loss = SSDLoss()(y_true, y_pred)
    gradient = tape.gradient(loss, y_pred)
    assert float(loss) == 0.0
    assert np.isfinite(gradient.numpy()).all()


def test_get_config_round_trip():
    loss = SSDLoss(neg_pos_ratio=2.0, alpha=0.5)
    clone = check_config_round_trip(loss, _case(), atol=1e-6)
    assert (clone.neg_pos_ratio, clone.alpha) == (2.0, 0.5)


@pytest.mark.numerics
def test_model_fit_lowers_the_loss(tiny_cfg):
    encoder = keras_ssd.TargetEncoder(tiny_cfg)
    images = np.full((4, 160, 160, 3), 40, np.uint8)
    images[:, 40:120, 30:100] = (220, 30, 30)
    y_true = np.stack([encoder([[0.25, 0.1875, 0.75, 0.625]], [1])] * 4)
    model = keras_ssd.build_ssd(tiny_cfg)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=SSDLoss())
    history = model.fit(images.astype(np.float32), y_true, batch_size=4, epochs=5, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0]


def test_loss_from_config_takes_its_neg_pos_ratio():
    cfg = keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=3, neg_pos_ratio=1.0)
    loss = SSDLoss.from_ssd_config(cfg)
    assert loss.neg_pos_ratio == 1.0 and SSDLoss.from_config(loss.get_config()).neg_pos_ratio == 1.0
    # One positive, three negatives of rising loss: ratio 1 keeps only the hardest negative.
    y_true = np.zeros([1, 4, 5], np.float32)
    y_true[0, 0, 4] = 1
    y_pred = np.zeros([1, 4, 4 + 2], np.float32)
    y_pred[0, 1:, 5] = [1.0, 2.0, 3.0]  # negatives' logit for the object class
    assert float(loss(y_true, y_pred)) < float(SSDLoss()(y_true, y_pred))


def test_terms_are_the_hand_computed_parts_and_add_up_to_the_loss():
    y_true, y_pred = _case()
    confidence, localisation = SSDLoss().terms(y_true, y_pred)
    assert float(localisation) == pytest.approx(1.63, rel=1e-5)
    assert float(confidence) == pytest.approx(_expected_single_image() - 1.63, rel=1e-5)
    weighted = SSDLoss(alpha=0.5)
    assert float(weighted(y_true, y_pred)) == pytest.approx(float(confidence) + 0.5 * 1.63, rel=1e-6)


def test_loss_terms_are_logged_by_fit_and_saved_with_the_model(tiny_cfg, tmp_path):
    from keras_ssd import recipes
    from keras_ssd.losses import SSDLossTerm

    for term, value in (("confidence", _expected_single_image() - 1.63), ("localisation", 1.63)):
        metric = SSDLossTerm(term)
        metric.update_state(*_case())
        assert float(metric.result()) == pytest.approx(value, rel=1e-5)
        assert SSDLossTerm.from_config(metric.get_config()).term == term
    with pytest.raises(ValueError, match=r"Unknown SSD loss term 'conf'; expected one of \['confidence', 'localisation'\]"):
        SSDLossTerm("conf")

    encoder = keras_ssd.TargetEncoder(tiny_cfg)
    y_true = np.stack([encoder([[0.25, 0.1875, 0.75, 0.625]], [1])] * 2)
    images = np.random.default_rng(0).uniform(0, 255, (2, 160, 160, 3)).astype(np.float32)
    model = keras_ssd.build_ssd(tiny_cfg)
    recipes.compile_for_training(model, recipes.TINY.replace(epochs=1, batch_size=2, precision="float32"), 1)
    logs = model.fit(images, y_true, batch_size=2, epochs=1, verbose=0).history
    assert logs["loss"][0] == pytest.approx(logs["conf_loss"][0] + logs["loc_loss"][0], rel=1e-5)
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    again = reloaded.evaluate(images, y_true, verbose=0, return_dict=True)
    assert set(again) == {"loss", "conf_loss", "loc_loss"}
