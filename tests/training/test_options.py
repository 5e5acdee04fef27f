"""training/options.py: one declaration per option gives the flag, the config-file key and the default."""

import pytest

from training import export, predict


def test_config_file_lists_and_flags_merge_with_the_choices_checked(tmp_path):
    config = tmp_path / "export.yaml"
    config.write_text("model: m.keras\noutput: out\nformat: [saved_model, onnx]\ncalibration-examples: 20\n")
    args = export.COMMAND.parse(["--config", str(config), "--quantize", "int8"])
    assert (args.model, args.output, args.format, args.quantize) == ("m.keras", "out", ["saved_model", "onnx"], ["int8"])
    assert (args.calibration_examples, args.calibration_split, args.nms) == (20, "train", "regular")
    config.write_text("model: m.keras\noutput: out\nformat: [saved_model, pdf]\n")
    with pytest.raises(SystemExit):
        export.COMMAND.parse(["--config", str(config)])


def test_required_options_may_come_from_the_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        predict.COMMAND.parse(["photo.jpg"])
    assert "--model required (as a flag or a key of --config)" in capsys.readouterr().err
    config = tmp_path / "predict.json"
    config.write_text('{"model": "m.tflite", "images": ["a.png", "b.png"], "min-score": 0.5}')
    args = predict.COMMAND.parse(["--config", str(config)])
    assert (args.model, args.images, args.min_score, args.output) == ("m.tflite", ["a.png", "b.png"], 0.5, "predictions")
    assert predict.COMMAND.parse(["--config", str(config), "c.png"]).images == ["c.png"]
