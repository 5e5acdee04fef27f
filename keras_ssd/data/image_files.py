"""Image files on disk: one reader for every entry point.

`read_image` is the only way keras_ssd turns an image file into pixels: the
VOC and COCO sources (through `load_image` inside `tf.data`), evaluation of
exported models on those sources, and `python -m training.predict` all call
it, so a file gives the same pixels everywhere. It reads what cameras, phones
and annotation tools write: JPEG (grayscale, RGB, CMYK), PNG (grayscale,
palette, RGBA, 8 or 16 bit), BMP, GIF (first frame), WebP and TIFF, through
Pillow, and always returns uint8 RGB `[H, W, 3]`:

* 16-bit images are scaled to 8 bits (the high byte, as libpng and
  `tf.image.convert_image_dtype` do), never clamped;
* grayscale is replicated to 3 channels, palettes and CMYK are converted,
  alpha is dropped (the stored colour of transparent pixels is kept);
* the EXIF orientation tag is applied, so a phone photo comes out upright.

Boxes of a dataset refer to the upright image, the one the EXIF tag
describes: CVAT, LabelImg, labelme and web tools such as Label Studio all
show and annotate photos with the orientation applied, and write the upright
width and height into VOC `<size>` and COCO `width`/`height`. `probe_image`
returns that upright size, so boxes are normalised by it.

`probe_image` reads only a file's header and tail, so a whole dataset can be
checked before training starts: it finds missing, empty, truncated and
non-image files.
"""

