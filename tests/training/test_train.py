"""The training entry point: the main job shortened, resume after SIGKILL, multi-worker, and what
comes after `fit` (log.csv, metrics, report) for every run shape."""

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import keras_ssd
from keras_ssd import cpu, precision
from keras_ssd.data import AugmentOptions
from numeric_csv import read_numeric_csv
from keras_ssd.default_box_fit import layout
from training import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# VOC07 mAP floor of the shortened main job: with the ssd_tiny recipe (AdamW, batch
# norm momentum 0.9) it reached 0.789 on a 2-core CPU (0.186 with SGD).
MAIN_JOB_FLOOR = 0.4
SMALL = ["--examples", "64", "--val-examples", "16", "--batch-size", "8", "--eval-every", "1"]


def _command(output, *extra):
    return [sys.executable, "-m", "training.train", "--output", str(output), *SMALL, *extra]


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, **extra)
    return env


# The command of a new user who evaluates less often than the run has epochs: no epoch of
# `fit` is evaluated (only the final checkpoint is).
UNEVALUATED = ["--examples", "64", "--val-examples", "8", "--batch-size", "8", "--steps-per-epoch", "8",
               "--epochs", "3", "--eval-every", "100"]
REPORT_FILES = {"report.html", "training_curves.png", "pr_curves.png", "f1_curves.png", "confusion_matrix.png",
                "confusion_matrix_normalized.png", "coverage.png", "predictions.png"}


def _epochs_logged(output):
    with open(os.path.join(output, "log.csv")) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_config_file_and_flags_merge(tmp_path):
    config = tmp_path / "job.yaml"
    config.write_text("epochs: 3\nbatch-size: 4\nlearning_rate: 0.5\n")
    args = train.COMMAND.parse(["--config", str(config), "--epochs", "7"])
    assert (args.epochs, args.batch_size, args.learning_rate) == (7, 4, 0.5)
    assert args.preset == "ssd_tiny" and args.dataset == "shapes"
    recipe = train.recipe_of(args)  # flags over file over the preset's recipe
    assert (recipe.epochs, recipe.batch_size, recipe.learning_rate, recipe.optimizer) == (7, 4, 0.5, "adamw")
    config.write_text("epoch: 3\n")
    with pytest.raises(SystemExit):
        train.COMMAND.parse(["--config", str(config)])
    config.write_text("optimizer: adam\n")  # file values meet the flag's choices
    with pytest.raises(SystemExit):
        train.COMMAND.parse(["--config", str(config)])


def test_preset_recipe_fills_only_unset_options():
    recipe = lambda argv: train.recipe_of(train.COMMAND.parse(argv))
    tiny = recipe([])
    assert tiny == keras_ssd.recipes.for_preset("ssd_tiny")
    assert (tiny.optimizer, tiny.learning_rate, tiny.augment) == ("adamw", 2e-3, AugmentOptions(max_expand_ratio=2.0))
    paper = recipe(["--preset", "ssd300_vgg16"])
    assert (paper.optimizer, paper.learning_rate, paper.augment) == ("sgd", 1e-3, AugmentOptions())
    assert (paper.schedule, paper.epochs, paper.clip_norm) == ("step", 232, 0.0)
    mixed = recipe(["--optimizer", "sgd", "--augment", "false"])  # the rate goes with the optimiser
    assert (mixed.optimizer, mixed.learning_rate, mixed.augment) == ("sgd", 1e-3, False)
    assert recipe(["--jit-compile", "false"]).jit_compile is False
    with pytest.raises(ValueError, match=r"unknown AugmentOptions field\(s\) \['zoom'\]"):
        recipe(["--augment", '{"zoom": 2}'])


def test_unknown_model_option_is_one_error_line_listing_the_fields(tmp_path, capsys):
    status = train.main(["--output", str(tmp_path / "run"), "--model-options", '{"neg_pos": 2}'])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 2
    assert error.startswith("error: Unknown SSDConfig field(s) ['neg_pos']; valid fields: [")
    assert "'neg_pos_ratio'" in error and "'match_iou_threshold'" in error
    assert not (tmp_path / "run").exists()


