"""keras_ssd against torchvision's SSD300 on this machine, side by side.

    python benchmarks/compare.py [--repeats 5] [--train-repeats 3] [--no-torch]
    python benchmarks/compare.py --quick          # ssd_tiny, one round, no warm-up, no torch:
                                                  # a smoke test (tests/test_benchmarks.py)

Prints a markdown table of images/s, SSD300 at 20 classes, batch 1 and 8:

* keras_ssd inference with post-processing (`build_detector`: decode, softmax,
  per-class top-k, NMS) through `predict_on_batch`, a `tf.function`, a
  `tf.function` whose network part is XLA-compiled, a `tf.function` in this
  machine's automatic precision when that is not float32 (`mixed_bfloat16` on
  CPUs with AVX512_BF16 or AMX: `keras_ssd.precision`), `load_detector` on the
  model saved as a `.keras` file (uint8 images, the automatic precision, as a
  user loads it), the exported SavedModel
  (`serving_default`, uint8 images; and its bf16 variant on such CPUs), `.tflite` files (float32,
  dynamic-range, int8) run by `ai_edge_litert` on all cores (batch 1 only in
  TFLite: batch 8 is 8 invocations), and the float32 and int8 (QDQ) `.onnx`
  files run by ONNX Runtime (CPU execution provider, all cores) when the `onnx`
  extra is installed;
* batch-1 latency, median and 90th percentile of single calls: a phone or a web
  service waits for one image, not for a batch;
* the network alone (no post-processing), so decode + NMS's share of
  inference is `1 - t_network / t_detector` on the same batch;
* the training step at batch 8 (`train_on_batch`, i.e. `model.fit`'s step),
  compiled by `keras_ssd.recipes.compile_for_training` with the preset's
  recipe in the precision and XLA setting `python -m training.train` takes on
  this machine (`keras_ssd.recipes.machine_settings`; for SSD300 the paper's
  SGD), and in float32 (with the XLA setting the other way where float32 is
  the machine's choice);
* the input pipeline (`keras_ssd.data.train_pipeline`, augment + encode);
* achieved GFLOP/s against this machine's peak for the row's precision,
  measured in the same run (`peak.py`: fp32, the best large SGEMM of
  numpy/OpenBLAS, TensorFlow and XNNPack; bf16, the best bf16 matmul of
  TensorFlow and torch; either raised to the fastest row of its precision
  when one beats every GEMM, so that no row is above 100%),
  counting 2 FLOPs per conv multiply-accumulate (`keras_ssd.model_stats.count_macs`)
  and 3x the forward FLOPs for a training step.

When `torch` and `torchvision` import, the same process builds torchvision's
`ssd300_vgg16(num_classes=21, weights=None)` (random init, eval mode) and gives
the keras_ssd model its exact weights (`keras_ssd.convert`), so both detectors
see the same images, produce the same raw outputs and post-process the same
candidates: score > 0.01, top 400 per class, NMS IoU 0.45, 200 per image on
both sides (torchvision's defaults and `torchvision_ssd300_config`'s). Its
`model(images)` includes its resize/normalise transform and postprocess; its
training step is `sum(model(images, targets).values()).backward()` + SGD
(momentum 0.9), which also matches anchors to boxes (keras_ssd does that in
tf.data). Torch gets as many threads as TensorFlow (`torch.set_num_threads`).
torchvision runs in float32 and `channels_last`, and on CPUs with bf16
instructions also under `torch.autocast("cpu", torch.bfloat16)` with each memory
format; the table compares against its fastest variant per row (torchvision at
its best on this machine), and a second table lists every variant.

Every case is warmed up, then sampled once per round, the cases in turn
(rotated each round), and the median of the rounds is reported; frameworks
alternate within a round, so machine load hits both alike and the keras/torch
ratios hold even when absolute figures move. The date, the command and the
load average (`os.getloadavg()`) before and after are printed with the table.
"""

import argparse
import contextlib
import datetime
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# torch loads before TensorFlow: the other order segfaults in libc at `import torch`
# (torch 2.14.1's CUDA build from PyPI beside TensorFlow 2.21).
try:
    import torch
    import torchvision
except ImportError:
    torch = torchvision = None

import keras
import numpy as np
import tensorflow as tf
from peak import describe as describe_peak
from peak import measure_bf16_peak, measure_peak
from pipeline import pipeline_throughput
from timing import interleaved_seconds, load_average

