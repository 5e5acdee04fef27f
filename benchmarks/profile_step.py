"""Where a training step's time goes: share per kind of work, keras_ssd and torchvision.

    python benchmarks/profile_step.py                          # ssd_tiny b32 and SSD300 b8, auto + float32
    python benchmarks/profile_step.py --case ssd_tiny:auto --steps 5
    python benchmarks/profile_step.py --case ssd300_vgg16:auto --torch

Each case runs in its own process with `training.train`'s oneDNN default
(`training/onednn.py`; an explicit `TF_ENABLE_ONEDNN_OPTS` wins). It builds the
preset (3 classes for `ssd_tiny`, 20 for SSD300), compiles it with its recipe
(`keras_ssd.recipes.compile_for_training`) in the case's precision ("auto" is
this machine's choice, `keras_ssd.precision`), trains a few warm-up steps on
augmented `shapes` batches, times `--steps` steps with `train_on_batch`
(median), then records `--steps` more under TensorFlow's profiler and sums the
time of every TensorFlow op by kind of work:

* convolution forward / backward-input / backward-filter (oneDNN's or Eigen's
  kernels; a filter gradient fused with its bias gradient counts here),
* the dilation detour (SpaceToBatchND / BatchToSpaceND around a dilated conv),
* bias (BiasAdd, BiasAddGrad, and the add and its gradient's reduction inside
  a conv layer when the bias is added as a broadcast `add`),
* activation (ReLU and its gradient), normalisation (batch norm, L2 norm),
  pooling, casts, layout ops (Transpose and oneDNN's layout conversions),
* optimizer (the update ops), loss and metrics (the loss, its target matching
  is in tf.data, and the compiled loss-term metrics), other.

With `--torch` (needs `torch` and `torchvision`; see `compare.py`), one more
process profiles torchvision's `ssd300_vgg16` training step (20 classes,
batch 8, SGD, loss included) in its fastest variant on this CPU (bf16 autocast +
channels_last where the CPU has bf16 instructions, else float32
channels_last) with `torch.profiler`, summing each op's self time by the same
kinds (its convolution backward is one op for input and filter).

Op time is the time a kernel ran on TensorFlow's executor threads; ops on two
inter-op threads can overlap, so the op total can exceed the step's wall time.
The table prints ms per step and the share of the op total per kind, then the
wall time per step and images/s.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

BATCH = {"ssd_tiny": 32, "ssd300_vgg16": 8}
CLASSES = {"ssd_tiny": 3, "ssd300_vgg16": 20}
TOP = 25  # the costliest (layer, op type) pairs listed per keras_ssd case
DEFAULT_CASES = ("ssd_tiny:auto", "ssd_tiny:float32", "ssd300_vgg16:auto", "ssd300_vgg16:float32")
KINDS = (
    "conv forward", "conv backward-input", "conv backward-filter", "conv backward (input + filter)",
    "dilation detour", "bias", "activation", "normalisation", "pooling", "casts", "layout",
    "optimizer", "loss and metrics", "other",
)
_TF_TYPES = {
    "Conv2D": "conv forward", "FusedConv2D": "conv forward", "DepthwiseConv2dNative": "conv forward",
    "FusedDepthwiseConv2dNative": "conv forward",
    "Conv2DBackpropInput": "conv backward-input", "DepthwiseConv2dNativeBackpropInput": "conv backward-input",
    "Conv2DBackpropFilter": "conv backward-filter", "Conv2DBackpropFilterWithBias": "conv backward-filter",
    "DepthwiseConv2dNativeBackpropFilter": "conv backward-filter",
    "SpaceToBatchND": "dilation detour", "BatchToSpaceND": "dilation detour",
    "BiasAdd": "bias", "BiasAddGrad": "bias",
    "Relu": "activation", "ReluGrad": "activation", "Relu6": "activation", "Relu6Grad": "activation",
    "FusedBatchNormV3": "normalisation", "FusedBatchNormGradV3": "normalisation",
    "MaxPool": "pooling", "MaxPoolGrad": "pooling",
    "Cast": "casts", "Transpose": "layout", "ToTf": "layout", "InputConversion": "layout",
}
# Ops that a conv layer runs when Keras adds its bias as a broadcast add.
_BIAS_TYPES = {"AddV2", "Add", "Sum", "Reshape", "BroadcastGradientArgs"}


def layer_of(op_name, layer_names):
    """The layer whose name scope holds the op (a scope may carry a `_<n>` suffix), or None."""
    for scope in op_name.split("/"):
        for name in (scope, re.sub(r"_\d+$", "", scope)):
            if name in layer_names:
                return name
    return None


def tf_kind(op_name, op_type, conv_layers, norm_layers, optimizer_scope):
    """The kind of work of one TensorFlow op, from its type and its name scope."""
    op_type = re.sub(r"^_(MklNative|Mkl)?", "", op_type)
    scopes = op_name.split("/")
    if scopes[0] == optimizer_scope or op_type.startswith("ResourceApply"):
        return "optimizer"
    from keras_ssd.ops.filter_gradient import GRADIENT_SCOPE

    if GRADIENT_SCOPE in scopes and op_type != "Conv2DBackpropInput":
        return "conv backward-filter"  # keras_ssd's per-tap filter gradient: transposes, pads, matmuls
    if op_type in _TF_TYPES:
        return _TF_TYPES[op_type]
    if layer_of(op_name, norm_layers):
        return "normalisation"
    if op_type in _BIAS_TYPES and layer_of(op_name, conv_layers):
        return "bias"
    if any(scope.startswith(("compile_loss", "compile_metrics")) for scope in scopes[:2]):
        return "loss and metrics"
    return "other"


def profile_tensorflow(preset, policy, steps):
    """Runs in a child: `{"seconds": median step, "ms": {kind: ms per step}, ...}` for keras_ssd."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import training.onednn  # noqa: F401  (before TensorFlow, as training.train)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import glob
    import tempfile

    import keras
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    import keras_ssd
    from timing import train_step_seconds

    from keras_ssd import precision, recipes

    batch = BATCH.get(preset, 8)
    cfg = keras_ssd.SSDConfig.from_preset(preset, num_classes=CLASSES.get(preset, 20))
    recipe = recipes.for_preset(preset).replace(batch_size=batch, precision=policy)
    choices = recipes.machine_settings(recipe, cfg)
    recipe = recipe.replace(**{name: choice.value for name, choice in choices.items()})
    examples = keras_ssd.data.load("shapes", "train", num_examples=2 * batch)
    batches = list(keras_ssd.data.train_pipeline(examples, cfg, batch, augment=recipe.augment, seed=0))
    with precision.global_policy(recipe.precision):
        model = keras_ssd.build_ssd(cfg)
        recipes.compile_for_training(model, recipe, steps_per_epoch=1000)
        seconds = train_step_seconds(model, batches, steps, warmup=3)
        logdir = tempfile.mkdtemp(prefix="profile_step_")
        tf.profiler.experimental.start(logdir)
        for i in range(steps):
            model.train_on_batch(*batches[i % len(batches)])
        tf.profiler.experimental.stop()
    conv_layers = {layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)}
    norm_layers = {
        layer.name for layer in model.layers
        if isinstance(layer, (keras.layers.BatchNormalization, keras_ssd.layers.L2Normalization))
    }
    model_layers = {layer.name for layer in model.layers}
    space = xplane_pb2.XSpace()
    with open(sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1], "rb") as file:
        space.ParseFromString(file.read())
    ms = dict.fromkeys(KINDS, 0.0)
    by_op = {}
    host = next(plane for plane in space.planes if plane.name == "/host:CPU")
    for line in host.lines:
        if not line.name.startswith("tf_Compute"):
            continue
        for event in line.events:
            name = host.event_metadata[event.metadata_id].name
            if ":" not in name or name.startswith("ExecutorState"):
                continue
            op_name, op_type = name.rsplit(":", 1)
            kind = tf_kind(op_name, op_type, conv_layers, norm_layers, model.optimizer.name)
            ms[kind] += event.duration_ps / 1e9 / steps
            layer = layer_of(op_name, model_layers) or op_name
            key = f"{layer} {op_type}"
            by_op[key] = by_op.get(key, 0.0) + event.duration_ps / 1e9 / steps
    return {
        "framework": "keras_ssd", "batch": batch, "seconds": seconds, "ms": ms,
        "top": sorted(by_op.items(), key=lambda item: -item[1])[:TOP],
        "precision": recipe.precision, "jit_compile": str(recipe.jit_compile),
        "why": choices["precision"].reason,
    }


