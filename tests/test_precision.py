"""keras_ssd.precision: the per-machine choice of precision and XLA, and models in a given precision."""

import keras
import numpy as np
import pytest

import keras_ssd
from keras_ssd import cpu, precision, recipes


def _machine(monkeypatch, flags, onednn=True, gpu=None):
    """This process seen as a machine with `flags`, oneDNN `onednn` and `gpu` ((name, capability) or None)."""
    monkeypatch.setattr(cpu, "kernel_flags", lambda: tuple(flags))
    monkeypatch.setattr(cpu, "onednn_enabled", lambda: onednn)
    monkeypatch.setattr(precision, "_gpu", lambda: gpu)


@pytest.mark.parametrize("flags, onednn, gpu, expected", [
    (("avx2", "avx512f", "avx512_vnni", "avx512_bf16"), True, None, "mixed_bfloat16"),  # Zen 4
    (("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"), True, None, "mixed_bfloat16"),
    (("avx2", "avx512f", "avx512_bf16"), False, None, "float32"),  # TF_ENABLE_ONEDNN_OPTS=0
    (("avx2",), True, None, "float32"),  # AVX2 EPYC
    (("avx2", "avx512f", "avx512_vnni"), True, None, "float32"),  # AVX-512 without BF16
    (("avx2",), False, ("NVIDIA H100", (9, 0)), "mixed_float16"),
    (("avx2",), False, ("Tesla P100", (6, 0)), "float32"),
])
def test_auto_precision_follows_the_hardware(monkeypatch, flags, onednn, gpu, expected):
    _machine(monkeypatch, flags, onednn, gpu)
    choice = precision.resolve_precision("auto")
    assert choice.value == expected
    assert choice.reason and choice.reason != "given"


def test_given_precision_wins_and_a_bad_one_is_named():
    assert precision.resolve_precision("float32") == precision.Choice("float32", "given")
    with pytest.raises(ValueError, match="'float64'"):
        precision.resolve_precision("float64")
    with pytest.raises(ValueError, match="precision must be one of"):
        recipes.Recipe(precision="bf16")


@pytest.mark.parametrize("flags, preset, policy, expected", [
    (("avx2",), "ssd300_vgg16", "float32", True),  # XLA 1.16-1.3x on the AVX2 EPYC
    (("avx2",), "ssd512_vgg16", "float32", True),
    (("avx2",), "ssd_tiny", "float32", False),  # 0.45 against 0.38 s/step
    (("avx2",), "ssdlite320_mobilenetv2", "float32", False),
    (("avx2", "avx512_bf16"), "ssd300_vgg16", "float32", False),
    (("avx2", "avx512_bf16"), "ssd300_vgg16", "mixed_bfloat16", False),
    (("avx2", "avx512_bf16", "amx_bf16"), "ssd300_vgg16", "mixed_bfloat16", False),
])
def test_auto_xla_per_machine_preset_and_precision(monkeypatch, flags, preset, policy, expected):
    _machine(monkeypatch, flags)
    assert precision.resolve_jit_compile("auto", preset, policy).value is expected
    assert precision.resolve_jit_compile(True, preset, policy) == precision.Choice(True, "given")


def test_auto_xla_on_a_gpu_is_keras_own(monkeypatch):
    _machine(monkeypatch, ("avx2",), gpu=("NVIDIA H100", (9, 0)))
    assert precision.resolve_jit_compile("auto", "ssd300_vgg16", "mixed_float16").value == "auto"


def test_machine_settings_resolve_a_recipe(monkeypatch):
    _machine(monkeypatch, ("avx2", "avx512f", "avx512_bf16"))
    cfg = keras_ssd.SSDConfig.from_preset("ssd300_vgg16", num_classes=3)
    settings = recipes.machine_settings(recipes.PAPER, cfg)
    assert (settings["precision"].value, settings["jit_compile"].value) == ("mixed_bfloat16", False)
    settings = recipes.machine_settings(recipes.PAPER.replace(precision="float32", jit_compile=True), cfg)
    assert settings == {"precision": precision.Choice("float32", "given"),
                        "jit_compile": precision.Choice(True, "given")}


def test_this_machine_choice_matches_its_flags():
    """The real CPU's flags and oneDNN state give the documented rule's answer (AVX2, Zen 4 or AMX alike)."""
    choice = precision.auto_precision()
    if precision._gpu() is None:
        bf16 = any(flag in cpu.kernel_flags() for flag in precision.BF16_FLAGS)
        assert choice.value == ("mixed_bfloat16" if bf16 and cpu.onednn_enabled() else "float32")


def test_with_precision_copies_weights_and_keeps_float32_where_it_matters(tiny_cfg):
    model = keras_ssd.build_ssd(tiny_cfg)
    assert precision.with_precision(model, "float32") is model
    before = keras.mixed_precision.global_policy().name
    bf16 = precision.with_precision(model, "mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == before  # restored
    assert precision.policy_of(bf16) == "mixed_bfloat16"
    assert bf16.get_layer("block1_conv1").compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in bf16.weights)
    for a, b in zip(model.get_weights(), bf16.get_weights()):
        np.testing.assert_array_equal(a, b)
    images = np.random.default_rng(0).uniform(0, 255, (2, tiny_cfg.image_size, tiny_cfg.image_size, 3))
    full, half = model(images).numpy(), bf16(images).numpy()
    assert half.dtype == np.float32
    # bfloat16 keeps 8 significant bits: outputs move by a few percent of their range, not more.
    assert np.abs(full - half).max() < 0.05 * np.abs(full).max()
    # The decoder stays float32 even when the detector is built under a bf16 global policy.
    with precision.global_policy("mixed_bfloat16"):
        detector = keras_ssd.build_detector(bf16)
    assert detector.get_layer("detection_decoder").compute_dtype == "float32"
    assert detector(images)["detection_boxes"].dtype == "float32"