import keras_ssd
from keras_ssd import cpu, export, precision, recipes
from keras_ssd.model_stats import count_macs

# (score threshold, top-k per class, NMS IoU, detections per image): both sides.
POSTPROCESS = {"score_threshold": 0.01, "pre_nms_top_k": 400, "nms_iou_threshold": 0.45, "max_detections": 200}
# The case of `keras_ssd.export.load_detector` on a saved `.keras` file (this machine's auto precision).
KERAS_FILE = "load_detector .keras"
# Ground truth of the training step: normalised yxyx, 0-based object classes.
TRAIN_BOXES = np.array([[0.1, 0.1, 0.5, 0.4], [0.3, 0.5, 0.9, 0.95]], np.float32)
TRAIN_LABELS = np.array([1, 5], np.int32)


def log(message):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def import_torch():
    """(torch, torchvision), or None when either is missing."""
    return None if torch is None or torchvision is None else (torch, torchvision)


# --- keras_ssd -------------------------------------------------------------------


def keras_models(args, torch_side):
    """(model, torch_model or None): keras_ssd's SSD, with torchvision's weights when it runs."""
    if torch_side is None:
        cfg = keras_ssd.SSDConfig.from_preset(args.preset, num_classes=args.num_classes)
        return keras_ssd.build_ssd(cfg), None
    torch, torchvision = torch_side
    from keras_ssd.convert import convert_torchvision_ssd300

    torch.manual_seed(0)
    torch_model = torchvision.models.detection.ssd300_vgg16(
        weights=None, weights_backbone=None, num_classes=args.num_classes + 1
    ).eval()
    # The converter takes torchvision's own post-processing settings.
    torch_model.score_thresh = POSTPROCESS["score_threshold"]
    torch_model.topk_candidates = POSTPROCESS["pre_nms_top_k"]
    torch_model.nms_thresh = POSTPROCESS["nms_iou_threshold"]
    torch_model.detections_per_img = POSTPROCESS["max_detections"]
    state = {key: value.detach().numpy() for key, value in torch_model.state_dict().items()}
    return convert_torchvision_ssd300(state), torch_model


def twin(model):
    """A second, independent copy of `model` (own variables, own compiled step)."""
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def keras_inference_cases(model, detector, images, args):
    """name -> zero-argument callable, for one batch of uint8 `images` [B, S, S, 3]."""
    floats = tf.constant(images, tf.float32)
    decoder = detector.get_layer("detection_decoder")
    network = tf.function(lambda x: model(x, training=False))
    network_xla = tf.function(lambda x: model(x, training=False), jit_compile=True)
    detect = tf.function(lambda x: detector(x, training=False))
    # combined_non_max_suppression has no XLA kernel: XLA compiles the network only.
    detect_xla = tf.function(lambda x: decoder(network_xla(x)))
    decode = tf.function(decoder)
    y_pred = network(floats)
    cases = {
        "predict": lambda: detector.predict_on_batch(floats),
        "tf.function": lambda: detect(floats)["num_detections"].numpy(),
        "tf.function+XLA": lambda: detect_xla(floats)["num_detections"].numpy(),
        "network": lambda: network(floats).numpy(),
        "decoder": lambda: decode(y_pred)["num_detections"].numpy(),
    }
    if args.policy_detector is not None:
        cases[f"tf.function {args.policy}"] = lambda: args.policy_detector(floats)["num_detections"].numpy()
    uint8 = tf.constant(images)
    for name, signature in args.saved_models.items():
        cases[name] = lambda signature=signature: signature(images=uint8)["num_detections"].numpy()
    for name, runner in args.exported.items():
        cases[name] = lambda runner=runner: runner(images)["num_detections"]
    return cases


def onnx_detectors(model, images, tmp, quick, threads):
    """name -> `OnnxDetector` of `model`'s float32 and int8 `.onnx` exports, or {} without the `onnx` extra."""
    detectors = {}
    for quantize, name in (("none", "ONNX Runtime"), ("int8", "ONNX Runtime int8")):
        log(f"exporting {name}")
        calibration = images[: 2 if quick else 8] if quantize == "int8" else None
        try:
            path = export.export_onnx(model, os.path.join(tmp, f"model_{quantize}.onnx"), quantize=quantize,
                                      calibration=calibration, verbose=False, **POSTPROCESS)
        except ImportError as error:
            log(f"ONNX Runtime not run: {error}")
            return {}
        detectors[name] = export.OnnxDetector(path, num_threads=threads)
    return detectors


