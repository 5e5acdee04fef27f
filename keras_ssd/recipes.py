"""Training recipes: how each preset is trained, as one frozen, serialisable object.

A `Recipe` holds everything `model.fit` needs beyond the network and the data:
the optimiser, its learning rate at the reference batch of 32, the schedule,
warm-up, weight decay, gradient clipping, augmentation, epochs, batch size,
precision and XLA (the last two "auto": this machine's fastest,
`keras_ssd.precision`). `compile_for_training` turns a recipe into a compiled
model; the `training.train` command line, the notebooks and a user's own `fit`
all use it:

    recipe = keras_ssd.recipes.for_preset("ssd_tiny")
    model = keras_ssd.precision.with_precision(keras_ssd.build_ssd(cfg), recipe.precision)
    train = keras_ssd.data.train_pipeline(examples, cfg, recipe.batch_size,
                                          augment=recipe.augment)
    steps = int(train.cardinality())
    keras_ssd.recipes.compile_for_training(model, recipe, steps)
    model.fit(train.repeat(), epochs=recipe.epochs, steps_per_epoch=steps)
"""

import dataclasses
import warnings
from typing import Union

from keras_ssd.data.augment import AugmentOptions
from keras_ssd.losses import SSD_LOSS_TERMS, SSDLoss, SSDLossTerm
from keras_ssd.model import ssd_config_of
from keras_ssd.optimizers import OPTIMIZERS, REFERENCE_BATCH_SIZE
from keras_ssd.precision import (
    PRECISIONS,
    policy_of,
    resolve_jit_compile,
    resolve_precision,
)

