"""Command-line options shared by the entry points: flags over a YAML/JSON file over defaults."""

import argparse
import json
import os

import yaml


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
