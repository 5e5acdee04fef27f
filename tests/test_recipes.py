"""Training recipes: frozen and serialisable, one per preset, compiled into the model they describe."""

import json
import warnings

import keras
import numpy as np
import pytest

import keras_ssd
from keras_ssd import precision, recipes
from keras_ssd.config import PRESETS
from keras_ssd.data import AugmentOptions

# The ssd_tiny recipe for the float32 models these tests build (the default "auto" is
# mixed_bfloat16 on bf16 CPUs, and compiling a float32 model with it warns).
FLOAT32_TINY = recipes.TINY.replace(precision="float32")


def test_every_preset_has_a_recipe_that_round_trips_through_json():
    assert set(recipes.RECIPES) == set(PRESETS)
    for name in PRESETS:
        recipe = recipes.for_preset(name)
        assert recipes.Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    off = recipes.TINY.replace(augment=False)
    assert recipes.Recipe.from_dict(json.loads(json.dumps(off.to_dict()))).augment is False
    with pytest.raises(ValueError, match=r"No recipe for preset 'ssd1000'; presets with recipes: \["):
        recipes.for_preset("ssd1000")


def test_recipes_are_frozen_and_checked():
    with pytest.raises(AttributeError):
        recipes.TINY.epochs = 3
    with pytest.raises(ValueError, match=r"Unknown Recipe field\(s\) \['lr'\]; valid fields: \[.*'learning_rate'"):
        recipes.TINY.replace(lr=1.0)
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adam'; valid: \['adamw', 'sgd'\]"):
        recipes.Recipe(optimizer="adam")
    with pytest.raises(ValueError, match="clip_norm must be 0 or more, got -1"):
        recipes.Recipe(clip_norm=-1)
    with pytest.raises(ValueError, match=r"unknown AugmentOptions field\(s\) \['zoom'\]"):
        recipes.Recipe(augment={"zoom": 2})
    assert recipes.Recipe(augment={"max_expand_ratio": 3}).augment == AugmentOptions(max_expand_ratio=3)
    assert recipes.Recipe(augment=True).augment == AugmentOptions()


def test_a_rate_belongs_to_its_optimizer():
    assert recipes.TINY.replace(optimizer="sgd").learning_rate == 1e-3
    assert recipes.PAPER.replace(optimizer="adamw").learning_rate == 2e-3
    assert recipes.TINY.replace(optimizer="sgd", learning_rate=0.02).learning_rate == 0.02
    assert recipes.TINY.replace(epochs=3).learning_rate == recipes.TINY.learning_rate


def test_compile_for_training_uses_the_recipe_and_the_config():
    cfg = keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=2)
    model = keras_ssd.build_ssd(cfg)
    recipe = recipes.TINY.replace(batch_size=16, epochs=2, warmup_epochs=0.5, precision="float32")
    recipes.compile_for_training(model, recipe, steps_per_epoch=10)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    schedule = model.optimizer._learning_rate
    assert (schedule.total_steps, schedule.warmup_steps, schedule.decay) == (20, 5, "cosine")
    assert schedule.peak_learning_rate == pytest.approx(2e-3 * 16 / 32)
    assert model.optimizer.global_clipnorm == 10.0
    assert model.loss.neg_pos_ratio == 3.0
    paper = keras_ssd.build_ssd(cfg)
    recipes.compile_for_training(paper, recipes.PAPER.replace(precision="float32"), steps_per_epoch=6)
    assert isinstance(paper.optimizer, keras.optimizers.SGD)
    assert paper.optimizer.global_clipnorm is None and paper.optimizer._learning_rate.decay == "step"
    with pytest.raises(ValueError, match="compile_for_training needs an SSD model"):
        recipes.compile_for_training(keras.Sequential([keras.layers.Dense(1)]), recipe, 10)
    with pytest.raises(ValueError, match="steps_per_epoch must be at least 1, got 0"):
        recipes.compile_for_training(model, recipe, 0)