@pytest.mark.numerics
def test_short_main_job_learns(tmp_path):
    # The main job shortened, as a user runs it (its own process, so with the oneDNN
    # default of training/onednn.py): 256 easier shapes images (one object of 25-60% of
    # the side, at the network's 160 px), 10 epochs at batch 16 = 160 steps of the
    # ssd_tiny recipe (AdamW, see keras_ssd.recipes.TINY).
    easy = '{"image_size": 160, "object_size": [0.25, 0.6], "max_objects": 1}'
    command = [sys.executable, "-m", "training.train", "--output", str(tmp_path), "--examples", "256",
               "--val-examples", "64", "--epochs", "10", "--batch-size", "16", "--dataset-options", easy]
    result = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("best.keras", "last.keras", "metrics.json", "log.csv"):
        assert (tmp_path / name).exists()
    assert not (tmp_path / "backup").exists()  # removed when training finished
    with open(tmp_path / "metrics.json") as f:
        saved = json.load(f)
    assert saved["mAP"] > MAIN_JOB_FLOOR, saved
    assert f"Finished in {saved['minutes']:.1f} min; mAP {saved['mAP']:.4f}" in result.stdout
    # The precision and XLA setting taken on this machine, printed and stored with their reasons.
    machine = saved["machine"]
    bf16_cpu = any(flag in cpu.kernel_flags() for flag in precision.BF16_FLAGS) and "oneDNN on" in machine["cpu"]
    assert machine["precision"]["value"] == ("mixed_bfloat16" if bf16_cpu else "float32"), machine
    assert machine["jit_compile"]["value"] is False, machine  # ssd_tiny: XLA is slower on every CPU measured
    # The default boxes were fitted to the training objects, printed and kept in the run's files.
    boxes = saved["default_boxes"]
    assert boxes["chosen"] in ("fitted", "stride4", "preset") and boxes["fit"]["num_objects"] > 200, boxes
    assert re.search(r"default boxes: the preset covers [0-9.]+% of \d+ training objects at IoU >= 0.5; ",
                     result.stdout), result.stdout[-3000:]
    for name in ("precision", "jit_compile"):
        assert f"{name}: {machine[name]['value']} ({machine[name]['reason']})" in result.stdout
    assert keras_ssd.recipes.Recipe.from_dict(saved["recipe"]) == keras_ssd.recipes.TINY.replace(
        epochs=10, batch_size=16, precision=machine["precision"]["value"], jit_compile=False
    )
    best = keras.models.load_model(tmp_path / "best.keras")
    assert best.class_names == ["circle", "square", "triangle"]
    assert layout(best.ssd_config) == boxes["layout"]
    assert precision.policy_of(best) == "float32"  # a checkpoint loads in the loading process's precision
    _, rows = read_numeric_csv(tmp_path / "log.csv")
    minutes = [row["minutes"] for row in rows]
    assert len(minutes) == 10 and minutes == sorted(minutes) and 0 < minutes[-1] <= saved["minutes"]
    rates = [row["learning_rate"] for row in rows]  # the cosine decay after the warm-up
    assert rates[1] > rates[5] > rates[-1] >= 0
    for row in rows:  # the loss's two terms, logged beside it
        assert row["loss"] == pytest.approx(row["conf_loss"] + row["loc_loss"], rel=1e-4)
    # The report, written after fit; what it took is printed (its share of a run is a
    # figure for NOTES, not an assertion).
    report = tmp_path / "report"
    names = {"training_curves", "pr_curves", "f1_curves", "confusion_matrix", "confusion_matrix_normalized",
             "coverage", "predictions"}
    assert {p.name for p in report.iterdir()} == {"report.html", *(f"{name}.png" for name in names)}
    match = re.search(r"Wrote the report (\S+) in ([0-9.]+) s", result.stdout)
    assert match and match.group(1) == str(report / "report.html"), result.stdout[-2000:]
    page = (report / "report.html").read_text()
    assert f"<b>{saved['mAP']:.4f}</b>" in page  # the report's mAP is the printed one


def test_cache_is_on_for_generated_shapes_only_unless_told():
    def caches(source, *flags):
        return train.caches(train.COMMAND.parse([*flags, "--output", "unused"]), source)

    assert caches("shapes") and caches("shapes+shapes")
    assert not caches("voc/2007") and not caches("shapes+voc/2007")
    assert caches("voc/2007", "--cache", "true") and not caches("shapes", "--cache", "false")


