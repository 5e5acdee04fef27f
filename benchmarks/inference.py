"""SSD forward-pass throughput on this machine: images/s and achieved GFLOP/s.

    python benchmarks/inference.py [--preset ssd300_vgg16] [--batch-sizes 1 8] [--seconds 20]

Times the training model's forward pass (no post-processing) as a
`tf.function`, plain and with XLA (`jit_compile=True`), on random weights and
random images. GFLOP/s counts 2 FLOPs per multiply-accumulate of every conv
(31.4 GMACs = 62.7 GFLOP per SSD300 image at 20 classes).
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_ssd  # noqa: E402
from keras_ssd.model_stats import count_macs  # noqa: E402
from timing import images_per_second  # noqa: E402  (benchmarks/timing.py)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ssd300_vgg16")
    parser.add_argument("--num-classes", type=int, default=20)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seconds", type=float, default=20.0, help="timing window per row")
    args = parser.parse_args()

    cfg = keras_ssd.SSDConfig.from_preset(args.preset, num_classes=args.num_classes)
    model = keras_ssd.build_ssd(cfg)
    gflop = 2 * count_macs(model) / 1e9
    print(f"{cfg.name}, {args.num_classes} classes: {model.count_params():,} parameters, "
          f"{gflop / 2:.1f} GMACs ({gflop:.1f} GFLOP) per image; {os.cpu_count()} CPU cores")
    print(f"{'mode':<14}{'batch':>6}{'img/s':>10}{'ms/img':>10}{'GFLOP/s':>10}")
    rng = np.random.default_rng(0)
    for jit in (False, True):
        forward = tf.function(lambda x: model(x, training=False), jit_compile=jit)
        for batch in args.batch_sizes:
            images = tf.constant(rng.uniform(0, 255, (batch, cfg.image_size, cfg.image_size, 3)), tf.float32)
            rate = images_per_second(lambda: forward(images).numpy(), batch, args.seconds)
            mode = "tf.function+XLA" if jit else "tf.function"
            print(f"{mode:<14}{batch:>6}{rate:>10.2f}{1000 / rate:>10.1f}{rate * gflop:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