def test_compile_for_training_builds_the_optimizer_so_the_first_step_traces_once():
    # A step that has to create the optimiser's slots is traced twice by tf.function.
    cfg = keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=2)
    model = recipes.compile_for_training(keras_ssd.build_ssd(cfg), FLOAT32_TINY, steps_per_epoch=1)
    assert model.optimizer.built
    assert len(model.optimizer.variables) > 2 * len(model.trainable_variables)  # AdamW's two slots each
    traces = []
    step = model.train_step
    model.train_step = lambda data: traces.append(1) or step(data)
    images = np.zeros((2, cfg.image_size, cfg.image_size, 3), np.float32)
    y_true = np.zeros((2, cfg.num_boxes, 5), np.float32)
    y_true[:, 0, 4] = 1
    first = model.train_on_batch(images, y_true, return_dict=True)
    model.train_on_batch(images, y_true)
    assert set(first) == {"loss", "conf_loss", "loc_loss"}  # the loss's terms are logged too
    assert np.isfinite(list(first.values())).all() and len(traces) == 1


def test_compile_for_training_warns_when_the_model_is_not_in_the_recipes_precision():
    cfg = keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=2)
    bf16_recipe = recipes.TINY.replace(precision="mixed_bfloat16")
    with pytest.warns(UserWarning, match=(
        r"^compile_for_training: the model computes in float32 but the recipe's precision is mixed_bfloat16; "
        r"compile keras_ssd\.precision\.with_precision\(model, recipe\.precision\) to train in it$"
    )):
        recipes.compile_for_training(keras_ssd.build_ssd(cfg), bf16_recipe, steps_per_epoch=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same precision: no warning
        bf16 = precision.with_precision(keras_ssd.build_ssd(cfg), "mixed_bfloat16")
        recipes.compile_for_training(bf16, bf16_recipe, steps_per_epoch=1)
        recipes.compile_for_training(keras_ssd.build_ssd(cfg), FLOAT32_TINY, steps_per_epoch=1)
    # "auto" warns for a float32 model exactly where this machine resolves it to another policy.
    auto = precision.resolve_precision("auto")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recipes.compile_for_training(keras_ssd.build_ssd(cfg), recipes.TINY, steps_per_epoch=1)
    messages = [str(w.message) for w in caught if str(w.message).startswith("compile_for_training")]
    expected = f"the model computes in float32 but the recipe's precision is {auto.value} ('auto': {auto.reason})"
    if auto.value == "float32":
        assert messages == []
    else:
        assert len(messages) == 1 and expected in messages[0], messages


def test_neg_pos_ratio_of_the_config_changes_the_loss():
    # One positive box and 9 negatives of growing confidence error: ratio 3 keeps
    # the 3 hardest negatives, ratio 2 the 2 hardest, so the loss differs.
    n, classes = 10, 2
    y_true = np.zeros((1, n, 5), np.float32)
    y_true[0, 0, 4] = 1
    y_pred = np.zeros((1, n, 4 + classes + 1), np.float32)
    y_pred[0, 1:, 5] = np.arange(1, n)  # background logit 0, class-1 logit rising
    losses = {}
    for ratio in (3, 2):
        cfg = keras_ssd.SSDConfig.from_preset("ssd_tiny", num_classes=classes, neg_pos_ratio=ratio)
        model = recipes.compile_for_training(keras_ssd.build_ssd(cfg), FLOAT32_TINY, steps_per_epoch=1)
        losses[ratio] = float(model.loss(y_true, y_pred))
    # Cross-entropy of a negative with logits (0, v, 0) is log(2 + e^v); the
    # positive's logits are all 0 (log 3); box offsets and targets are all 0.
    positive = np.log(3.0)
    for ratio, loss in losses.items():
        hardest = sum(np.log(2 + np.exp(v)) for v in range(9, 9 - ratio, -1))
        assert loss == pytest.approx(positive + hardest, rel=1e-5)
    assert losses[3] > losses[2]


def test_describe_names_the_settings_and_the_augmentation_changes():
    line = recipes.TINY.describe()
    assert line.startswith("adamw at 0.002 for batch 32, batch 32, 10 epochs, cosine after 1 warm-up")
    assert line.endswith("augmentation the paper's with {'max_expand_ratio': 2.0}")
    assert recipes.PAPER.describe().endswith(
        "clip norm 0, precision auto, jit_compile auto; augmentation the paper's"
    )
    assert recipes.TINY.replace(augment=False).describe().endswith("augmentation none")