def tflite_detectors(model, images, tmp, quick, threads):
    """name -> `TFLiteDetector` for float32, dynamic-range and int8 files of `model`."""
    detectors = {}
    names = {"none": "TFLite float32", "dynamic": "TFLite dynamic", "int8": "TFLite int8"}
    for quantize, name in names.items():
        log(f"converting to {name}")
        path = os.path.join(tmp, f"model_{quantize}.tflite")
        calibration = images[: 2 if quick else 8] if quantize == "int8" else None
        export.export_tflite(
            model, path, quantize=quantize, calibration=calibration, verbose=False, **POSTPROCESS
        )
        detectors[name] = export.TFLiteDetector(path, num_threads=threads)
    return detectors


def keras_train_step(model, images, recipe):
    """`model.fit`'s step on a copy of `model` in `recipe.precision`, compiled with `recipe`: one call = one batch."""
    cfg = model.ssd_config
    copy = precision.with_precision(twin(model), recipe.precision)
    recipes.compile_for_training(copy, recipe, steps_per_epoch=1000)
    encoder = keras_ssd.TargetEncoder(cfg)
    y_true = encoder(tf.constant(TRAIN_BOXES), tf.constant(TRAIN_LABELS)).numpy()
    y_true = np.stack([y_true] * len(images))
    floats = images.astype(np.float32)
    return lambda: copy.train_on_batch(floats, y_true)


# --- torchvision -------------------------------------------------------------------


def torch_variants(torch, bf16_cpu):
    """name -> (autocast dtype or None, channels_last): torchvision's ways to run on this CPU."""
    variants = {"fp32": (None, False), "fp32 channels_last": (None, True)}
    if bf16_cpu:
        variants.update({"bf16 autocast": (torch.bfloat16, False), "bf16 autocast channels_last": (torch.bfloat16, True)})
    return variants


def _torch_context(torch, dtype):
    """`torch.autocast` to `dtype` on the CPU, or nothing for float32."""
    return torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _torch_in_format(torch, torch_model, channels_last):
    import copy

    model = copy.deepcopy(torch_model)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def torch_inference_cases(torch, torch_model, images, variants):
    """torchvision's `model(images)` (transform + network + postprocess) per variant, and its fp32 network alone."""
    tensors = list(torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0))

    def detector(dtype, channels_last):
        model = _torch_in_format(torch, torch_model, channels_last)

        def detect():
            with torch.inference_mode(), _torch_context(torch, dtype):
                detections = model(tensors)
            return [d["boxes"].shape for d in detections]

        return detect

    def network():
        with torch.inference_mode():
            transformed, _ = torch_model.transform(tensors)
            features = list(torch_model.backbone(transformed.tensors).values())
            return torch_model.head(features)["cls_logits"].shape

    cases = {f"torch {name}": detector(*variant) for name, variant in variants.items()}
    return {**cases, "torch network": network}


def torch_train_step(torch, torch_model, images, dtype=None, channels_last=False, labels=TRAIN_LABELS):
    """torchvision's training step on a copy of `torch_model` (autocast to `dtype`): loss, backward, SGD step.

    Every image holds the two `TRAIN_BOXES`, of classes `labels` (0-based object classes).
    """
    model = _torch_in_format(torch, torch_model, channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    size = images.shape[1]
    xyxy = torch.from_numpy(TRAIN_BOXES[:, [1, 0, 3, 2]] * size)
    targets = [
        {"boxes": xyxy, "labels": torch.from_numpy(np.asarray(labels, np.int64) + 1)}
        for _ in images
    ]
    tensors = list(torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0))

    def step():
        optimizer.zero_grad()
        with _torch_context(torch, dtype):
            loss = sum(model(tensors, targets).values())
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


# --- the table -------------------------------------------------------------------------


def fmt(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}"


