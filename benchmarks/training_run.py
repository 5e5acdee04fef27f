"""`python -m training.train` timed as a user times it, against torchvision's fastest training step.

    python benchmarks/training_run.py                            # SSD300, batch 8, 3 epochs of 8 steps, 2 rounds
    python benchmarks/training_run.py --default-boxes preset     # the preset's boxes instead of fitted ones
    python benchmarks/training_run.py --preset ssd_tiny --epochs 2 --steps-per-epoch 2 --no-torch   # a smoke run

Each round runs, one process at a time:

* the training command with its defaults (`--preset P --dataset shapes --examples
  <batch x steps> --val-examples 8 --batch-size B --steps-per-epoch S --epochs E`,
  into a temporary folder), and reads images/s per epoch from its `log.csv`:
  `S x B / (minutes_k - minutes_(k-1))` for epochs 2 to E (epoch 1 also traces the
  step and the evaluation). Like a user's log, an epoch's time holds its steps and
  what follows each epoch: the validation mAP and the checkpoints. The default
  boxes are fitted to the data unless `--default-boxes preset`;
* torchvision's `ssd300_vgg16` with as many classes as the run (shapes has 3),
  random weights, SGD, loss included, at the same batch
  (`compare.torch_train_step`), in each of its variants on this CPU
  (`compare.torch_variants`: float32 and bf16 autocast, each plain and
  channels_last), `--torch-seconds` each after three warm-up steps; the fastest
  variant's median step counts. Needs torch and torchvision (see `compare.py`).

It prints each round's figures and, at the end, the medians over the rounds and
keras_ssd's ratio to torchvision (above 1: keras_ssd is faster).
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def training_command(args, output):
    """The user's command for one run into `output`."""
    command = [
        sys.executable, "-m", "training.train", "--preset", args.preset, "--dataset", "shapes",
        "--examples", str(args.batch_size * args.steps_per_epoch), "--val-examples", "8",
        "--batch-size", str(args.batch_size), "--steps-per-epoch", str(args.steps_per_epoch),
        "--epochs", str(args.epochs), "--output", output,
    ]
    return command + (["--default-boxes", args.default_boxes] if args.default_boxes else [])


def epoch_rates(log_csv, images_per_epoch):
    """Images/s of every epoch after the first, from `log.csv`'s `minutes` (wall time since the start)."""
    with open(log_csv) as f:
        minutes = [float(row["minutes"]) for row in csv.DictReader(f)]
    return [images_per_epoch / (60 * (end - start)) for start, end in zip(minutes, minutes[1:])]


def run_training(args):
    """One run of the training command; images/s of epochs 2 to E."""
    with tempfile.TemporaryDirectory(prefix="training_run_") as tmp:
        output = os.path.join(tmp, "run")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
        result = subprocess.run(training_command(args, output), cwd=ROOT, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"error: the training command failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
        return epoch_rates(os.path.join(output, "log.csv"), args.batch_size * args.steps_per_epoch)


def torch_child(batch_size, seconds):
    """Runs in a child: `{variant: images/s of its median step}` for torchvision's ssd300_vgg16."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import compare  # imports torch before TensorFlow
    import numpy as np
    import timing

    from keras_ssd import precision
    from keras_ssd.data.shapes import CLASS_NAMES

    torch_side = compare.import_torch()
    if torch_side is None:
        sys.exit("error: torch and torchvision are not installed (see benchmarks/compare.py), or pass --no-torch")
    torch, torchvision = torch_side
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    model = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None,
                                                      num_classes=len(CLASS_NAMES) + 1)
    images = np.random.default_rng(0).integers(0, 256, (batch_size, 300, 300, 3), dtype=np.uint8)
    bf16_cpu = bool(precision.bf16_flags())
    rates = {}
    for name, (dtype, channels_last) in compare.torch_variants(torch, bf16_cpu).items():
        step = compare.torch_train_step(torch, model, images, dtype=dtype, channels_last=channels_last,
                                        labels=[0, len(CLASS_NAMES) - 1])
        for _ in range(3):
            step()
        durations = []
        timing.seconds_per_call(step, seconds, durations)
        rates[name] = batch_size / statistics.median(durations)
        print(f"  torch {name}: {rates[name]:.2f} img/s ({len(durations)} steps)", file=sys.stderr, flush=True)
    return rates


def run_torch(args):
    """torchvision's images/s per variant, in a process of its own."""
    command = [sys.executable, os.path.abspath(__file__), "--child", "--batch-size", str(args.batch_size),
               "--torch-seconds", str(args.torch_seconds)]
    result = subprocess.run(command, cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                            stdout=subprocess.PIPE, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RATES ")]
    if result.returncode != 0 or not lines:
        sys.exit(f"error: timing torchvision failed (exit {result.returncode})")
    return json.loads(lines[-1][len("RATES "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ssd300_vgg16")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps-per-epoch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3, help="at least 2: the first epoch is not counted")
    parser.add_argument("--default-boxes", help="passed to the training command: fit, fit-no-stride4 or preset "
                        "(default: the command's own, fit)")
    parser.add_argument("--rounds", type=int, default=2, help="training runs, each followed by torch (default 2)")
    parser.add_argument("--torch-seconds", type=float, default=40.0, help="timing per torch variant (default 40)")
    parser.add_argument("--no-torch", action="store_true", help="time the training command only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RATES " + json.dumps(torch_child(args.batch_size, args.torch_seconds)))
        return
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is not counted")
    sys.path.insert(0, ROOT)
    from keras_ssd import cpu

    print(f"CPU: {cpu.describe()}")
    print(f"command: python benchmarks/{os.path.basename(__file__)} {' '.join(sys.argv[1:])}".rstrip())
    print(f"training command: python {' '.join(training_command(args, '<tmp>')[1:])}\n")
    ours, theirs = [], []
    for round_index in range(args.rounds):
        rates = run_training(args)
        ours.extend(rates)
        line = f"round {round_index + 1}: training.train " + ", ".join(f"{rate:.2f}" for rate in rates) + " img/s"
        if not args.no_torch:
            variants = run_torch(args)
            best = max(variants, key=variants.get)
            theirs.append(variants[best])
            line += f"; torchvision {variants[best]:.2f} img/s ({best})"
        print(line, flush=True)
    summary = f"\nmedian: training.train {statistics.median(ours):.2f} img/s (epochs 2-{args.epochs} of {args.rounds} runs)"
    if theirs:
        ratio = statistics.median(ours) / statistics.median(theirs)
        summary += f", torchvision's fastest {statistics.median(theirs):.2f} img/s; ratio {ratio:.2f}x"
    print(summary)


if __name__ == "__main__":
    main()
