"""Train an SSD: `python -m training.train` (ssd_tiny on the built-in "shapes" data).

The main job: build the datasets, fit the default boxes to the training objects
(`keras_ssd.fit_default_boxes`, `--default-boxes`), build the model, fit with the preset's recipe
(`keras_ssd.recipes`; recipe flags override it), evaluate mAP on the validation
split each epoch, keep the best and the last checkpoint in `--output`, and print
the per-class AP table of the best checkpoint. Re-running the same command after
a crash resumes from the last finished epoch (`keras_ssd.callbacks.ResumableBackup`).

Files in `--output`: `best.keras` (highest val_mAP), `last.keras`,
`log.csv` (per epoch: loss, val_mAP, learning_rate and `minutes`, the wall time since the
command started, evaluation included), `logs/` (TensorBoard), `metrics.json` (final
evaluation, the recipe used, how the default boxes were chosen under `default_boxes`, and
under `machine` the precision and XLA setting taken on this machine with the reasons),
`report/` (`report.html` and its PNGs: curves, per-class table, PR and F1 curves,
confusion matrix, default-box coverage, validation images; `keras_ssd.evaluation.report`),
`backup/` (resume state: the epoch's `last.keras` hard-linked and its epoch number; removed when
training finishes). A run
that fails before its first checkpoint removes the `--output` folder it created
(never one that existed).

The paper's VOC07+12 SSD300 (77.2 mAP on VOC07 test, needs a GPU; the preset's
recipe is the paper's: SGD 1e-3 at batch 32, x0.1 at 2/3 and 5/6 of 232 epochs):

    python -m training.train --preset ssd300_vgg16 --dataset voc/2007+voc/2012 \\
        --split train+validation --val-dataset voc/2007 --val-split test \\
        --backbone-weights imagenet --output runs/ssd300_voc
"""

from training import onednn  # noqa: F401 (first: sets the oneDNN default before TensorFlow loads)

# isort: split
import json
import os
import sys
import time

import keras
import tensorflow as tf

import keras_ssd
from keras_ssd import cpu, evaluation, recipes
from keras_ssd.callbacks import (
    ElapsedMinutes,
    LearningRateLog,
    ResumableBackup,
    SafeModelCheckpoint,
)
from keras_ssd.config import BOX_FIELDS, PRESETS
from keras_ssd.default_box_fit import layout
from keras_ssd.distribute import STRATEGIES, is_chief, make_strategy, worker_index
from keras_ssd.evaluation.report import detection_report, report_metric
from keras_ssd.export.labels import default_class_names
from keras_ssd.model import load_ssd
from keras_ssd.optimizers import OPTIMIZERS
from keras_ssd.precision import PRECISIONS, global_policy
from keras_ssd.run_log import CSVLog
from training import cli, options
from training.options import Option

AUTO_TRUE_FALSE = ("auto", True, False)
DEFAULT_BOXES = ("fit", "fit-no-stride4", "preset")
# The default-box fit reads at most this many training examples.
FIT_EXAMPLES = 5000


def _auto_true_false(value):
    """"auto", "true" or "false" text -> "auto", True or False (other text is left for argparse to reject)."""
    return {"auto": "auto", "true": True, "false": False}.get(str(value).lower(), value)


