"""The training step of a preset with TensorFlow's oneDNN kernels on and off.

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it loads, so each setting
runs in its own process; the processes alternate, `--rounds` of each. A process
builds the preset in its recipe's precision, as `training.train` does ("auto":
`mixed_bfloat16` with oneDNN on a CPU with AVX512_BF16 or AMX, else float32;
`keras_ssd.precision`), compiles it with the recipe (`keras_ssd.recipes`, the
batch size given), fits a few steps to warm up, then times `--steps` calls of
`train_on_batch` on augmented `shapes` batches; it prints the median, the
precision and the XLA setting. The summary gives each setting's median over its
rounds and their ratio.

    python benchmarks/train_step.py                     # ssd_tiny, batch 32
    python benchmarks/train_step.py --preset ssd300_vgg16 --batch-size 8 --steps 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

SETTINGS = {"oneDNN on": "1", "oneDNN off": "0"}


def one_process(preset, batch_size, steps):
    """Runs in the child: the median seconds of one `train_on_batch` (printed as JSON)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from timing import train_step_seconds

    import keras_ssd
    from keras_ssd import precision, recipes

    cfg = keras_ssd.SSDConfig.from_preset(preset, num_classes=3)
    recipe = recipes.for_preset(preset).replace(batch_size=batch_size)
    examples = keras_ssd.data.load("shapes", "train", num_examples=4 * batch_size)
    batches = list(keras_ssd.data.train_pipeline(examples, cfg, batch_size, augment=recipe.augment, seed=0))
    model = precision.with_precision(keras_ssd.build_ssd(cfg), recipe.precision)
    recipes.compile_for_training(model, recipe, steps_per_epoch=100)
    seconds = train_step_seconds(model, batches, steps)
    print(json.dumps({"seconds": seconds, "precision": precision.policy_of(model),
                      "jit_compile": str(model.jit_compile)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ssd_tiny")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per process (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="processes per setting, alternating (default 2)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one_process(args.preset, args.batch_size, args.steps)
        return
    seconds = {name: [] for name in SETTINGS}
    command = [sys.executable, os.path.abspath(__file__), "--child", "--preset", args.preset,
               "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    for round_index in range(args.rounds):
        for name, value in SETTINGS.items():
            env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=value)
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                sys.exit(f"{name}: the training process failed:\n{result.stderr[-2000:]}")
            measured = json.loads(result.stdout.strip().splitlines()[-1])
            seconds[name].append(measured["seconds"])
            print(f"round {round_index + 1}, {name}: {measured['seconds']:.3f} s/step "
                  f"({args.batch_size / measured['seconds']:.1f} img/s), {measured['precision']}, "
                  f"jit_compile {measured['jit_compile']}",
                  flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"\n{args.preset}, batch {args.batch_size}, its recipe, median of {args.rounds} processes x "
          f"{args.steps} steps (load average {os.getloadavg()[0]:.1f}):")
    for name, value in medians.items():
        print(f"  {name}: {value:.3f} s/step, {args.batch_size / value:.1f} img/s")
    print(f"  oneDNN on / off: {medians['oneDNN off'] / medians['oneDNN on']:.2f}x")


if __name__ == "__main__":
    main()