_TORCH_KINDS = {
    "aten::mkldnn_convolution": "conv forward", "aten::_convolution": "conv forward",
    "aten::convolution_backward": "conv backward (input + filter)",
    "aten::relu": "activation", "aten::relu_": "activation", "aten::threshold_backward": "activation",
    "aten::max_pool2d_with_indices": "pooling", "aten::max_pool2d_with_indices_backward": "pooling",
    "aten::_to_copy": "casts", "aten::to": "casts", "aten::copy_": "casts",
    "aten::contiguous": "layout", "aten::clone": "layout",
    "aten::linalg_vector_norm": "normalisation", "aten::clamp_min": "normalisation",
}


def profile_torch(steps):
    """Runs in a child: the same record for torchvision's fastest training-step variant."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import compare  # imports torch before TensorFlow
    import numpy as np

    from keras_ssd import precision

    torch, torchvision = compare.import_torch()
    bf16 = bool(precision.bf16_flags())
    dtype, channels_last = (torch.bfloat16, True) if bf16 else (None, True)
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    model = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21)
    images = np.random.default_rng(0).integers(0, 256, (8, 300, 300, 3), dtype=np.uint8)
    step = compare.torch_train_step(torch, model, images, dtype=dtype, channels_last=channels_last)
    for _ in range(3):
        step()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step()
    ms = dict.fromkeys(KINDS, 0.0)
    for event in profiler.events():
        kind = _TORCH_KINDS.get(event.name)
        if kind is None:
            kind = "optimizer" if _inside(event, "Optimizer.step") else "other"
        ms[kind] += event.self_cpu_time_total / 1e3 / steps
    variant = ("bf16 autocast" if bf16 else "fp32") + " channels_last"
    return {"framework": "torchvision", "batch": 8, "seconds": statistics.median(seconds), "ms": ms,
            "precision": variant, "jit_compile": "-", "why": "torchvision's fastest variant on this CPU"}


def _inside(event, label):
    """Whether `event` runs under a profiler range whose name starts with `label`."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(label):
            return True
        parent = parent.cpu_parent
    return False


