"""Convert another implementation's SSD weights into a keras_ssd `.keras` model.

    python -m training.convert_weights --from torchvision ssd300_vgg16_coco-b556d3b4.pth \\
        --output ssd300_coco.keras

`--from torchvision` reads a state dict of torchvision's `ssd300_vgg16` (the
COCO checkpoint is at https://download.pytorch.org/models/ssd300_vgg16_coco-b556d3b4.pth;
a fine-tuned torchvision model with other classes works too). Needs PyTorch
(`pip install 'keras_ssd[torch]'`, CPU build enough), not torchvision. The
`.keras` model takes RGB 0..255 images and gives the same class logits and
boxes as torchvision; the 91 COCO names ("N/A" placeholders included) are
stored in it. With `--num-classes` (and `--class-names`) the class heads are
replaced by fresh ones for fine-tuning; backbone and box heads are kept.
"""

import argparse
import os
import sys

from keras_ssd.convert import convert_torchvision_ssd300, load_torchvision_state_dict
from keras_ssd.transfer import with_num_classes
from training import cli

SOURCES = ("torchvision",)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m training.convert_weights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--from",
        dest="source",
        nargs=2,
        required=True,
        metavar=("FORMAT", "PATH"),
        help=f"weights format ({', '.join(SOURCES)}) and file, e.g. --from torchvision M.pth",
    )
    parser.add_argument("--output", required=True, help="the .keras file to write")
    parser.add_argument(
        "--num-classes", type=int, default=None, help="replace the class heads for N classes"
    )
    parser.add_argument(
        "--class-names", default=None, help="comma-separated names of the --num-classes classes"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    return parser


def convert(source, path, output, num_classes=None, class_names=None, overwrite=False):
    """Converts `path` (format `source`) and saves the model to `output`.

    Returns:
        The converted `SSD` model.
    """
    if source not in SOURCES:
        raise ValueError(f"Unknown --from format {source!r}; valid: {list(SOURCES)}")
    if not output.endswith(".keras"):
        raise ValueError(f"--output must end in .keras, got {output!r}")
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
    if class_names is not None and num_classes is None:
        num_classes = len(class_names)
    model = convert_torchvision_ssd300(load_torchvision_state_dict(path))
    if num_classes is not None:
        model = with_num_classes(model, num_classes, class_names)
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    model.save(output)
    return model


@cli.entry_point
def main(argv=None):
    args = build_parser().parse_args(argv)
    source, path = args.source
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    model = convert(source, path, args.output, args.num_classes, names, args.overwrite)
    cfg = model.ssd_config
    print(
        f"{args.output}: {cfg.name}, {cfg.num_classes} classes, {model.count_params():,} parameters"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