_RECIPE = "(default: the preset's recipe, keras_ssd.recipes)"
# The options that override the preset's `keras_ssd.recipes.Recipe`, by field.
RECIPE_OPTIONS = [
    Option("optimizer", f"sgd (the paper's) or adamw {_RECIPE}", choices=tuple(OPTIMIZERS)),
    Option("learning_rate", f"peak learning rate at batch 32, scaled linearly {_RECIPE}", type=float),
    Option("batch_size", f"global batch size {_RECIPE}", type=int),
    Option("epochs", f"training epochs {_RECIPE}", type=int),
    Option("schedule", f"learning-rate decay after the warm-up {_RECIPE}", choices=recipes.SCHEDULES),
    Option("warmup_epochs", f"linear warm-up length {_RECIPE}", type=float),
    Option("weight_decay", f"L2 weight decay (the paper's 5e-4) {_RECIPE}", type=float),
    Option("clip_norm", f"clip gradients to this global norm; 0 turns it off {_RECIPE}", type=float),
    Option("augment", "JSON: false for no augmentation, or keras_ssd.data.AugmentOptions fields that "
           f"override the paper's, e.g. '{{\"max_expand_ratio\": 2}}' {_RECIPE}", type=json.loads),
    Option("precision", "numeric precision: auto (mixed_bfloat16 on CPUs with AVX512_BF16 or AMX, "
           f"mixed_float16 on tensor-core GPUs, else float32) or a Keras policy {_RECIPE}",
           choices=PRECISIONS),
    Option("jit_compile", "XLA for the train step: auto (this machine's faster setting for the preset and "
           f"precision), true or false {_RECIPE}", type=_auto_true_false, choices=recipes.JIT_COMPILE),
]
COMMAND = options.Command("python -m training.train", __doc__, [
    Option("preset", "SSDConfig preset (default ssd_tiny)", default="ssd_tiny", choices=tuple(PRESETS)),
    Option("image_size", "network input side in px (default: the preset's); the default boxes scale "
           "with it (SSDConfig.with_image_size)", type=int),
    Option("model_options", 'JSON SSDConfig field overrides of the preset, e.g. '
           '\'{"batch_norm_momentum": 0.9}\'', type=json.loads),
    Option("num_classes", "object classes (default: from the dataset)", type=int),
    Option("default_boxes", "fit (default: scales and aspect ratios fitted to the training objects as "
           "augmented, plus a stride-4 source where it matches 5%% more of them; keras_ssd.fit_default_boxes), "
           "fit-no-stride4 (fitted on the preset's source maps) or preset (the preset's boxes). A resumed "
           "run keeps its boxes; box fields in --model-options are kept as given",
           default="fit", choices=DEFAULT_BOXES),
    Option("backbone_weights", "'imagenet' or a keras.applications weights file of the backbone"),
    *options.dataset_options(role="the training data", dataset="shapes", split="train"),
    *options.dataset_options("val_", role="the validation data", inherit=""),
    *RECIPE_OPTIONS,
    Option("output", "directory for checkpoints and logs (default runs/ssd_tiny_shapes)",
           default="runs/ssd_tiny_shapes"),
    Option("metric", "validation mAP (default voc07)", default="voc07", choices=tuple(evaluation.METRICS)),
    Option("cache", "keep the training examples and validation batches in memory after the first "
           "epoch: auto (only for the generated shapes data, which is otherwise drawn again each "
           "epoch), true or false", default="auto", type=_auto_true_false, choices=AUTO_TRUE_FALSE),
    Option("eval_every", "evaluate mAP every N epochs (default 1)", type=int, default=1),
    Option("steps_per_epoch", "cap on training steps per epoch", type=int),
    Option("strategy", "tf.distribute strategy (default: none)", default="default", choices=STRATEGIES),
    Option("seed", "random seed (default 0)", type=int, default=0),
])


def recipe_of(args):
    """The preset's recipe with the recipe options given in `args` applied."""
    changes = {option.name: getattr(args, option.name) for option in RECIPE_OPTIONS}
    return recipes.for_preset(args.preset).replace(**{k: v for k, v in changes.items() if v is not None})


def caches(args, source):
    """Whether `--cache` keeps the examples of `source` in memory."""
    if args.cache == "auto":
        return all(part == "shapes" for part in source.split("+"))
    return args.cache


def _training_input(dataset):
    """`dataset` sharded by data across workers, without tf.data's autotuning thread.

    Dropping an iterator waits for that thread's next wake-up (`model::Model::OptimizeLoop`,
    asleep for up to about a minute once a pipeline has run a while): the end of `fit`
    stalled 40-60 s in about half of the main jobs on a 2-core CPU. Without it, maps
    declared `AUTOTUNE` run on as many threads as the CPU has cores.
    """
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    opts.autotune.enabled = False
    return dataset.with_options(opts)


