"""Train an SSD: `python -m training.train` (ssd_tiny on the built-in "shapes" data).

The main job: build the datasets and the model, fit with the preset's recipe
(`PRESET_RECIPES`), evaluate mAP on the validation split each epoch, keep the best and
the last checkpoint in `--output`, and print the per-class AP table of the
best checkpoint. Re-running the same command after a crash resumes from the
last finished epoch (`keras.callbacks.BackupAndRestore`).

Files in `--output`: `best.keras` (highest val_mAP), `last.keras`,
`log.csv`, `logs/` (TensorBoard), `metrics.json` (final evaluation),
`backup/` (resume state; removed when training finishes). A run that fails before
its first checkpoint removes the `--output` folder it created (never one that existed).

The paper's VOC07+12 SSD300 (77.2 mAP on VOC07 test, needs a GPU):

    python -m training.train --preset ssd300_vgg16 --dataset voc/2007+voc/2012 \\
        --train-split train+validation --val-dataset voc/2007 --val-split test \\
        --backbone-weights imagenet --batch-size 32 --learning-rate 1e-3 \\
        --epochs 232 --schedule step --warmup-epochs 1 --output runs/ssd300_voc
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import keras
import tensorflow as tf

import keras_ssd
from keras_ssd import evaluation
from keras_ssd.callbacks import ResumableBackup, SafeModelCheckpoint
from keras_ssd.distribute import STRATEGIES, is_chief, make_strategy, worker_index
from keras_ssd.optimizers import OPTIMIZERS
from training import cli, options

DEFAULTS = {
    "preset": "ssd_tiny",
    "image_size": None,
    "model_options": None,
    "dataset": "shapes",
    "train_split": "train",
    "val_dataset": None,
    "val_split": None,
    "image_dir": None,
    "dataset_options": None,
    "augment": None,
    "val_image_dir": None,
    "num_classes": None,
    "epochs": 9,
    "batch_size": 32,
    "learning_rate": None,
    "warmup_epochs": 1.0,
    "optimizer": None,
    "schedule": "cosine",
    "weight_decay": 5e-4,
    "clip_norm": 10.0,
    "backbone_weights": None,
    "output": "runs/ssd_tiny_shapes",
    "metric": "voc07",
    "eval_every": 1,
    "steps_per_epoch": None,
    "train_examples": None,
    "val_examples": None,
    "mixed_precision": False,
    "jit_compile": "auto",
    "strategy": "default",
    "seed": 0,
}
# What a preset's unset options become, before the generic `RECIPE_FALLBACKS`.
# ssd_tiny trains from scratch on a CPU in minutes: there AdamW learns faster than
# the paper's SGD, and at its 160 px input the paper's 4x zoom-out would shrink
# most "shapes" objects to a few pixels, so it zooms out 2x at most.
PRESET_RECIPES = {
    "ssd_tiny": {"optimizer": "adamw", "learning_rate": 2e-3, "augment": {"max_expand_ratio": 2.0}},
}
# The paper's SGD at its learning rate for batch 32 (VGG16 with ImageNet weights)
# and its augmentation.
RECIPE_FALLBACKS = {"optimizer": "sgd", "learning_rate": 1e-3, "augment": {}}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--config", help="YAML or JSON file of these options (underscored names); flags win")
    add("--preset", help=f"SSDConfig preset (default {DEFAULTS['preset']})")
    add("--image-size", type=int,
        help="network input side in px (default: the preset's); the default boxes scale "
        "with it (SSDConfig.with_image_size)")
    add("--model-options", type=json.loads,
        help='JSON SSDConfig field overrides of the preset, e.g. \'{"batch_norm_momentum": 0.9}\'')
    add("--dataset", help="'shapes', 'voc/2007', 'coco/2017', a VOC dir or a COCO json; "
        "join several with '+' (default shapes)")
    add("--train-split", help="split to train on (default train)")
    add("--val-dataset", help="validation source (default: --dataset)")
    add("--val-split", help="validation split (default: 'val' for a VOC dir, else 'validation')")
    add("--image-dir", help="image directory of a COCO json --dataset")
    add("--dataset-options", type=json.loads,
        help='JSON keyword options for keras_ssd.data.load of every split, e.g. '
        '\'{"object_size": [0.1, 0.8]}\' for shapes or \'{"data_dir": "..."}\' for TFDS')
    add("--augment", type=json.loads,
        help="JSON: false for no augmentation, or keras_ssd.data.AugmentOptions fields that "
        "override the paper's, e.g. '{\"max_expand_ratio\": 2}' (default: the preset's recipe)")
    add("--val-image-dir", help="image directory of a COCO json --val-dataset")
    add("--num-classes", type=int, help="object classes (default: from the dataset)")
    add("--epochs", type=int)
    add("--batch-size", type=int, help="global batch size")
    add("--learning-rate", type=float,
        help="learning rate at batch 32, scaled linearly (default: the preset's recipe, else 1e-3)")
    add("--warmup-epochs", type=float)
    add("--optimizer", choices=list(OPTIMIZERS),
        help="sgd (the paper's) or adamw (default: the preset's recipe, else sgd)")
    add("--schedule", choices=["cosine", "step"])
    add("--weight-decay", type=float, help="the paper's L2 weight decay (5e-4)")
    add("--clip-norm", type=float, help="clip gradients to this global norm; 0 turns it off")
    add("--backbone-weights", help="'imagenet' or a keras.applications.VGG16 weights file")
    add("--output", help="directory for checkpoints and logs")
    add("--metric", choices=list(evaluation.METRICS))
    add("--eval-every", type=int, help="evaluate mAP every N epochs")
    add("--steps-per-epoch", type=int, help="cap on training steps per epoch")
    add("--train-examples", type=int, help="use only the first N training examples")
    add("--val-examples", type=int, help="use only the first N validation examples")
    add("--mixed-precision", action="store_const", const=True,
        help="mixed_float16 on GPU, mixed_bfloat16 otherwise")
    add("--jit-compile", choices=["auto", "true", "false"], help="XLA for the train step")
    add("--strategy", choices=list(STRATEGIES))
    add("--seed", type=int)
    return parser


def with_recipe(args):
    """`args` with unset recipe options taken from `PRESET_RECIPES`, then `RECIPE_FALLBACKS`.

    A preset's learning rate belongs to its optimizer: with another optimizer
    asked for, the fallback rate applies.
    """
    preset = dict(PRESET_RECIPES.get(args.preset, {}))
    if args.optimizer not in (None, preset.get("optimizer")):
        preset.pop("learning_rate", None)
    recipe = {**RECIPE_FALLBACKS, **preset}
    filled = {key: value for key, value in recipe.items() if getattr(args, key) is None}
    return argparse.Namespace(**{**vars(args), **filled})


def _augment_options(value):
    """`train_pipeline`'s `augment`: False, or the paper's options updated by a dict."""
    if value is False:
        return False
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"--augment must be false or a JSON object of AugmentOptions fields, got {value!r}")
    fields = {f.name for f in dataclasses.fields(keras_ssd.data.AugmentOptions)}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise ValueError(f"--augment: unknown AugmentOptions field(s) {unknown}; valid: {sorted(fields)}")
    return keras_ssd.data.AugmentOptions(**value)


def _jit(value):
    return {"auto": "auto", "true": True, "false": False}.get(str(value).lower(), value)


def _shardable(dataset):
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(opts)


def run(args):
    """Trains as `args` (a namespace with the `DEFAULTS` keys) says; returns the final metrics."""
    start = time.time()
    args = with_recipe(args)
    keras.utils.set_random_seed(args.seed)
    if args.mixed_precision:
        policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
        keras.mixed_precision.set_global_policy(policy)
    strategy = make_strategy(args.strategy)
    chief = is_chief()
    output = args.output if chief else os.path.join(args.output, "workers", f"worker-{worker_index()}")
    # A run that fails before its first checkpoint has nothing to resume from:
    # the folder it created goes with it.
    with cli.output_folder(output, keep=lambda: os.path.exists(os.path.join(output, "last.keras"))):
        return _train(args, strategy, output, chief, start)


def _train(args, strategy, output, chief, start):
    """`run` after the set-up: builds, fits and evaluates; returns the final metrics."""
    names = keras_ssd.data.class_names(args.dataset.split("+")[0])
    num_classes = args.num_classes or len(names)
    if num_classes < len(names):
        raise ValueError(
            f"--num-classes {num_classes} is fewer than the {len(names)} classes of "
            f"{args.dataset!r}: {names}"
        )
    if num_classes != len(names):
        names = None
    overrides = dict(args.model_options or {})
    if "num_classes" in overrides:
        raise ValueError("--model-options: give the class count with --num-classes, not num_classes")
    if args.image_size:
        overrides["image_size"] = args.image_size
    cfg = keras_ssd.SSDConfig.from_preset(args.preset, **{**overrides, "num_classes": num_classes})

    train = keras_ssd.data.train_pipeline(
        options.load_dataset(
            args.dataset, args.train_split, args.image_dir, args.dataset_options, args.train_examples
        ),
        cfg,
        args.batch_size,
        augment=_augment_options(args.augment),
        seed=args.seed,
    )
    steps_per_epoch = int(train.cardinality())
    if steps_per_epoch < 0:  # unknown (a source that filters bad files): count once
        print("Counting training batches for the learning-rate schedule ...")
        steps_per_epoch = int(train.reduce(0, lambda count, _: count + 1))
    if args.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, args.steps_per_epoch)
    if steps_per_epoch < 1:
        raise ValueError(
            f"{args.dataset!r} gives no full training batch of {args.batch_size}: it has fewer "
            "training examples than that; pass a smaller --batch-size"
        )
    val_source = args.val_dataset or args.dataset
    val = keras_ssd.data.eval_pipeline(
        options.load_dataset(
            val_source,
            options.validation_split(val_source, args.val_split),
            args.val_image_dir or args.image_dir,
            args.dataset_options if val_source == args.dataset else None,
            args.val_examples,
        ),
        cfg,
        args.batch_size,
    )
    total_steps = steps_per_epoch * args.epochs
    print(f"{cfg.name} at {cfg.image_size} px: {num_classes} classes, {cfg.num_boxes} default boxes; {steps_per_epoch} "
          f"steps/epoch x {args.epochs} epochs at batch {args.batch_size}, "
          f"{args.optimizer} at lr {args.learning_rate:g} for batch 32; augment {args.augment}; "
          f"{strategy.num_replicas_in_sync} replica(s)")

    with strategy.scope():
        model = keras_ssd.build_ssd(cfg, backbone_weights=args.backbone_weights, class_names=names)
        optimizer = OPTIMIZERS[args.optimizer](
            args.learning_rate,
            args.batch_size,
            total_steps,
            warmup_steps=min(int(args.warmup_epochs * steps_per_epoch), total_steps),
            decay=args.schedule,
            weight_decay=args.weight_decay,
            clip_norm=args.clip_norm or None,
        )
        model.compile(
            optimizer=optimizer, loss=keras_ssd.SSDLoss.from_ssd_config(cfg), jit_compile=_jit(args.jit_compile)
        )

    map_callback = evaluation.MeanAveragePrecisionCallback(
        val,
        evaluation.make_evaluator(args.metric, num_classes, names),
        detector_fn=lambda m: keras_ssd.build_detector(m, cfg),
        frequency=args.eval_every,
    )
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        map_callback,  # before the checkpoints, which read val_mAP
        SafeModelCheckpoint(os.path.join(output, "best.keras"), monitor="val_mAP", mode="max"),
        SafeModelCheckpoint(os.path.join(output, "last.keras")),
        # The backup is written before the CSV row: a logged epoch is a resumable one.
        ResumableBackup(os.path.join(output, "backup")),
        keras.callbacks.CSVLogger(os.path.join(output, "log.csv"), append=True),
    ]
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output, "logs")))
    # One iterator over the repeated passes for the whole run (reshuffled and re-augmented
    # every pass), with `steps_per_epoch`: Keras otherwise makes a new iterator every
    # epoch, and dropping the old one stalled the next epoch's first step for up to
    # ~60 s (seen on the 2-core CPU machine with ssdlite320_mobilenetv2, 2026-11-24).
    # Repeating the batched passes (not `train_pipeline(repeat=True)`, which repeats
    # before batching) keeps an epoch exactly one pass of the counted batches.
    model.fit(
        _shardable(train.repeat()), epochs=args.epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks
    )

    best_path = os.path.join(output, "best.keras")
    if not os.path.exists(best_path):
        best_path = os.path.join(output, "last.keras")
    if not os.path.exists(best_path):
        raise RuntimeError(
            f"Training stopped before any epoch could be saved in {output!r} (see the log above: "
            "a NaN loss stops it); try a lower --learning-rate"
        )
    best = keras.models.load_model(best_path)
    map_callback.set_model(best)
    result = map_callback.evaluate()
    minutes = (time.time() - start) / 60
    print(evaluation.format_table(result, title=f"{args.metric} AP of {best_path}"))
    print(f"Finished in {minutes:.1f} min; mAP {result['mAP']:.4f}")
    metrics = {"checkpoint": best_path, "metric": args.metric, "minutes": minutes, **result}
    if chief:
        with open(os.path.join(output, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2, default=float)
    return metrics


@cli.entry_point
def main(argv=None):
    run(options.parse(build_parser(), DEFAULTS, argv))


if __name__ == "__main__":
    sys.exit(main())