def test_image_size_and_model_options_reach_the_trained_model(tmp_path):
    args = train.COMMAND.parse(
        ["--output", str(tmp_path), "--image-size", "192",
         "--model-options", '{"batch_norm_momentum": 0.8, "neg_pos_ratio": 2}',
         "--epochs", "1", "--examples", "16", "--val-examples", "8", "--batch-size", "8",
         "--precision", "mixed_bfloat16", "--jit-compile", "false", "--default-boxes", "preset"],
    )
    metrics = train.run(args)
    # Given settings win over the machine's, and the run's policy does not outlive it.
    assert metrics["machine"]["precision"] == {"value": "mixed_bfloat16", "reason": "given"}
    assert metrics["machine"]["jit_compile"] == {"value": False, "reason": "given"}
    assert keras.mixed_precision.global_policy().name == "float32"
    model = keras.models.load_model(tmp_path / "best.keras")
    cfg = model.ssd_config
    assert (cfg.name, cfg.image_size, cfg.feature_map_sizes) == ("ssd_tiny", 192, (24, 12, 6, 3, 1))
    assert cfg.batch_norm_momentum == 0.8
    assert model.loss.neg_pos_ratio == 2  # the loss is built from the config
    assert model.output_shape == (None, 3424, 4 + 3 + 1)
    assert np.isfinite(metrics["mAP"])


def test_shipped_ssdlite_shapes_config_parses_to_its_model():
    config = os.path.join(ROOT, "training", "configs", "ssdlite_shapes.yaml")
    args = train.COMMAND.parse(["--config", config])
    recipe = train.recipe_of(args)
    assert (args.preset, args.image_size, recipe.optimizer, recipe.batch_size) == ("ssdlite320_mobilenetv2", 160, "adamw", 16)
    assert (recipe.learning_rate, recipe.epochs) == (4e-3, 6)
    cfg = keras_ssd.SSDConfig.from_preset(args.preset, image_size=args.image_size, **args.model_options)
    assert (cfg.feature_map_sizes, cfg.num_boxes, cfg.batch_norm_momentum) == ((10, 5, 3, 2, 1, 1), 840, 0.9)
    assert recipe.augment == AugmentOptions(max_expand_ratio=2.0)
    assert keras_ssd.data.load("shapes", "train", **args.dataset_options).cardinality() == 2000


