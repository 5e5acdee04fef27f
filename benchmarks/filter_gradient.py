"""Filter gradients of a preset's convolutions: TensorFlow's kernel against one matmul per tap.

For every stride-1 "same" `keras_ssd.layers.Conv2D` of the preset (SSD300 by
default) at its training input shape, times in one process, interleaved:
its forward convolution, TensorFlow's filter gradient (`Conv2DBackpropFilter`,
oneDNN's kernel where oneDNN is on), and `keras_ssd.ops.tap_filter_gradient`
(one matmul per kernel tap), all without bias, in bf16 by default. With
`--torch`, torch's filter gradient of the same convolution
(`aten.convolution_backward`, weight only, `channels_last`) is timed beside
them. TensorFlow runs one op at a time here (one inter-op thread), so each
figure is one kernel's own time. The last column says which of the two
`keras_ssd.layers.Conv2D` takes on this machine when it trains in bf16.

    python benchmarks/filter_gradient.py                  # SSD300, batch 8, bf16
    python benchmarks/filter_gradient.py --torch          # torch in the venv, as for compare.py
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import training.onednn  # noqa: E402,F401  (before TensorFlow, as training.train)


def layer_cases(preset, batch):
    """[(layer, input shape [B, H, W, Cin], kernel shape, dilation)] of the preset's stride-1 "same" convs."""
    import keras_ssd

    cfg = keras_ssd.SSDConfig.from_preset(preset, num_classes=20)
    model = keras_ssd.build_ssd(cfg, backbone_weights=None)
    cases = []
    for layer in model.layers:
        if not isinstance(layer, keras_ssd.layers.Conv2D) or not layer._tap_gradient_shape():
            continue
        shape = (batch, *layer.input.shape[1:])
        cases.append((layer, shape, tuple(layer.kernel.shape), layer.dilation_rate[0]))
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ssd300_vgg16")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--torch", action="store_true", help="also time torch's filter gradient")
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    from timing import interleaved_seconds, load_average

    from keras_ssd import cpu
    from keras_ssd.ops.filter_gradient import tap_filter_gradient

    if args.torch:
        import torch

        torch.set_num_threads(os.cpu_count())
        torch_dtype = getattr(torch, args.dtype)
    print(f"CPU: {cpu.describe()}")
    print(f"command: python benchmarks/filter_gradient.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"{args.preset}, batch {args.batch_size}, {args.dtype}; ms per call, medians of {args.repeats} "
          f"interleaved rounds; load {load_average()}\n")
    heads = ["layer", "input", "kernel", "forward", "TensorFlow filter grad", "per-tap filter grad", "tap / TF"]
    if args.torch:
        heads.append("torch filter grad")
    heads.append("Conv2D trains with")
    print("| " + " | ".join(heads) + " |\n" + "|---" * len(heads) + "|")
    totals = {"tf": 0.0, "taps": 0.0, "chosen": 0.0, "torch": 0.0}
    rng = tf.random.Generator.from_seed(0)
    for layer, shape, kernel_shape, dilation in layer_cases(args.preset, args.batch_size):
        if dilation > 1 and not cpu.onednn_enabled():
            print(f"| {layer.name} | skipped: TensorFlow's CPU kernels without oneDNN have no dilated filter gradient |")
            continue
        x = tf.cast(rng.normal(shape), args.dtype)
        dy = tf.cast(rng.normal((*shape[:3], kernel_shape[-1])), args.dtype)
        kernel = tf.cast(rng.normal(kernel_shape) * 0.05, args.dtype)
        strides, dilations = [1, 1, 1, 1], [1, dilation, dilation, 1]
        forward = tf.function(lambda: tf.nn.conv2d(x, kernel, 1, "SAME", dilations=dilation))
        native = tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=kernel_shape, out_backprop=dy, strides=strides, padding="SAME", dilations=dilations))
        taps = tf.function(lambda: tap_filter_gradient(x, dy, kernel_shape[0], dilation))
        cases = {"forward": lambda: forward().numpy(), "tf": lambda: native().numpy(), "taps": lambda: taps().numpy()}
        if args.torch:
            tx = torch.from_numpy(tf.cast(x, "float32").numpy()).permute(0, 3, 1, 2).to(torch_dtype)
            tx = tx.contiguous(memory_format=torch.channels_last)
            tdy = torch.from_numpy(tf.cast(dy, "float32").numpy()).permute(0, 3, 1, 2).to(torch_dtype)
            tdy = tdy.contiguous(memory_format=torch.channels_last)
            tw = torch.from_numpy(tf.cast(kernel, "float32").numpy()).permute(3, 2, 0, 1).to(torch_dtype)
            tw = tw.contiguous(memory_format=torch.channels_last)
            pad = dilation * (kernel_shape[0] - 1) // 2

            def torch_filter_gradient():
                with torch.no_grad():
                    torch.ops.aten.convolution_backward(
                        tdy, tx, tw, None, [1, 1], [pad, pad], [dilation, dilation], False, [0, 0], 1,
                        [False, True, False])

            cases["torch"] = torch_filter_gradient
        ms = {name: 1000 * s for name, s in interleaved_seconds(cases, repeats=args.repeats, min_seconds=0.3).items()}
        chosen = layer._tap_gradient(x)
        totals["tf"] += ms["tf"]
        totals["taps"] += ms["taps"]
        totals["chosen"] += ms["taps"] if chosen else ms["tf"]
        cells = [layer.name, "x".join(map(str, shape[1:])), "x".join(map(str, kernel_shape))
                 + (f" d{dilation}" if dilation > 1 else ""),
                 f"{ms['forward']:.1f}", f"{ms['tf']:.1f}", f"{ms['taps']:.1f}", f"{ms['taps'] / ms['tf']:.2f}"]
        if args.torch:
            totals["torch"] += ms["torch"]
            cells.append(f"{ms['torch']:.1f}")
        cells.append("per-tap" if chosen else "TensorFlow's")
        print("| " + " | ".join(cells) + " |", flush=True)
    print(f"\nfilter gradients in all: TensorFlow's {totals['tf']:.0f} ms, per-tap {totals['taps']:.0f} ms, "
          f"as Conv2D chooses here {totals['chosen']:.0f} ms"
          + (f", torch {totals['torch']:.0f} ms" if args.torch else ""))


if __name__ == "__main__":
    main()
