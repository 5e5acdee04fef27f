"""Input pipeline vs training throughput for SSD300 on this machine.

Measures, one after the other on the same CPU:

1. the training input pipeline (`keras_ssd.data.train_pipeline`: full SSD
   augmentation + `TargetEncoder` for SSD300's 8732 default boxes, parallel
   map, batching) on VOC-sized images (375..500 px) held in memory, so
   decoding and disk are not counted;
2. the SSD300 training step (`model.fit` on random images and targets).

Prints both in images/s and their ratio; the issue's bar is a ratio >= 10 so
the pipeline never limits training.

    python benchmarks/pipeline.py [--batch-size 8] [--train-steps 3]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import keras_ssd
from keras_ssd import data
from timing import images_per_second  # benchmarks/timing.py


def pipeline_throughput(cfg, batch_size, batches, examples=64):
    source = data.load(
        "shapes", "train", num_examples=examples, image_size=(375, 500)
    ).cache()
    for _ in source:  # fill the cache: generation is not part of the measurement
        pass
    ds = data.train_pipeline(source, cfg, batch_size, seed=0, repeat=True)
    it = iter(ds)
    # Warm-up: tracing, autotune.
    return images_per_second(lambda: next(it)[1].numpy(), batch_size, 0, warmup=3, min_calls=batches)


def training_throughput(cfg, batch_size, steps):
    model = keras_ssd.build_ssd(cfg)
    model.compile(
        optimizer=keras.optimizers.SGD(1e-3, momentum=0.9), loss=keras_ssd.SSDLoss()
    )
    encoder = keras_ssd.TargetEncoder(cfg)
    rng = np.random.default_rng(0)
    images = rng.uniform(
        0, 255, (batch_size, cfg.image_size, cfg.image_size, 3)
    ).astype("float32")
    boxes = tf.constant([[0.1, 0.1, 0.5, 0.4], [0.3, 0.5, 0.9, 0.95]])
    y_true = np.stack([encoder(boxes, tf.constant([1, 5])).numpy()] * batch_size)
    # Warm-up: tracing.
    return images_per_second(
        lambda: model.train_on_batch(images, y_true), batch_size, 0, warmup=1, min_calls=steps
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="ssd300_vgg16")
    parser.add_argument("--batch-size", type=int, default=8, help="training batch size")
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--pipeline-batch-size", type=int, default=32)
    parser.add_argument("--pipeline-batches", type=int, default=20)
    args = parser.parse_args()

    cfg = keras_ssd.SSDConfig.from_preset(args.preset, num_classes=20)
    print(
        f"preset {cfg.name}: {cfg.image_size} px input, {cfg.num_boxes} default boxes; "
        f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}"
    )
    pipe = pipeline_throughput(cfg, args.pipeline_batch_size, args.pipeline_batches)
    print(
        f"input pipeline (augment + encode, batch {args.pipeline_batch_size}): {pipe:8.1f} img/s"
    )
    train = training_throughput(cfg, args.batch_size, args.train_steps)
    print(
        f"training step (model.fit step, batch {args.batch_size}):        {train:8.2f} img/s"
    )
    print(
        f"ratio pipeline / training: {pipe / train:.0f}x "
        f"(the pipeline needs {100 * train / pipe:.1f}% of the CPU time training takes)"
    )


if __name__ == "__main__":
    main()