def test_resume_after_sigkill(tmp_path):
    output = tmp_path / "run"
    command = _command(output, "--epochs", "3")
    process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if os.path.exists(output / "log.csv") and _epochs_logged(output):
            break
        time.sleep(0.1)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _epochs_logged(output) == [0]
    # last.keras is written while the next epoch trains; its backup and then the row follow it.
    assert json.loads((output / "backup" / "training_metadata.json").read_text())["epoch"] == 1

    first_boxes = layout(keras.models.load_model(output / "last.keras").ssd_config)
    result = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _epochs_logged(output) == [0, 1, 2]
    read_numeric_csv(output / "log.csv")  # the resumed run's rows fit the first run's header
    model = keras.models.load_model(output / "last.keras")
    assert isinstance(model, keras_ssd.SSD)
    # The resumed run trains the boxes of the run it resumes; it does not fit again.
    assert f"default boxes: resumed ({output / 'last.keras'}): {first_boxes}" in result.stdout
    assert "Fitting the default boxes" not in result.stdout and layout(model.ssd_config) == first_boxes
    assert model.optimizer.iterations.numpy() == 3 * 8  # 64 examples / batch 8, 3 epochs


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_end_with_identical_weights(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    output = tmp_path / "run"
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                _command(output, "--epochs", "1", "--steps-per-epoch", "3", "--strategy", "multi_worker"),
                cwd=ROOT,
                env=_env(TF_CONFIG=json.dumps(tf_config)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = [p.communicate(timeout=900)[0] for p in processes]
    for process, log in zip(processes, logs):
        assert process.returncode == 0, log[-3000:]
    chief = keras.models.load_model(output / "last.keras")
    other = keras.models.load_model(output / "workers" / "worker-1" / "last.keras")
    assert chief.optimizer.iterations.numpy() == other.optimizer.iterations.numpy() == 3
    for a, b in zip(chief.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    fresh = keras_ssd.build_ssd(chief.ssd_config)
    assert any(not np.array_equal(a, b) for a, b in zip(chief.get_weights(), fresh.get_weights()))


@pytest.fixture(scope="module")
def unevaluated_run(tmp_path_factory):
    """`(output, command, result)` of one finished `UNEVALUATED` run."""
    output = tmp_path_factory.mktemp("unevaluated") / "run"
    command = [sys.executable, "-m", "training.train", "--output", str(output), *UNEVALUATED]
    result = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    return output, command, result


def test_eval_every_past_the_last_epoch_ends_with_a_report_and_a_plain_log(unevaluated_run):
    output, _, result = unevaluated_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warning:" not in result.stderr
    assert {p.name for p in (output / "report").iterdir()} == REPORT_FILES
    assert (output / "metrics.json").exists() and (output / "last.keras").exists()
    header, rows = read_numeric_csv(output / "log.csv")  # no NA, no invented val_ columns
    assert header[0] == "epoch" and not [name for name in header if name.startswith("val_")], header
    assert {"loss", "conf_loss", "loc_loss", "learning_rate", "minutes"} <= set(header)
    assert [row["epoch"] for row in rows] == [0, 1, 2]


def test_rerun_of_a_finished_run_exits_0(unevaluated_run, tmp_path):
    finished, command, _ = unevaluated_run
    output = tmp_path / "run"
    shutil.copytree(finished, output)
    command = [str(output) if part == str(finished) else part for part in command]
    result = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warning:" not in result.stderr
    _, rows = read_numeric_csv(output / "log.csv")
    assert [row["epoch"] for row in rows] == [0, 1, 2, 0, 1, 2]  # the second run's rows follow the first's
    assert f"Wrote the report {output / 'report' / 'report.html'} in " in result.stdout


def test_evaluate_report_reads_the_log_csv_keras_csv_logger_wrote(unevaluated_run, tmp_path, capsys):
    from training import evaluate

    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(unevaluated_run[0] / "last.keras", run / "last.keras")
    # What Keras' CSVLogger wrote for UNEVALUATED: NA in a val_ twin of every column.
    (run / "log.csv").write_bytes(
        b"epoch,conf_loss,learning_rate,loc_loss,loss,minutes,val_conf_loss,val_learning_rate,val_loc_loss,"
        b"val_loss,val_minutes\r\n"
        b"0,27.5,0.0005,5.08,32.59,0.07,NA,NA,NA,NA,NA\r\n1,15.5,0.00025,4.58,20.13,0.08,NA,NA,NA,NA,NA\r\n"
        b"2,10.8,0.0,4.22,15.04,0.09,NA,NA,NA,NA,NA\r\n"
    )
    report, result = tmp_path / "report", tmp_path / "result.json"
    status = evaluate.main(["--model", str(run / "last.keras"), "--examples", "8", "--report", str(report),
                            "--output", str(result)])
    err = capsys.readouterr().err
    assert status == 0, err[-3000:]
    assert {p.name for p in report.iterdir()} == REPORT_FILES and "warning:" not in err
    assert "mAP" in json.loads(result.read_text())


def test_a_failing_report_is_one_warning_line_after_checkpoint_and_metrics(tmp_path, monkeypatch, capsys):
    def broken_report(*args, **kwargs):
        raise ValueError("could not convert string to float: 'NA'")

    monkeypatch.setattr(train, "detection_report", broken_report)
    output = tmp_path / "run"
    status = train.main(["--output", str(output), "--examples", "16", "--val-examples", "8", "--batch-size", "8",
                         "--epochs", "1"])
    err = capsys.readouterr().err
    assert status == 0, err[-3000:]
    assert [line for line in err.splitlines() if line.startswith(("warning:", "error:"))] == [
        "warning: the report could not be written (ValueError: could not convert string to float: 'NA'); "
        f"checkpoints and metrics.json are in {output}"
    ]
    assert (output / "last.keras").exists() and json.loads((output / "metrics.json").read_text())["mAP"] >= 0
    assert not (output / "report").exists()


def test_default_boxes_are_fitted_unless_the_preset_or_given_boxes_are_asked_for(tmp_path, capsys):
    def choose(*flags):
        args = train.COMMAND.parse(["--output", str(tmp_path), "--examples", "200", *flags])
        cfg, _ = train._config(args)
        examples = keras_ssd.data.load("shapes", split="train", num_examples=200)
        chosen, record = train._default_boxes(args, cfg, train.recipe_of(args), examples, str(tmp_path))
        return cfg, chosen, record, capsys.readouterr().out

    preset, fitted, record, out = choose()
    assert fitted != preset and fitted.stride4_source, out  # the built-in data's small objects
    assert record["chosen"] == "stride4" and record["layout"] == layout(fitted)
    assert record["fit"]["stride4"]["num_boxes"] == fitted.num_boxes == 8790
    assert "a stride-4 source added" in out and "fitted in" in out
    _, kept, record, out = choose("--default-boxes", "fit-no-stride4")
    assert not kept.stride4_source and kept.feature_map_sizes == preset.feature_map_sizes
    assert record["fit"]["stride4"] is None
    _, kept, record, out = choose("--default-boxes", "preset")
    assert kept == preset and record["chosen"] == "preset" and "Fitting" not in out
    given = '{"min_sizes": [8, 24, 53, 86, 120], "max_sizes": [24, 53, 86, 120, 154]}'
    _, kept, record, out = choose("--model-options", given)
    assert kept.min_sizes == (8, 24, 53, 86, 120) and "Fitting" not in out
    assert record["chosen"] == "--model-options (max_sizes, min_sizes)"