def run(args):
    """Trains as `args` (from `COMMAND.parse`) says; returns the final metrics."""
    start = time.time()
    recipe = recipe_of(args)
    keras.utils.set_random_seed(args.seed)
    strategy = make_strategy(args.strategy)
    chief = is_chief()
    output = args.output if chief else os.path.join(args.output, "workers", f"worker-{worker_index()}")
    # A run that fails before its first checkpoint has nothing to resume from:
    # the folder it created goes with it.
    with cli.output_folder(output, keep=lambda: os.path.exists(os.path.join(output, "last.keras"))):
        cfg, names = _config(args)
        settings = recipes.machine_settings(recipe, cfg)
        print(f"machine: {cpu.describe()}")
        for name, choice in settings.items():
            print(f"{name}: {choice.value} ({choice.reason})")
        recipe = recipe.replace(**{name: choice.value for name, choice in settings.items()})
        with global_policy(recipe.precision):
            return _train(args, cfg, names, recipe, settings, strategy, output, chief, start)


def _config(args):
    """`(SSDConfig, class names or None)` of the run: the preset with `args`' overrides."""
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
    return keras_ssd.SSDConfig.from_preset(args.preset, **{**overrides, "num_classes": num_classes}), names


def _default_boxes(args, cfg, recipe, examples, output):
    """The config to train and a record of how its default boxes were chosen (`--default-boxes`).

    Fits them (`keras_ssd.fit_default_boxes`) to the training objects as the
    recipe's augmentation gives them, unless the preset's are asked for,
    `--model-options` sets box fields, or the run resumes (its boxes come from
    its `last.keras`).

    Returns:
        `(SSDConfig, dict for metrics.json)`.
    """
    given = sorted(set(args.model_options or {}) & set(BOX_FIELDS))
    last = os.path.join(output, "last.keras")
    if os.path.isdir(os.path.join(output, "backup")) and os.path.exists(last):
        cfg, chosen = load_ssd(last).ssd_config, f"resumed ({last})"
    elif args.default_boxes == "preset" or given:
        chosen = f"--model-options ({', '.join(given)})" if given else "preset"
    else:
        print(f"Fitting the default boxes to the training objects (at most {FIT_EXAMPLES} examples, "
              "augmented as in training) ...")
        boxes = keras_ssd.training_boxes(examples, cfg, recipe.augment, seed=args.seed, max_examples=FIT_EXAMPLES,
                                         progress_every=1000)
        if len(boxes):
            fit = keras_ssd.fit_default_boxes(
                boxes, cfg, stride4="auto" if args.default_boxes == "fit" else False, seed=args.seed
            )
            print(fit.summary())
            print(fit.describe())
            return fit.config, {"chosen": fit.choice, "layout": layout(fit.config), "fit": fit.to_dict()}
        chosen = "preset (the training data has no objects to fit)"
    print(f"default boxes: {chosen}: {layout(cfg)}")
    return cfg, {"chosen": chosen, "layout": layout(cfg)}


