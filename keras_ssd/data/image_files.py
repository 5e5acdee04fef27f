"""Image files on disk: a cheap header check in Python, decoding in TensorFlow.

`probe_image` reads only a file's header and tail, so a whole dataset can be
checked before training starts: it finds missing, empty, truncated and
non-image files and returns the true pixel size, which the annotation readers
use to normalise boxes. `decode_image` is the graph-mode decoder used inside
`tf.data`: JPEG (grayscale, RGB or CMYK), PNG (gray, palette, RGBA, 16 bit),
GIF and BMP all come out as uint8 RGB `[H, W, 3]`.
"""

import dataclasses
import os
import struct

import tensorflow as tf

_JPEG_SOF = {
    0xC0,
    0xC1,
    0xC2,
    0xC3,
    0xC5,
    0xC6,
    0xC7,
    0xC9,
    0xCA,
    0xCB,
    0xCD,
    0xCE,
    0xCF,
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TAIL_BYTES = 1024


class ImageFileError(ValueError):
    """A file is missing, unreadable, truncated or not an image."""


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What `probe_image` learns from a file's header.

    Attributes:
        format: "jpeg", "png", "gif" or "bmp".
        height: image height in pixels.
        width: image width in pixels.
    """

    format: str
    height: int
    width: int


def _jpeg_size(f, file_size: int):
    f.seek(2)
    while True:
        byte = f.read(1)
        while byte == b"\xff":  # fill bytes before a marker
            byte = f.read(1)
        if not byte:
            raise ImageFileError("JPEG ends before its frame header (truncated?)")
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length
        length_bytes = f.read(2)
        if len(length_bytes) < 2:
            raise ImageFileError("JPEG ends inside a segment header (truncated?)")
        (length,) = struct.unpack(">H", length_bytes)
        if marker in _JPEG_SOF:
            data = f.read(5)
            if len(data) < 5:
                raise ImageFileError("JPEG frame header is cut short (truncated?)")
            _, height, width = struct.unpack(">BHH", data)
            return height, width
        if length < 2 or f.tell() + length - 2 > file_size:
            raise ImageFileError(
                "JPEG segment runs past the end of the file (truncated?)"
            )
        f.seek(length - 2, os.SEEK_CUR)


def probe_image(path: str) -> ImageInfo:
    """Checks that `path` is a complete, decodable image and returns its size.

    Reads the header (for the size) and the last bytes (JPEG must end with its
    EOI marker, PNG with its IEND chunk), never the pixel data.

    Args:
        path: image file path.

    Returns:
        An `ImageInfo` with format, height and width in pixels.

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
        if head.startswith(b"\xff\xd8"):
            fmt = "jpeg"
            # EOI cannot appear inside entropy-coded data (0xFF is stuffed),
            # so its absence from the tail means the file was cut short.
            if b"\xff\xd9" not in tail:
                raise ImageFileError("truncated JPEG (no end-of-image marker)")
            height, width = _jpeg_size(f, file_size)
        elif head.startswith(_PNG_SIGNATURE):
            fmt = "png"
            if len(head) < 24 or head[12:16] != b"IHDR":
                raise ImageFileError("PNG without IHDR header")
            width, height = struct.unpack(">II", head[16:24])
            if b"IEND" not in tail[-12:]:
                raise ImageFileError("truncated PNG (no IEND chunk)")
        elif head[:6] in (b"GIF87a", b"GIF89a"):
            fmt = "gif"
            width, height = struct.unpack("<HH", head[6:10])
        elif head.startswith(b"BM") and len(head) >= 26:
            fmt = "bmp"
            width, height = struct.unpack("<ii", head[18:26])
            height = abs(height)
        else:
            raise ImageFileError(
                f"not an image file (starts with {head[:8]!r}; JPEG, PNG, GIF or BMP expected)"
            )
    if height <= 0 or width <= 0:
        raise ImageFileError(f"image header gives size {height}x{width}")
    return ImageInfo(fmt, int(height), int(width))


def try_probe(path: str) -> "tuple[ImageInfo | None, str | None]":
    """`probe_image` that returns `(info, None)` or `(None, reason)`."""
    try:
        return probe_image(path), None
    except (ImageFileError, OSError, struct.error) as e:
        return None, str(e)


def checked_size(image_path: str, declared, report, where: str, source: str):
    """The true `(height, width)` of an image file, or None after reporting it skipped.

    Args:
        image_path: the image file.
        declared: `(height, width)` the annotation gives, or `(None, None)`/None.
        report: the reader's `SkipReport`.
        where: what a size mismatch is reported against (annotation file, image id).
        source: how the annotation names the size ("json", "<size>").

    Returns:
        `(height, width)` from the file's header (boxes are normalised by it),
        or None when the file is unreadable (skipped with its reason).
    """
    info, reason = try_probe(image_path)
    if info is None:
        report.skip_example(image_path, reason)
        return None
    size = (info.height, info.width)
    if declared and tuple(declared) != (None, None) and tuple(declared) != size:
        report.note(
            where,
            f"{source} says {declared[0]}x{declared[1]} but the image is {size[0]}x{size[1]}; "
            "boxes are normalised by the image's size",
        )
    return size


def decode_image(contents: tf.Tensor) -> tf.Tensor:
    """Decodes encoded image bytes to uint8 RGB `[H, W, 3]` (graph-mode safe).

    Grayscale is replicated to 3 channels, alpha is dropped, CMYK JPEG and
    palette PNG are converted to RGB, 16-bit PNG is scaled to 8 bits.

    Args:
        contents: scalar tf.string, the file's bytes.

    Returns:
        uint8 tensor `[H, W, 3]`.
    """
    image = tf.io.decode_image(
        contents, channels=3, dtype=tf.uint8, expand_animations=False
    )
    image.set_shape([None, None, 3])
    return image