def table(records):
    """Markdown: ms per step and share of the op total per kind, one column per case."""
    heads = [f"{r['name']} ({r['precision']}, b{r['batch']})" for r in records]
    lines = ["| kind of work | " + " | ".join(heads) + " |", "|---" * (len(records) + 1) + "|"]
    for kind in KINDS:
        if not any(r["ms"][kind] for r in records):
            continue
        cells = [f"{r['ms'][kind]:.1f} ms ({100 * r['ms'][kind] / sum(r['ms'].values()):.0f}%)" for r in records]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append("| op total | " + " | ".join(f"{sum(r['ms'].values()):.1f} ms" for r in records) + " |")
    lines.append("| step, wall (median) | " + " | ".join(f"{1e3 * r['seconds']:.1f} ms" for r in records) + " |")
    lines.append("| images/s | " + " | ".join(f"{r['batch'] / r['seconds']:.2f}" for r in records) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", help="PRESET:PRECISION (repeatable; default: "
                        + ", ".join(DEFAULT_CASES) + "); PRECISION is auto, float32 or mixed_bfloat16")
    parser.add_argument("--torch", action="store_true", help="also profile torchvision's SSD300 step")
    parser.add_argument("--steps", type=int, default=3, help="timed and profiled steps per case (default 3)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "torch":
            record = profile_torch(args.steps)
        else:
            preset, policy = args.child.split(":")
            record = profile_tensorflow(preset, policy, args.steps)
        print("RECORD " + json.dumps(record))
        return
    from keras_ssd import cpu

    cases = list(args.case or DEFAULT_CASES) + (["torch"] if args.torch else [])
    records = []
    for case in cases:
        print(f"profiling {case} ...", file=sys.stderr, flush=True)
        command = [sys.executable, os.path.abspath(__file__), "--child", case, "--steps", str(args.steps)]
        result = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in result.stdout.splitlines() if line.startswith("RECORD ")]
        if result.returncode != 0 or not lines:
            sys.exit(f"error: profiling {case} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
        record = json.loads(lines[-1][len("RECORD "):])
        record["name"] = "torchvision ssd300" if case == "torch" else case.split(":")[0]
        records.append(record)
        print(f"  {record['precision']} ({record['why']}): {1e3 * record['seconds']:.0f} ms per step",
              file=sys.stderr, flush=True)
    print(f"CPU: {cpu.describe()}")
    print(f"command: python benchmarks/{os.path.basename(__file__)} {' '.join(sys.argv[1:])}\n")
    print(table(records))
    for record in records:
        if record.get("top"):
            print(f"\nCostliest ops, {record['name']} ({record['precision']}), ms per step:")
            print("\n".join(f"  {ms:8.1f}  {what}" for what, ms in record["top"]))


if __name__ == "__main__":
    main()