import dataclasses
import os
import warnings

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TAIL_BYTES = 1024
_EXIF_ORIENTATION = 0x0112
_FORMATS = "JPEG, PNG, BMP, GIF, WebP or TIFF"
# EXIF orientation -> the numpy operation that makes stored pixels upright
# (the same transforms as PIL.ImageOps.exif_transpose).
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}
_INTEGER_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class ImageFileError(ValueError):
    """A file is missing, unreadable, truncated or not an image."""


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What `probe_image` learns from a file's header.

    Attributes:
        format: Pillow's format name, lower case ("jpeg", "png", "gif",
            "bmp", "webp", "tiff").
        height: height of the upright image in pixels (EXIF orientation
            applied), the height boxes refer to.
        width: width of the upright image in pixels.
        orientation: the EXIF orientation tag, 1 (none) to 8.
    """

    format: str
    height: int
    width: int
    orientation: int = 1


def _orientation(image: Image.Image) -> int:
    with warnings.catch_warnings():  # Pillow warns about malformed EXIF blocks
        warnings.simplefilter("ignore")
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    return value if value in _UPRIGHT else 1


def _check_tail(head: bytes, tail: bytes) -> None:
    # EOI cannot appear inside entropy-coded data (0xFF is stuffed), so its
    # absence from the tail means the file was cut short.
    if head.startswith(b"\xff\xd8") and b"\xff\xd9" not in tail:
        raise ImageFileError("truncated JPEG (no end-of-image marker)")
    if head.startswith(_PNG_SIGNATURE) and b"IEND" not in tail[-12:]:
        raise ImageFileError("truncated PNG (no IEND chunk)")


def probe_image(path: str) -> ImageInfo:
    """Checks that `path` is a complete image and returns its upright size.

    Reads the header (size and EXIF orientation) and the last bytes (JPEG
    must end with its EOI marker, PNG with its IEND chunk), never the pixel
    data.

    Args:
        path: image file path.

    Returns:
        An `ImageInfo`: format, the upright height and width in pixels (for
        EXIF orientations 5 to 8 the stored sides swapped), orientation.

    Raises:
        ImageFileError: the file is missing, empty, truncated, not an image,
            or has a zero size; the message says which.
    """
    if not os.path.isfile(path):
        raise ImageFileError("image file not found")
    file_size = os.path.getsize(path)
    if file_size == 0:
        raise ImageFileError("image file is empty")
    with open(path, "rb") as f:
        head = f.read(32)
        f.seek(max(0, file_size - _TAIL_BYTES))
        tail = f.read()
    _check_tail(head, tail)
    try:
        with Image.open(path) as image:
            fmt, (width, height), orientation = image.format, image.size, _orientation(image)
    except UnidentifiedImageError:
        raise ImageFileError(
            f"not an image file (starts with {head[:8]!r}; {_FORMATS} expected)"
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageFileError(f"unreadable image header: {error}") from error
    if height <= 0 or width <= 0:
        raise ImageFileError(f"image header gives size {height}x{width}")
    if orientation >= 5:  # a quarter turn: the upright image is transposed
        height, width = width, height
    return ImageInfo(fmt.lower(), int(height), int(width), orientation)


def try_probe(path: str) -> "tuple[ImageInfo | None, str | None]":
    """`probe_image` that returns `(info, None)` or `(None, reason)`."""
    try:
        return probe_image(path), None
    except (ImageFileError, OSError) as e:
        return None, str(e)


def checked_size(image_path: str, declared, report, where: str, source: str):
    """The upright `(height, width)` of an image file, or None after reporting it skipped.

    Args:
        image_path: the image file.
        declared: `(height, width)` the annotation gives, or `(None, None)`/None.
        report: the reader's `SkipReport`.
        where: what a size mismatch is reported against (annotation file, image id).
        source: how the annotation names the size ("json", "<size>").

    Returns:
        `(height, width)` of the upright image (EXIF orientation applied;
        boxes are normalised by it), or None when the file is unreadable
        (skipped with its reason).
    """
    info, reason = try_probe(image_path)
    if info is None:
        report.skip_example(image_path, reason)
        return None
    size = (info.height, info.width)
    if declared and tuple(declared) != (None, None) and tuple(declared) != size:
        hint = ""
        if tuple(declared) == size[::-1] and info.orientation >= 5:
            hint = (
                f" (its EXIF orientation {info.orientation} turns it a quarter: if the boxes "
                "were drawn on the stored pixels, re-save the image without the tag)"
            )
        report.note(
            where,
            f"{source} says {declared[0]}x{declared[1]} but the upright image is "
            f"{size[0]}x{size[1]}{hint}; boxes are normalised by the image's size",
        )
    return size


def _rgb8(image: Image.Image) -> np.ndarray:
    """uint8 RGB `[H, W, 3]` of a Pillow image in the stored orientation."""
    if image.mode in _INTEGER_GRAY_MODES:
        values = np.asarray(image)
        # Pillow opens 16-bit grayscale as "I;16" (or the 32-bit "I"); any
        # other "I" range has no 8-bit meaning to scale to.
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(
                f"32-bit integer pixels ({values.min()}..{values.max()}) are not supported; "
                "save the image with 8 or 16 bits per channel"
            )
        gray = (values.astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "F":
        raise ValueError(
            "floating-point pixels are not supported; save the image with 8 or 16 bits per channel"
        )
    return np.asarray(image.convert("RGB"))


def read_image(path) -> np.ndarray:
    """Reads an image file as upright uint8 RGB pixels.

    Args:
        path: path of a JPEG, PNG, BMP, GIF, WebP or TIFF file (str, bytes or
            path-like).

    Returns:
        uint8 `[H, W, 3]` RGB, EXIF orientation applied (H, W are the
        upright sides, as `probe_image` gives them), 16-bit images scaled to
        8 bits, grayscale replicated, palette and CMYK converted, alpha dropped.

    Raises:
        ImageFileError: the file is missing, not an image, truncated or in a
            pixel format with no 8-bit RGB meaning; the message names the file.
    """
    path = os.fsdecode(path)
    if not os.path.isfile(path):
        raise ImageFileError(f"cannot read image {path!r}: file not found")
    try:
        with Image.open(path) as image:
            orientation = _orientation(image)
            pixels = _rgb8(image)
    except UnidentifiedImageError:
        raise ImageFileError(f"cannot read image {path!r}: not an image file ({_FORMATS} expected)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageFileError(f"cannot read image {path!r}: {error}") from error
    if orientation in _UPRIGHT:
        pixels = _UPRIGHT[orientation](pixels)
    return np.ascontiguousarray(pixels)


def load_image(path: tf.Tensor) -> tf.Tensor:
    """`read_image` as a TensorFlow op, for `tf.data` maps (graph-mode safe).

    Args:
        path: scalar tf.string, the image file's path.

    Returns:
        uint8 tensor `[H, W, 3]`, the pixels `read_image` gives.
    """
    image = tf.numpy_function(lambda p: read_image(np.asarray(p).item()), [path], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    return image
