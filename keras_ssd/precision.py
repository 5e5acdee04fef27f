"""The numeric precision and XLA setting that run fastest on this machine, and SSD models in a given precision.

`"auto"` is what every recipe, `training.train`, `training.evaluate`,
`training.predict` and `load_detector` start from; `resolve_precision` and
`resolve_jit_compile` turn it into a value and the reason for it, measured on
the kinds of machine this project runs on (SSD300 at 20 classes, 2 vCPUs,
oneDNN on; `benchmarks/compare.py`):

* CPUs with AVX512_BF16 or AMX (AMD Zen 4, Intel Sapphire / Emerald Rapids),
  oneDNN on (TensorFlow's default there): `mixed_bfloat16`, no XLA. oneDNN's
  bf16 kernels ran the training step 1.7x (Zen 4) and 2.5x (AMX) faster than
  float32 and the detector 1.7-2x and 3x; XLA's CPU compiler does not use them
  (the bf16 step with XLA: 0.76 against 1.55 img/s on Zen 4).
* Other CPUs (AVX2 only, or AVX-512 without BF16), or oneDNN off: `float32`
  (bf16 has no hardware there); XLA for the training step of `XLA_PRESETS`
  (SSD300 1.16-1.3x on an AVX2 EPYC), not for `ssd_tiny` (0.45 against 0.38
  s/step) or `ssdlite320_mobilenetv2` (~6x slower).
* GPUs with tensor cores (compute capability 7.0 or more): `mixed_float16`,
  and Keras' own XLA choice ("auto").

The network computes in the policy; its variables, its `y_pred` output, the
loss and the detection decoder stay float32.
"""

import contextlib
import dataclasses

import keras

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
PRECISIONS = ("auto",) + POLICIES
# Short names for file and model names, e.g. "ssd_tiny_bf16".
SHORT_NAMES = {"float32": "fp32", "mixed_bfloat16": "bf16", "mixed_float16": "fp16"}
# The CPU flags that give oneDNN bf16 kernels faster than its float32 ones.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# The presets whose float32 training step XLA speeds up on CPUs without those flags.
XLA_PRESETS = ("ssd300_vgg16", "ssd512_vgg16")


@dataclasses.dataclass(frozen=True)
class Choice:
    """A setting and why it was taken, e.g. `Choice("mixed_bfloat16", "CPU with AVX512_BF16 ...")`."""

    value: object
    reason: str

    def to_dict(self) -> dict:
        return {"value": self.value, "reason": self.reason}


def _gpu():
    """`(name, compute capability)` of the first GPU TensorFlow sees, or None."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return details.get("device_name", gpus[0].name), details.get("compute_capability") or (0, 0)


def bf16_flags():
    """This CPU's flags among `BF16_FLAGS` (empty where it has no bf16 instructions)."""
    # Imported here: `python -m keras_ssd.cpu` runs that module as __main__, and an import
    # of it while the package loads would make runpy warn.
    from keras_ssd import cpu

    return [flag for flag in cpu.kernel_flags() if flag in BF16_FLAGS]


def auto_precision() -> Choice:
    """This machine's fastest precision policy (see the module docstring)."""
    gpu = _gpu()
    if gpu is not None:
        name, capability = gpu
        if tuple(capability) >= (7, 0):
            return Choice("mixed_float16", f"GPU {name} (compute capability {capability[0]}.{capability[1]}) "
                                           "has tensor cores for float16")
        return Choice("float32", f"GPU {name} has no tensor cores (compute capability below 7.0)")
    from keras_ssd import cpu

    flags = " and ".join(flag.upper() for flag in bf16_flags())
    if flags and cpu.onednn_enabled():
        return Choice("mixed_bfloat16", f"CPU with {flags} and oneDNN on: its bf16 kernels ran SSD300 1.7-3x "
                                        "faster than float32")
    if flags:
        return Choice("float32", f"CPU with {flags} but oneDNN off (TF_ENABLE_ONEDNN_OPTS=0): TensorFlow's "
                                 "own bf16 kernels are no faster than float32")
    return Choice("float32", "CPU without AVX512_BF16 or AMX: bfloat16 has no hardware here")


def resolve_precision(precision="auto") -> Choice:
    """`precision` ("auto" or one of `POLICIES`) as a policy name and the reason for it.

    Raises:
        ValueError: an unknown precision (the message lists the valid ones).
    """
    if precision == "auto":
        return auto_precision()
    if precision not in POLICIES:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return Choice(precision, "given")


def resolve_jit_compile(jit_compile, preset: str, policy: str) -> Choice:
    """XLA for the training step: `jit_compile` (True, False or "auto") as a value and its reason.

    Args:
        jit_compile: True or False (kept, "given"), or "auto".
        preset: the `SSDConfig.name` ("ssd300_vgg16", "ssd_tiny", ...).
        policy: the resolved precision policy the step runs in.
    """
    if jit_compile != "auto":
        return Choice(jit_compile, "given")
    if _gpu() is not None:
        return Choice("auto", "GPU: Keras compiles with XLA where the model allows it")
    if policy != "float32":
        return Choice(False, f"{policy} on a CPU: XLA's CPU compiler does not use oneDNN's bf16 kernels "
                             "(SSD300 step 2x slower with it)")
    if preset in XLA_PRESETS and not bf16_flags():
        return Choice(True, f"{preset} in float32 on a CPU without bf16 instructions: XLA ran its step "
                            "1.16-1.3x faster")
    if preset in XLA_PRESETS:
        return Choice(False, f"{preset} in float32 on a CPU with bf16 instructions (oneDNN's kernels): XLA "
                             "was no faster (0.81 against 0.83 img/s on Zen 4, 0.88 against 1.02 on AMX)")
    return Choice(False, f"{preset} on a CPU: XLA ran its training step slower")


@contextlib.contextmanager
def global_policy(policy: str):
    """Keras' global dtype policy set to `policy` inside the block, restored after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def policy_of(model) -> str:
    """The dtype policy name `model`'s network computes in, e.g. "mixed_bfloat16"."""
    return model.dtype_policy.name


def with_precision(model, precision="auto"):
    """`model` computing in `precision`: itself if it already does, else a copy with its weights.

    Args:
        model: an `SSD` model (`build_ssd`, or a loaded `.keras` file).
        precision: "auto" or one of `POLICIES`.

    Returns:
        An `SSD` model whose layers compute in the policy; variables and the
        `y_pred` output stay float32, so `build_detector` and the exporters
        take it as they take a float32 model.
    """
    policy = resolve_precision(precision).value
    if policy_of(model) == policy:
        return model
    with global_policy(policy):
        copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy
