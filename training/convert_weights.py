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

import os
import sys

from keras_ssd.convert import convert_torchvision_ssd300, load_torchvision_state_dict
from keras_ssd.transfer import with_num_classes
from training import cli, options
from training.options import Option

SOURCES = ("torchvision",)


COMMAND = options.Command("python -m training.convert_weights", __doc__, [
    Option("from", f"weights format ({', '.join(SOURCES)}) and file, e.g. --from torchvision M.pth",
           nargs=2, required=True),
    Option("output", "the .keras file to write", required=True),
    Option("num_classes", "replace the class heads for N classes", type=int),
    Option("class_names", "comma-separated names of the --num-classes classes"),
    Option("overwrite", "replace an existing --output", switch=True, default=False),
])


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
    args = COMMAND.parse(argv)
    source, path = vars(args)["from"]
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    model = convert(source, path, args.output, args.num_classes, names, args.overwrite)
    cfg = model.ssd_config
    print(
        f"{args.output}: {cfg.name}, {cfg.num_classes} classes, {model.count_params():,} parameters"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
