"""Optimisers: the paper's SGD with momentum and weight decay, or AdamW; warm-up then decay."""

import math

import keras
from keras import ops

# The paper's batch and learning rate (section 3: lr 1e-3 at batch 32).
REFERENCE_BATCH_SIZE = 32


@keras.saving.register_keras_serializable(package="keras_ssd")
class WarmUpDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from `warmup_factor * peak` to `peak`, then cosine or step decay.

    Args:
        peak_learning_rate: learning rate at the end of the warm-up.
        total_steps: training steps in all.
        warmup_steps: length of the warm-up.
        decay: "cosine" (to 0 at `total_steps`) or "step" (x0.1 at each boundary).
        step_boundaries: fractions of `total_steps` where "step" divides by 10
            (the paper's 80k and 100k of 120k iterations: 2/3 and 5/6).
        warmup_factor: starting fraction of the peak.
    """

    def __init__(
        self,
        peak_learning_rate,
        total_steps,
        warmup_steps=0,
        decay="cosine",
        step_boundaries=(2 / 3, 5 / 6),
        warmup_factor=0.001,
    ):
        if decay not in ("cosine", "step"):
            raise ValueError(f"decay must be 'cosine' or 'step', got {decay!r}")
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"need 0 <= warmup_steps <= total_steps and total_steps >= 1, "
                f"got warmup_steps={warmup_steps!r}, total_steps={total_steps!r}"
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.step_boundaries = tuple(float(b) for b in step_boundaries)
        self.warmup_factor = float(warmup_factor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        warmup = max(self.warmup_steps, 1)
        ramp = self.warmup_factor + (1.0 - self.warmup_factor) * ops.minimum(step / warmup, 1.0)
        if self.decay == "cosine":
            span = max(self.total_steps - self.warmup_steps, 1)
            progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            decayed = 0.5 * (1.0 + ops.cos(math.pi * progress))
        else:
            decayed = ops.convert_to_tensor(1.0)
            for boundary in self.step_boundaries:
                decayed = ops.where(step >= boundary * self.total_steps, decayed * 0.1, decayed)
        return peak * ops.where(step < self.warmup_steps, ramp, decayed)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
            "step_boundaries": list(self.step_boundaries),
            "warmup_factor": self.warmup_factor,
        }


def build_sgd(
    learning_rate,
    batch_size,
    total_steps,
    warmup_steps,
    decay="cosine",
    weight_decay=5e-4,
    momentum=0.9,
    clip_norm=None,
):
    """SGD as in the paper, with the learning rate scaled linearly from batch 32.

    Weight decay: Caffe adds `weight_decay * w` to the gradient before the
    momentum update (coupled L2). Keras' `weight_decay` is decoupled
    (`w -= lr * wd * w` outside the momentum). Under momentum m the coupled
    term accumulates to `wd / (1 - m)` per step, so we pass
    `weight_decay / (1 - momentum)` (5e-3 for the paper's 5e-4 and 0.9) to
    keep the paper's effective decay. Biases and the L2Normalization scale
    are not decayed (Caffe's SSD sets their decay_mult to 0 for biases).

    Args:
        learning_rate: learning rate at batch 32 (the paper's 1e-3).
        batch_size: global batch size; the peak rate is scaled by batch/32.
        total_steps, warmup_steps, decay: see `WarmUpDecay`.
        weight_decay: the paper's (coupled) L2 weight decay.
        momentum: SGD momentum.
        clip_norm: clip gradients to this global norm (None: off, as in the
            paper). Networks trained from scratch on raw 0..255 inputs (ssd_tiny)
            start with gradient norms of ~1e4 and need it.

    Returns:
        A `keras.optimizers.SGD`.
    """
    peak = learning_rate * batch_size / REFERENCE_BATCH_SIZE
    schedule = WarmUpDecay(peak, total_steps, warmup_steps, decay)
    optimizer = keras.optimizers.SGD(
        learning_rate=schedule,
        momentum=momentum,
        weight_decay=weight_decay / (1.0 - momentum) if weight_decay else None,
        global_clipnorm=clip_norm,
    )
    optimizer.exclude_from_weight_decay(var_names=["bias", "scale"])
    return optimizer


def build_adamw(learning_rate, batch_size, total_steps, warmup_steps, decay="cosine", weight_decay=5e-4, clip_norm=None):
    """AdamW on the same warm-up and decay schedule as `build_sgd`.

    Not the paper's optimiser: small networks trained from scratch in a few
    epochs (ssd_tiny on "shapes") converge faster with it than with SGD.

    Args:
        learning_rate: learning rate at batch 32; the peak is scaled by batch/32.
        batch_size, total_steps, warmup_steps, decay: as for `build_sgd`.
        weight_decay: AdamW's decoupled rate (`w -= lr * weight_decay * w`).
        clip_norm: clip gradients to this global norm (None: off).

    Returns:
        A `keras.optimizers.AdamW`.
    """
    peak = learning_rate * batch_size / REFERENCE_BATCH_SIZE
    optimizer = keras.optimizers.AdamW(
        learning_rate=WarmUpDecay(peak, total_steps, warmup_steps, decay),
        weight_decay=weight_decay or 0.0,
        global_clipnorm=clip_norm,
    )
    optimizer.exclude_from_weight_decay(var_names=["bias", "scale"])
    return optimizer


OPTIMIZERS = {"sgd": build_sgd, "adamw": build_adamw}