def _train(args, cfg, names, recipe, settings, strategy, output, chief, start):
    """`run` after the set-up, under the recipe's precision: builds, fits and evaluates; returns the metrics."""
    num_classes = cfg.num_classes
    examples = options.load_dataset_options(args)
    if caches(args, args.dataset):
        examples = examples.cache()  # filled by the default-box fit's pass when there is one
    cfg, box_choice = _default_boxes(args, cfg, recipe, examples, output)
    train = keras_ssd.data.train_pipeline(
        examples, cfg, recipe.batch_size, augment=recipe.augment, seed=args.seed,
    )
    steps_per_epoch = int(train.cardinality())
    if steps_per_epoch < 0:  # unknown (a source that filters bad files): count once
        print("Counting training batches for the learning-rate schedule ...")
        steps_per_epoch = int(train.reduce(0, lambda count, _: count + 1))
    if args.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, args.steps_per_epoch)
    if steps_per_epoch < 1:
        raise ValueError(
            f"{args.dataset!r} gives no full training batch of {recipe.batch_size}: it has fewer "
            "training examples than that; pass a smaller --batch-size"
        )
    val_source = args.val_dataset or args.dataset
    val_examples = options.load_dataset(
        val_source,
        options.validation_split(val_source, args.val_split),
        args.val_image_dir or args.image_dir,
        args.val_dataset_options or (args.dataset_options if val_source == args.dataset else None),
        args.val_examples,
    )
    val = keras_ssd.data.eval_pipeline(val_examples, cfg, recipe.batch_size)
    if caches(args, val_source):
        val = val.cache()
    print(f"{cfg.name} at {cfg.image_size} px: {num_classes} classes, {cfg.num_boxes} default boxes; "
          f"{steps_per_epoch} steps/epoch; {strategy.num_replicas_in_sync} replica(s)\nrecipe: {recipe.describe()}")

    with strategy.scope():
        model = keras_ssd.build_ssd(cfg, backbone_weights=args.backbone_weights, class_names=names)
        recipes.compile_for_training(model, recipe, steps_per_epoch)

    map_callback = evaluation.MeanAveragePrecisionCallback(
        val,
        evaluation.make_evaluator(args.metric, num_classes, names),
        detector_fn=lambda m: keras_ssd.build_detector(m, cfg),
        frequency=args.eval_every,
    )
    # Written while the next epoch trains; a distributed model is saved in the foreground.
    last_checkpoint = SafeModelCheckpoint(os.path.join(output, "last.keras"), background=args.strategy == "default")
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        map_callback,  # before the checkpoints, which read val_mAP
        ElapsedMinutes(start),  # after the evaluation, which it counts
        last_checkpoint,
        # After last.keras, which an improved epoch copies instead of saving the model twice.
        SafeModelCheckpoint(os.path.join(output, "best.keras"), monitor="val_mAP", mode="max", copy_of=last_checkpoint),
        # The backup (last.keras hard-linked once written) is made before the CSV row, which waits for
        # it: a logged epoch is a resumable one.
        ResumableBackup(os.path.join(output, "backup"), checkpoint=last_checkpoint),
        LearningRateLog(),
        CSVLog(os.path.join(output, "log.csv"), after=last_checkpoint),
    ]
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output, "logs")))
    # One iterator over the repeated passes for the whole run (reshuffled and re-augmented
    # every pass), with `steps_per_epoch`: Keras otherwise makes a new iterator every
    # epoch, and dropping the old one stalled the next epoch's first step for up to
    # ~60 s (seen on a 2-core CPU with ssdlite320_mobilenetv2).
    # Repeating the batched passes (not `train_pipeline(repeat=True)`, which repeats
    # before batching) keeps an epoch exactly one pass of the counted batches.
    model.fit(
        _training_input(train.repeat()), epochs=recipe.epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks
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
    machine = {"cpu": cpu.describe(), **{name: choice.to_dict() for name, choice in settings.items()}}
    metrics = {"checkpoint": best_path, "metric": args.metric, "minutes": minutes, "recipe": recipe.to_dict(),
               "machine": machine, "default_boxes": box_choice, **result}
    if chief:
        with open(os.path.join(output, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2, default=float)
        class_names = names or default_class_names(num_classes)
        cli.optional_step(
            lambda: _write_report(args, map_callback, val, cfg, class_names, output, best_path),
            "the report could not be written", f"checkpoints and metrics.json are in {output}",
        )
    return metrics


def _write_report(args, map_callback, val, cfg, names, output, checkpoint):
    """Writes the detection report of the checkpoint `map_callback` holds into `output`/report."""
    start = time.time()
    val_source = args.val_dataset or args.dataset
    report = detection_report(
        map_callback.detector, val, class_names=names, cfg=cfg, output_dir=os.path.join(output, "report"),
        run_dir=output, metric=report_metric(args.metric),
        data_source=f"{val_source}, split {options.validation_split(val_source, args.val_split)}", model=checkpoint,
    )
    print(f"Wrote the report {report.html_path} in {time.time() - start:.1f} s")


@cli.entry_point
def main(argv=None):
    run(COMMAND.parse(argv))


if __name__ == "__main__":
    sys.exit(main())