SCHEDULES = ("cosine", "step")
JIT_COMPILE = ("auto", True, False)
# The learning rate an optimiser starts from when a recipe's optimiser is changed
# without a rate: the paper's SGD rate, and AdamW's rate of the ssd_tiny recipe.
OPTIMIZER_LEARNING_RATES = {"sgd": 1e-3, "adamw": 2e-3}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train an SSD.

    Attributes:
        optimizer: a key of `keras_ssd.optimizers.OPTIMIZERS` ("sgd", "adamw").
        learning_rate: peak learning rate at batch `REFERENCE_BATCH_SIZE` (32);
            the optimiser scales it linearly to `batch_size`.
        batch_size: global batch size.
        epochs: passes over the training data.
        schedule: "cosine" (to 0 at the end) or "step" (x0.1 at 2/3 and 5/6 of
            the steps, the paper's 80k and 100k of 120k iterations).
        warmup_epochs: linear warm-up from 0.001 of the peak, in epochs.
        weight_decay: L2 weight decay (the paper's coupled form for SGD,
            decoupled for AdamW; see `keras_ssd.optimizers`).
        clip_norm: clip gradients to this global norm; 0 turns it off (the paper
            does not clip; networks trained from scratch on raw 0..255 inputs
            need it).
        augment: `AugmentOptions` (the paper's by default), or False for resize
            only. A dict of `AugmentOptions` fields, or True, is accepted.
        precision: "auto" (this machine's fastest: `mixed_bfloat16` on CPUs with
            AVX512_BF16 or AMX, `mixed_float16` on tensor-core GPUs, else
            `float32`) or one of `keras_ssd.precision.POLICIES`.
        jit_compile: XLA for the train step: "auto" (measured per machine, preset
            and precision: `keras_ssd.precision.resolve_jit_compile`), True or False.
    """

    optimizer: str = "sgd"
    learning_rate: float = 1e-3
    batch_size: int = REFERENCE_BATCH_SIZE
    epochs: int = 9
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    weight_decay: float = 5e-4
    clip_norm: float = 10.0
    augment: Union[AugmentOptions, bool] = AugmentOptions()
    precision: str = "auto"
    jit_compile: Union[str, bool] = "auto"

    def __post_init__(self):
        object.__setattr__(self, "augment", _augment_options(self.augment))
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; valid: {sorted(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Unknown schedule {self.schedule!r}; valid: {SCHEDULES}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.jit_compile not in JIT_COMPILE:
            raise ValueError(f"jit_compile must be one of {JIT_COMPILE}, got {self.jit_compile!r}")
        for field in ("learning_rate", "batch_size", "epochs"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{field} must be positive, got {getattr(self, field)!r}")
        for field in ("warmup_epochs", "weight_decay", "clip_norm"):
            if not getattr(self, field) >= 0:
                raise ValueError(f"{field} must be 0 or more, got {getattr(self, field)!r}")

    def replace(self, **changes) -> "Recipe":
        """This recipe with `changes` applied.

        A new `optimizer` without a `learning_rate` takes that optimiser's
        starting rate (`OPTIMIZER_LEARNING_RATES`): a rate belongs to its optimiser.

        Raises:
            ValueError: an unknown field (the message lists the valid ones) or
                a bad value.
        """
        _check_fields(changes)
        new_optimizer = changes.get("optimizer", self.optimizer)
        if new_optimizer != self.optimizer and "learning_rate" not in changes:
            changes["learning_rate"] = OPTIMIZER_LEARNING_RATES.get(new_optimizer, self.learning_rate)
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line for logs; augmentation as the fields that differ from the paper's."""
        if self.augment is False:
            augment = "none"
        else:
            changed = {
                f.name: getattr(self.augment, f.name)
                for f in dataclasses.fields(AugmentOptions)
                if getattr(self.augment, f.name) != getattr(AugmentOptions(), f.name)
            }
            augment = "the paper's" + (f" with {changed}" if changed else "")
        return (
            f"{self.optimizer} at {self.learning_rate:g} for batch {REFERENCE_BATCH_SIZE}, batch "
            f"{self.batch_size}, {self.epochs} epochs, {self.schedule} after {self.warmup_epochs:g} "
            f"warm-up epoch(s), weight decay {self.weight_decay:g}, clip norm {self.clip_norm:g}, "
            f"precision {self.precision}, jit_compile {self.jit_compile}; augmentation {augment}"
        )

    def warmup_steps(self, steps_per_epoch: int) -> int:
        """Warm-up length in steps, at most the whole run."""
        return min(int(self.warmup_epochs * steps_per_epoch), self.epochs * steps_per_epoch)

    def to_dict(self) -> dict:
        """Plain-Python (JSON-serialisable) form; `Recipe.from_dict` rebuilds it."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.augment is not False:
            values["augment"] = dataclasses.asdict(self.augment)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "Recipe":
        """Rebuilds a recipe from `to_dict`'s form; missing fields take the defaults.

        Raises:
            ValueError: an unknown field (the message lists the valid ones).
        """
        _check_fields(values)
        return cls(**values)


def _check_fields(values):
    valid = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ValueError(f"Unknown Recipe field(s) {unknown}; valid fields: {sorted(valid)}")


def _augment_options(value):
    """`Recipe.augment` as `AugmentOptions` or False, from options, a bool or a dict."""
    if value is False or isinstance(value, AugmentOptions):
        return value
    if value is True:
        return AugmentOptions()
    if not isinstance(value, dict):
        raise ValueError(f"augment must be false or a mapping of AugmentOptions fields, got {value!r}")
    fields = {f.name for f in dataclasses.fields(AugmentOptions)}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise ValueError(f"augment: unknown AugmentOptions field(s) {unknown}; valid: {sorted(fields)}")
    return AugmentOptions(**value)


# The paper (section 3 and its Caffe ssd_pascal.py): SGD with momentum 0.9 at
# 1e-3 for batch 32, weight decay 5e-4, x0.1 at 80k and 100k of 120k iterations
# (232 epochs of VOC07+12 trainval), the full augmentation, no clipping. The
# one-epoch warm-up is torchvision's (its detection references warm up the first
# 1000 iterations), for the randomly initialised extra layers.
PAPER = Recipe(optimizer="sgd", learning_rate=1e-3, epochs=232, schedule="step", clip_norm=0.0)
# ssd_tiny from scratch on a 2-core CPU in minutes: AdamW learns faster than the
# paper's SGD there, and at its 160 px input the paper's 4x zoom-out would shrink
# most "shapes" objects to a few pixels, so it zooms out 2x at most. Clipping tames
# the first steps (gradient norms of ~1e4 on raw 0..255 inputs). 10 epochs of the
# built-in shapes data end at VOC07 mAP 0.817 (README "Results"); 9 ended at
# 0.7976-0.8005, as close to 0.80 as the smallest numeric change moves it.
TINY = Recipe(
    optimizer="adamw",
    learning_rate=2e-3,
    epochs=10,
    schedule="cosine",
    clip_norm=10.0,
    augment=AugmentOptions(max_expand_ratio=2.0),
)
# torchvision's ssdlite320_mobilenet_v3_large reference: SGD 0.15 at batch 192
# (0.025 at 32), cosine over 600 epochs, weight decay 4e-5, random IoU crop and
# horizontal flip only (no photometric distortion, no zoom-out), no clipping.
SSDLITE = Recipe(
    optimizer="sgd",
    learning_rate=0.025,
    epochs=600,
    schedule="cosine",
    weight_decay=4e-5,
    clip_norm=0.0,
    augment=AugmentOptions(photometric=False, expand=False),
)
RECIPES = {
    "ssd300_vgg16": PAPER,
    "ssd512_vgg16": PAPER,
    "ssd_tiny": TINY,
    "ssdlite320_mobilenetv2": SSDLITE,
}


def for_preset(name: str) -> Recipe:
    """The recipe of the `SSDConfig` preset `name`.

    Raises:
        ValueError: an unknown preset (the message lists the valid ones).
    """
    if name not in RECIPES:
        raise ValueError(f"No recipe for preset {name!r}; presets with recipes: {sorted(RECIPES)}")
    return RECIPES[name]


def machine_settings(recipe: Recipe, cfg) -> dict:
    """The recipe's precision and XLA setting on this machine, each a `Choice` with its reason.

    Args:
        recipe: a `Recipe` (its "auto" fields are resolved, given ones kept).
        cfg: the `SSDConfig` it trains (XLA's choice depends on the preset).

    Returns:
        `{"precision": Choice, "jit_compile": Choice}`.
    """
    precision = resolve_precision(recipe.precision)
    return {"precision": precision, "jit_compile": resolve_jit_compile(recipe.jit_compile, cfg.name, precision.value)}


def compile_for_training(model, recipe: Recipe, steps_per_epoch: int):
    """Compiles an `SSD` model with the recipe's optimiser and the config's loss.

    Call it inside the distribution strategy's scope when there is one. The
    loss is `SSDLoss.from_ssd_config(model.ssd_config)`, and its two terms are
    logged as metrics (`conf_loss`, `loc_loss`: `SSDLossTerm`); the optimiser's
    schedule spans `recipe.epochs * steps_per_epoch` steps. The optimiser is built
    (its slot variables made) here, so the first training step traces once.
    The model computes in the precision it was built in (`with_precision`
    gives a copy in `recipe.precision`): when that is not `recipe.precision`
    as this machine resolves it, a `UserWarning` says so (e.g. a float32 model
    with the default "auto" on a bf16 CPU, where `mixed_bfloat16` trains SSD300
    1.7x faster). XLA is `recipe.jit_compile`, "auto" resolved for the model's
    precision and preset on this machine.

    Args:
        model: an `SSD` model from `build_ssd` (or loaded from `.keras`).
        recipe: a `Recipe`.
        steps_per_epoch: training steps in one epoch (batches of
            `recipe.batch_size`).

    Returns:
        `model`, compiled.

    Raises:
        ValueError: `model` is not an SSD model or `steps_per_epoch` < 1.
    """
    cfg = ssd_config_of(model, "compile_for_training")
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be at least 1, got {steps_per_epoch!r}")
    wanted = resolve_precision(recipe.precision)
    if policy_of(model) != wanted.value:
        asked = "" if recipe.precision == wanted.value else f" ({recipe.precision!r}: {wanted.reason})"
        warnings.warn(
            f"compile_for_training: the model computes in {policy_of(model)} but the recipe's precision is "
            f"{wanted.value}{asked}; compile keras_ssd.precision.with_precision(model, recipe.precision) "
            "to train in it",
            UserWarning,
            stacklevel=2,
        )
    total_steps = recipe.epochs * steps_per_epoch
    optimizer = OPTIMIZERS[recipe.optimizer](
        recipe.learning_rate,
        recipe.batch_size,
        total_steps,
        warmup_steps=recipe.warmup_steps(steps_per_epoch),
        decay=recipe.schedule,
        weight_decay=recipe.weight_decay,
        clip_norm=recipe.clip_norm or None,
    )
    # The loss's two terms are logged too (conf_loss, loc_loss), for the run's report.
    terms = [SSDLossTerm(term, cfg.neg_pos_ratio) for term in SSD_LOSS_TERMS]
    jit_compile = resolve_jit_compile(recipe.jit_compile, cfg.name, policy_of(model)).value
    model.compile(optimizer=optimizer, loss=SSDLoss.from_ssd_config(cfg), metrics=terms, jit_compile=jit_compile)
    # The slots now, not inside the first step: a step that creates variables is
    # traced twice (7 of ssd_tiny's 15 s of first-step tracing).
    model.optimizer.build(model.trainable_variables)  # the loss-scale wrapper too, if any
    return model