def row(what, batch, keras_rate, torch_rate=None, gflop=None, peaks=(None, None), cpu_ratio=None):
    """A table row; `peaks` the (keras_ssd, torch) peaks for their precision; `cpu_ratio` is torch's CPU
    seconds per image over keras_ssd's."""
    ratio = None if keras_rate is None or torch_rate is None else keras_rate / torch_rate

    def achieved(rate, peak):
        if gflop is None or rate is None:
            return "—"
        share = "no int8 peak measured" if peak is None else f"{100 * rate * gflop / peak:.0f}%"
        return f"{rate * gflop:.0f} ({share})"

    return (f"| {what} | {batch} | {fmt(keras_rate)} | {fmt(torch_rate)} | {fmt(ratio)} | {fmt(cpu_ratio)} "
            f"| {achieved(keras_rate, peaks[0])} | {achieved(torch_rate, peaks[1])} |")


def latency_table(rows, calls, batch, torch_name):
    """Markdown lines: median and p90 ms of single calls at `batch`, keras_ssd's paths and torch's fastest."""
    lines = ["", f"Latency at batch {batch}, single calls (ms):", "",
             "| what | median ms | p90 ms |", "|---|---|---|"]
    for what, name in rows + [(f"torchvision `model(images)`, {torch_name.removeprefix('torch ')}", torch_name)]:
        durations = calls.get((name, batch))
        if durations:
            ms = 1000 * np.asarray(durations)
            lines.append(f"| {what} | {np.median(ms):.1f} | {np.percentile(ms, 90):.1f} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="ssd_tiny, one round, no warm-up, no torch: a smoke test")
    parser.add_argument("--preset", default=None, help="default ssd300_vgg16 (ssd_tiny with --quick)")
    parser.add_argument("--num-classes", type=int, default=20)
    parser.add_argument("--batch-sizes", type=int, nargs=2, default=[1, 8], metavar=("SMALL", "LARGE"))
    parser.add_argument("--repeats", type=int, default=None, help="inference rounds (default 5, 1 with --quick)")
    parser.add_argument("--train-repeats", type=int, default=None, help="training rounds (default 3)")
    parser.add_argument("--min-seconds", type=float, default=None, help="shortest sample (default 2)")
    parser.add_argument("--peak-gflops", type=float, default=None,
                        help="the machine's fp32 peak (default: measured in this run, benchmarks/peak.py)")
    parser.add_argument("--no-torch", action="store_true", help="skip torchvision even when it imports")
    parser.add_argument("--no-tflite", action="store_true")
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--threads", type=int, default=None,
                        help="LiteRT and ONNX Runtime threads (default: all cores, as TensorFlow and torch)")
    args = parser.parse_args()
    quick = args.quick
    args.preset = args.preset or ("ssd_tiny" if quick else "ssd300_vgg16")
    repeats = args.repeats or (1 if quick else 5)
    train_repeats = args.train_repeats or (1 if quick else 3)
    min_seconds = args.min_seconds if args.min_seconds is not None else (0.0 if quick else 2.0)
    warmup = 0 if quick else 1  # --quick checks that everything runs, not its speed
    small, large = args.batch_sizes

    command = " ".join(["python"] + sys.argv)
    started = datetime.datetime.now().astimezone()
    load_start = load_average()
    torch_side = None if (quick or args.no_torch) else import_torch()
    threads = os.cpu_count()
    runtime_threads = args.threads or threads
    if torch_side is not None:
        torch_side[0].set_num_threads(threads)
    if args.peak_gflops:
        peak, peak_line = args.peak_gflops, f"fp32 peak {args.peak_gflops:.0f} GFLOP/s (given)"
    else:
        peak, by_engine = measure_peak(runtime_threads, seconds=0.5 if quick else 3.0, log=log)
        peak_line = describe_peak(peak, by_engine, runtime_threads)
    # The machine's own precision (keras_ssd.precision): bf16 rows and the bf16 peak only where it is bf16.
    policy_choice = precision.resolve_precision("auto")
    policy = policy_choice.value
    bf16_cpu = policy == "mixed_bfloat16"
    peaks = {"float32": peak, policy: peak}
    if bf16_cpu:
        peaks[policy], bf16_engines = measure_bf16_peak(seconds=0.5 if quick else 3.0, log=log)
        peak_line += f"; measured bf16 peak {peaks[policy]:.1f} GFLOP/s (best bf16 GEMM: " + ", ".join(
            f"{name} {value:.1f}" for name, value in bf16_engines.items()) + ")"
    variants = torch_variants(torch_side[0], bf16_cpu) if torch_side is not None else {}
    variant_policy = {f"torch {name}": "float32" if dtype is None else policy for name, (dtype, _) in variants.items()}

    model, torch_model = keras_models(args, torch_side)
    cfg = model.ssd_config
    detector = keras_ssd.build_detector(model, cfg, **POSTPROCESS)
    args.policy = policy
    args.policy_detector = None
    if policy != "float32":
        fast = keras_ssd.build_detector(precision.with_precision(model, policy), cfg, **POSTPROCESS)
        args.policy_detector = tf.function(lambda x: fast(x, training=False))
    gflop = 2 * count_macs(model) / 1e9
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (large, cfg.image_size, cfg.image_size, 3), dtype=np.uint8)

    with tempfile.TemporaryDirectory() as tmp:
        log("exporting the SavedModel(s)")
        args.saved_models = {}
        for saved_precision in dict.fromkeys(("float32", policy)):
            path = export.export_saved_model(model, tmp, name=f"bench_{precision.SHORT_NAMES[saved_precision]}",
                                             version=1, precision=saved_precision, **POSTPROCESS)
            name = "SavedModel" if saved_precision == "float32" else f"SavedModel {saved_precision}"
            args.saved_models[name] = tf.saved_model.load(path).signatures["serving_default"]
        keras_path = os.path.join(tmp, "model.keras")
        model.save(keras_path)
        args.exported = {KERAS_FILE: export.load_detector(keras_path, **POSTPROCESS)}
        if not args.no_tflite:
            args.exported.update(tflite_detectors(model, images, tmp, quick, runtime_threads))
        if not args.no_onnx:
            args.exported.update(onnx_detectors(model, images, tmp, quick, runtime_threads))

        cases = {}
        for batch in (small, large):
            batch_images = images[:batch]
            for name, fn in keras_inference_cases(model, detector, batch_images, args).items():
                cases[(name, batch)] = fn
            if torch_side is not None:
                for name, fn in torch_inference_cases(torch_side[0], torch_model, batch_images, variants).items():
                    cases[(name, batch)] = fn
        log(f"inference: {len(cases)} cases x {repeats} rounds")
        cpu_time, calls = {}, {}
        seconds = interleaved_seconds(
            cases, repeats, warmup=warmup, min_seconds=min_seconds, log=log, cpu_seconds=cpu_time,
            call_seconds=calls,
        )
        load_inference = load_average()

    # The training step as `training.train` runs it on this machine, and in float32.
    recipe = recipes.for_preset(args.preset).replace(batch_size=large)
    settings = recipes.machine_settings(recipe, cfg)
    chosen = recipe.replace(**{name: choice.value for name, choice in settings.items()})
    if chosen.precision != "float32":
        other = recipe.replace(precision="float32")
        other = other.replace(jit_compile=recipes.machine_settings(other, cfg)["jit_compile"].value)
    else:
        other = chosen.replace(jit_compile=chosen.jit_compile is not True)
    train_cases = {"fit": keras_train_step(model, images, chosen), "fit, other": keras_train_step(model, images, other)}
    for name, (dtype, channels_last) in variants.items():
        train_cases[f"torch {name}"] = torch_train_step(torch_side[0], torch_model, images, dtype, channels_last)
    log(f"training step: {len(train_cases)} cases x {train_repeats} rounds")
    train_cpu = {}
    train_seconds = interleaved_seconds(
        train_cases, train_repeats, warmup=warmup, log=log, cpu_seconds=train_cpu
    )
    load_train = load_average()

    log("input pipeline")
    pipe_batch = 8 if quick else 32
    pipe_rate = pipeline_throughput(cfg, pipe_batch, 2 if quick else 10, examples=16 if quick else 64)
    load_end = load_average()

    def rate(name, batch):
        key = (name, batch)
        return batch / seconds[key] if key in seconds else None

    def train_rate(name):
        return large / train_seconds[name] if name in train_seconds else None

    def torch_best(batch):
        """The fastest torchvision detector variant at `batch` (case name), or None."""
        names = [name for name in variant_policy if (name, batch) in seconds]
        return min(names, key=lambda name: seconds[(name, batch)]) if names else None

    train_best = min((n for n in train_seconds if n.startswith("torch")), key=train_seconds.get, default=None)

    def cpu_ratio(name, batch, torch_name):
        """torch's CPU seconds per image / keras_ssd's (same batch), or None."""
        if batch is None:
            return train_cpu[torch_name] / train_cpu[name] if torch_name in train_cpu else None
        key, torch_key = (name, batch), (torch_name, batch)
        return cpu_time[torch_key] / cpu_time[key] if torch_key in cpu_time and key in cpu_time else None

    def fastest_row(inference_names, train_names):
        """(label, GFLOP/s) of the fastest of these inference and training rows, or (None, 0)."""
        achieved = {f"{name}, batch {batch}": rate(name, batch) * gflop
                    for (name, batch) in seconds if name in inference_names}
        achieved.update({f"{name} training step": train_rate(name) * 3 * gflop for name in train_names})
        fastest = max(achieved, key=achieved.get, default=None)
        return fastest, achieved.get(fastest, 0.0)

    # No row above 100% of its ceiling: a row faster than every GEMM of its precision becomes the peak.
    fp32_inference = ["predict", "tf.function", "tf.function+XLA", "SavedModel", "TFLite float32", "ONNX Runtime",
                      "network", "torch network"] + [n for n, p in variant_policy.items() if p == "float32"]
    fp32_train = [n for n in train_seconds if variant_policy.get(n) == "float32"]
    fp32_train += [name for name, used in (("fit", chosen), ("fit, other", other)) if used.precision == "float32"]
    fastest, reached = fastest_row(fp32_inference, fp32_train)
    if not args.peak_gflops and reached > peak:
        peak_line += f"; fp32 peak raised to {reached:.1f} GFLOP/s, what {fastest} reached (above every SGEMM measured)"
        peak = peaks["float32"] = reached
    if bf16_cpu:
        bf16_inference = [f"tf.function {policy}", f"SavedModel {policy}", KERAS_FILE] + [
            name for name, row_policy in variant_policy.items() if row_policy == policy]
        train_bf16 = [name for name in train_seconds if variant_policy.get(name) == policy]
        train_bf16 += ["fit"] if chosen.precision == policy else []
        fastest, reached = fastest_row(bf16_inference, train_bf16)
        if reached > peaks[policy]:
            peak_line += (f"; bf16 peak raised to {reached:.1f} GFLOP/s, what {fastest} reached "
                          "(above every GEMM measured)")
            peaks[policy] = reached

    def compare(what, name, batch, keras_policy="float32"):
        best = torch_best(batch)
        return row(what, batch, rate(name, batch), rate(best, batch), gflop,
                   (peaks.get(keras_policy), peaks.get(variant_policy.get(best))), cpu_ratio(name, batch, best))

    lines = [
        (f"keras_ssd vs torchvision at its best on this machine, {cfg.name} at {cfg.num_classes} classes "
         f"({model.count_params():,} parameters, {gflop / 2:.1f} GMACs = {gflop:.1f} GFLOP per image), "
         f"{cfg.image_size} px"),
        "",
        ("| what | batch | keras_ssd img/s | torchvision img/s (fastest variant) | keras / torch "
         "| keras / torch, CPU time | keras_ssd GFLOP/s (% of peak) | torchvision GFLOP/s (% of peak) |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [
        ("Keras `predict_on_batch`, detector", "predict", "float32"),
        ("Keras `tf.function`, detector", "tf.function", "float32"),
        (f"Keras `tf.function`, detector, {policy} (this machine's auto)", f"tf.function {policy}", policy),
        ("Keras `tf.function`, XLA network + decoder", "tf.function+XLA", "float32"),
        (f"`load_detector` on a `.keras` file (uint8, {policy}: auto)", KERAS_FILE, policy),
        ("SavedModel `serving_default` (uint8)", "SavedModel", "float32"),
        (f"SavedModel `serving_default`, {policy} variant", f"SavedModel {policy}", policy),
        ("TFLite float32 (LiteRT)", "TFLite float32", "float32"),
        ("TFLite dynamic-range (LiteRT)", "TFLite dynamic", "int8"),
        ("TFLite int8 (LiteRT)", "TFLite int8", "int8"),
        ("ONNX Runtime (CPU)", "ONNX Runtime", "float32"),
        ("ONNX Runtime int8 (QDQ, CPU)", "ONNX Runtime int8", "int8"),
    ]
    rows = [r for r in rows if (r[1], small) in seconds]
    for what, name, keras_policy in rows:
        for batch in (small, large):
            if (name, batch) in seconds:
                lines.append(compare(what, name, batch, keras_policy))
    for batch in (small, large):
        lines.append(row("network only, no post-processing (both float32)", batch, rate("network", batch),
                         rate("torch network", batch), gflop, (peak, peak),
                         cpu_ratio("network", batch, "torch network")))
    for batch in (small, large):
        share = 1 - seconds[("network", batch)] / seconds[("tf.function", batch)]
        alone = seconds[("decoder", batch)] / seconds[("tf.function", batch)]
        torch_share = "—"
        if ("torch fp32", batch) in seconds:
            torch_share = f"{100 * (1 - seconds[('torch network', batch)] / seconds[('torch fp32', batch)]):.1f}%"
        lines.append(
            f"| decode + NMS share of inference: 1 - network/detector (decoder alone) | {batch} | "
            f"{100 * share:.1f}% ({100 * alone:.1f}%, {1000 * seconds[('decoder', batch)]:.0f} ms) | "
            f"{torch_share} | — | — | — | — |"
        )
    train_peaks = (peaks[chosen.precision], peaks.get(variant_policy.get(train_best)))
    lines.append(row(f"training step (`train_on_batch`), `training.train`'s defaults here: {recipe.optimizer}, "
                     f"{chosen.precision}, jit_compile {chosen.jit_compile}", large, train_rate("fit"),
                     train_rate(train_best), 3 * gflop, train_peaks, cpu_ratio("fit", None, train_best)))
    lines.append(row(f"training step, {other.precision}, jit_compile {other.jit_compile}", large,
                     train_rate("fit, other"), train_rate(train_best), 3 * gflop,
                     (peaks[other.precision], train_peaks[1]), cpu_ratio("fit, other", None, train_best)))
    lines.append(f"| input pipeline (augment + encode, VOC-sized images) | {pipe_batch} | {pipe_rate:.1f} "
                 f"| — | — | — | {pipe_rate / train_rate('fit'):.0f}x the training step | — |")
    if variants:
        lines += ["", "torchvision's variants (img/s; the table above takes the fastest of each row):", "",
                  f"| variant | detector b{small} | detector b{large} | training step b{large} |",
                  "|---|---|---|---|"]
        for name in variant_policy:
            lines.append(f"| {name.removeprefix('torch ')} | {fmt(rate(name, small))} | {fmt(rate(name, large))} "
                         f"| {fmt(train_rate(name))} |")
    lines += latency_table([(what, name) for what, name, _ in rows], calls, small, torch_best(small) or "torch")
    torch_note = (
        f"torch {torch_side[0].__version__}, torchvision {torch_side[1].__version__}, "
        f"{torch_side[0].get_num_threads()} threads, same weights and images"
        if torch_side is not None
        else "torchvision not run (" + ("--quick" if quick else "--no-torch" if args.no_torch else "not installed") + ")"
    )
    lines += [
        "",
        f"- date: {started:%Y-%m-%d %H:%M %Z}; command: `{command}`",
        f"- CPU: {cpu.describe()}; {threads} cores",
        f"- precision here (`keras_ssd.precision`): {policy} ({policy_choice.reason})",
        f"- peaks: {peak_line}",
        f"- TensorFlow {tf.__version__}, Keras {keras.__version__}; {torch_note}",
        (f"- load average (1 / 5 / 15 min): start {load_start}; after inference {load_inference}; "
        f"after training {load_train}; end {load_end}"),
        (f"- medians of {repeats} interleaved rounds (inference, each sample >= {min_seconds:g} s) and "
        f"{train_repeats} (training), after warm-up; LiteRT and ONNX Runtime: {runtime_threads} thread(s); "
        f"TFLite batch {large} = {large} single-image calls"),
        "- post-processing on both sides: score > {score_threshold}, top {pre_nms_top_k} per class, "
        "NMS IoU {nms_iou_threshold}, {max_detections} per image (TFLite: its "
        "TFLite_Detection_PostProcess op with the same thresholds)".format(**POSTPROCESS),
        ("- GFLOP/s: 2 FLOPs per conv MAC; a training step counts 3x the forward FLOPs; % of the peak of the "
         "row's precision (int8 rows have none: their FLOPs are 8-bit operations)"),
        ("- CPU time: process CPU seconds per image (`time.process_time`, all threads), torch's over "
        "keras_ssd's: the work each does, which moves far less with machine load than wall time"),
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
