"""Command-line options declared once: each `Option` gives the flag, the config-file key and the default.

Every entry point describes its options as a `Command`; `Command.parse` reads
them with one precedence: flags over the `--config` YAML/JSON file over the
option's default. (`training.train` puts the preset's recipe between the file
and the defaults: its recipe options default to None, "the recipe's".) The
dataset options, `dataset_options(prefix)`, are the same in `train`, `evaluate`
and `export`.
"""

import argparse
import dataclasses
import json
import os
from typing import Any, Callable, Optional, Tuple

import yaml

import keras_ssd
from keras_ssd.precision import PRECISIONS


@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line option.

    Attributes:
        name: the config-file key (underscored); the flag is `--name-with-dashes`.
        help: what it does, for `--help`.
        type: converts a flag's text (json.loads for JSON values); file values
            arrive already typed.
        default: the value when neither a flag nor the file gives one.
        choices: the accepted values (checked for the file too).
        nargs: as for argparse ("+" or "*" take lists).
        required: must come from a flag or the file.
        switch: a flag without a value that sets True.
        positional: given without a flag (e.g. image files).
    """

    name: str
    help: str
    type: Optional[Callable] = str
    default: Any = None
    choices: Optional[Tuple] = None
    nargs: Optional[str] = None
    required: bool = False
    switch: bool = False
    positional: bool = False

    @property
    def flag(self):
        return self.name if self.positional else "--" + self.name.replace("_", "-")


def precision_option(applies_to):
    """The `--precision` option of an inference command, for `applies_to` (e.g. "a .keras model's")."""
    return Option("precision", f"{applies_to} numeric precision: auto (mixed_bfloat16 on CPUs with AVX512_BF16 "
                  "or AMX, mixed_float16 on tensor-core GPUs, else float32; keras_ssd.precision) or a Keras "
                  "policy (default auto)", default="auto", choices=PRECISIONS)


def dataset_options(prefix="", role="the data", dataset=None, split=None, examples=None, inherit=None):
    """The options that pick a dataset, named `{prefix}dataset`, `{prefix}split`, ...

    Args:
        prefix: "" or e.g. "val_", "calibration_".
        role: what the data is for, in the help texts.
        dataset, split, examples: their defaults (a split of None follows
            `validation_split`).
        inherit: the prefix whose dataset, image dir and options this group
            falls back to, for the help texts (the caller applies it).
    """
    same = f" (default: --{inherit}dataset's)" if inherit is not None else ""
    dataset_default = same or f" (default {dataset})"
    split_default = split or "'val' for a VOC dir, else 'validation'"
    return [
        Option(f"{prefix}dataset", f"source of {role}: 'shapes', 'voc/2007', 'coco/2017', a VOC dir "
               f"or a COCO json; join several with '+'{dataset_default}", default=dataset),
        Option(f"{prefix}split", f"split of {role} (default {split_default})", default=split),
        Option(f"{prefix}image_dir", f"image directory of a COCO json --{prefix}dataset{same}".replace("_", "-")),
        Option(f"{prefix}dataset_options", f"JSON keyword options for keras_ssd.data.load of {role}, e.g. "
               '\'{"object_size": [0.1, 0.8]}\' for shapes or \'{"data_dir": "..."}\' for TFDS' + same,
               type=json.loads),
        Option(f"{prefix}examples", f"use only the first N examples of {role} (default {examples or 'all'})",
               type=int, default=examples),
    ]


class Command:
    """An entry point's options: builds its parser and parses with one precedence.

    Args:
        prog: e.g. "python -m training.train".
        description: the module docstring.
        options: its `Option`s (names must be unique).
    """

    def __init__(self, prog, description, options):
        self.prog = prog
        self.description = description
        self.options = {option.name: option for option in options}
        if len(self.options) != len(options):
            raise ValueError(f"{prog}: option names repeat")

    @property
    def defaults(self):
        """Each option's default, by config-file key."""
        return {name: option.default for name, option in self.options.items()}

    def parser(self):
        """The argparse parser; every option defaults to None so a flag not given can be told apart."""
        parser = argparse.ArgumentParser(
            prog=self.prog, description=self.description, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        parser.add_argument("--config", help="YAML or JSON file of these options (underscored names); flags win")
        for option in self.options.values():
            kwargs = {"help": option.help}
            if option.switch:
                kwargs.update(action="store_const", const=True)
            else:
                kwargs.update(type=option.type, choices=option.choices, nargs=option.nargs)
            if option.positional:
                kwargs["nargs"] = "*"
            else:
                kwargs["default"] = None
            parser.add_argument(option.flag, **kwargs)
        return parser

    def parse(self, argv=None) -> argparse.Namespace:
        """Parses `argv`: explicit flags win over `--config FILE`, which wins over the defaults.

        Raises (through argparse, as one `error:` line and exit status 2): an
        unknown key or a value outside the choices in the file, a missing
        required option.
        """
        parser = self.parser()
        args = parser.parse_args(argv)
        merged = self.defaults
        if args.config:
            try:
                from_file = read_config_file(args.config)
            except ValueError as error:
                parser.error(str(error))
            unknown = sorted(set(from_file) - set(self.options))
            if unknown:
                parser.error(f"unknown option(s) {unknown} in {args.config}; valid: {sorted(self.options)}")
            for key, value in from_file.items():
                choices = self.options[key].choices
                values = value if isinstance(value, list) and self.options[key].nargs else [value]
                bad = [v for v in values if choices and v not in choices]
                if bad:
                    parser.error(f"{key}: {bad[0]!r} in {args.config} is not one of {list(choices)}")
            merged.update(from_file)
        merged.update({k: v for k, v in vars(args).items() if v not in (None, []) and k != "config"})
        missing = [
            option.flag for option in self.options.values() if option.required and merged[option.name] in (None, [])
        ]
        if missing:
            parser.error(f"{', '.join(missing)} required (as a flag or a key of --config)")
        return argparse.Namespace(**merged)


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


def load_dataset_options(args, prefix=""):
    """`load_dataset` for the `dataset_options(prefix)` values in `args` (the split by `validation_split`)."""
    source = getattr(args, f"{prefix}dataset")
    return load_dataset(
        source,
        validation_split(source, getattr(args, f"{prefix}split")),
        getattr(args, f"{prefix}image_dir"),
        getattr(args, f"{prefix}dataset_options"),
        getattr(args, f"{prefix}examples"),
    )
