"""Command-line options shared by the entry points: flags over a YAML/JSON file over defaults."""

import argparse
import json
import os

import yaml

import keras_ssd


def read_config_file(path):
    """Reads a YAML or JSON mapping of option names (dashes or underscores) to values."""
    if not os.path.isfile(path):
        raise ValueError(f"Config file {path!r} does not exist")
    with open(path) as f:
        text = f.read()
    try:
        values = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"Config file {path!r} is not valid YAML/JSON: {error}") from error
    if not isinstance(values, dict):
        raise ValueError(f"Config file {path!r} must hold a mapping, got {type(values).__name__}")
    return {key.replace("-", "_"): value for key, value in values.items()}


def parse(parser: argparse.ArgumentParser, defaults: dict, argv=None) -> argparse.Namespace:
    """Parses `argv`: explicit flags win over `--config FILE`, which wins over `defaults`.

    Every option of `parser` except `--config` must default to None so that
    "not given" can be told apart from "given".
    """
    args = parser.parse_args(argv)
    merged = dict(defaults)
    if getattr(args, "config", None):
        from_file = read_config_file(args.config)
        unknown = sorted(set(from_file) - set(defaults))
        if unknown:
            parser.error(f"unknown option(s) {unknown} in {args.config}; valid: {sorted(defaults)}")
        merged.update(from_file)
    merged.update({k: v for k, v in vars(args).items() if v is not None and k != "config"})
    return argparse.Namespace(**merged)


def validation_split(source, split=None):
    """`split`, or the default validation split of `source`: "val" for a VOC dir, else "validation"."""
    if split:
        return split
    return "val" if os.path.isdir(source.split("+")[0]) else "validation"


def load_dataset(source, split, image_dir=None, dataset_options=None, limit=None):
    """`keras_ssd.data.load` for a command line: sources joined with '+', the first `limit` examples.

    Args:
        source: a `keras_ssd.data.load` source, or several joined with '+'
            (concatenated in that order).
        split, image_dir: as for `keras_ssd.data.load`.
        dataset_options: dict of the source's keyword options
            (`--dataset-options`), or None.
        limit: keep only the first `limit` examples (None: all).

    Returns:
        The `tf.data.Dataset` of example dicts.

    Raises:
        ValueError: a bad source or split, or an option the source does not
            take (named with the `--dataset-options` value).
    """
    dataset_options = dataset_options or {}
    try:
        parts = [
            keras_ssd.data.load(part, split=split, image_dir=image_dir, **dataset_options)
            for part in source.split("+")
        ]
    except TypeError as error:
        raise ValueError(
            f"--dataset-options {json.dumps(dataset_options)} for {source!r}: {error}; "
            "the options of each source are listed in keras_ssd.data.load's docstring"
        ) from error
    dataset = parts[0]
    for other in parts[1:]:
        dataset = dataset.concatenate(other)
    return dataset.take(limit) if limit else dataset
