"""`read_image` / `probe_image`: every image kind gives upright uint8 RGB, the same in every path."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from keras_ssd import data
from keras_ssd.data import image_files

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 20, 3)).astype(np.uint8)
GRAY = RGB[..., 0]


def _save(tmp_path, name, image, **options):
    path = str(tmp_path / name)
    image.save(path, **options)
    return path


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def test_16_bit_images_are_scaled_to_8_bits_not_clamped(tmp_path):
    gray16 = _save(tmp_path, "gray16.png", Image.fromarray(GRAY.astype(np.uint16) * 257))
    assert Image.open(gray16).mode == "I;16"
    np.testing.assert_array_equal(data.read_image(gray16), np.repeat(GRAY[..., None], 3, -1))
    rgb16 = str(tmp_path / "rgb16.png")
    tf.io.write_file(rgb16, tf.io.encode_png(tf.constant(RGB.astype(np.uint16) * 257)))
    np.testing.assert_array_equal(data.read_image(rgb16), RGB)
    # Values that are not multiples of 257 keep their high byte.
    ramp = _save(tmp_path, "ramp.png", Image.fromarray(np.arange(0, 65536, 256, dtype=np.uint16).reshape(16, 16)))
    np.testing.assert_array_equal(data.read_image(ramp)[..., 0].ravel(), np.arange(256))


@pytest.mark.parametrize(
    "name, image, options",
    [
        ("gray.png", Image.fromarray(GRAY), {}),
        ("palette.png", Image.fromarray(RGB).quantize(256, dither=Image.Dither.NONE), {}),
        ("rgba.png", Image.fromarray(np.dstack([RGB, GRAY])), {}),
        ("la.png", Image.fromarray(np.dstack([GRAY, GRAY]), "LA"), {}),
        ("bilevel.png", Image.fromarray(GRAY > 127), {}),
        ("image.bmp", Image.fromarray(RGB), {}),
        ("image.gif", Image.fromarray(RGB).quantize(256, dither=Image.Dither.NONE), {}),
        ("lossless.webp", Image.fromarray(RGB), {"lossless": True}),
        ("image.tiff", Image.fromarray(RGB), {}),
        ("cmyk.jpg", Image.fromarray(RGB).convert("CMYK"), {"quality": 100}),
    ],
)
def test_every_kind_is_read_as_pillow_shows_it_in_rgb(tmp_path, name, image, options):
    path = _save(tmp_path, name, image, **options)
    got = data.read_image(path)
    assert got.dtype == np.uint8 and got.shape == (12, 20, 3)
    np.testing.assert_array_equal(got, np.asarray(Image.open(path).convert("RGB")))
    assert image_files.probe_image(path).format == Image.open(path).format.lower()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_probe_gives_the_upright_size(tmp_path, orientation):
    path = _save(tmp_path, "phone.jpg", Image.fromarray(RGB), exif=_exif(orientation), quality=95)
    with Image.open(path) as stored:
        upright = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"))
    got = data.read_image(path)
    np.testing.assert_array_equal(got, upright)
    info = image_files.probe_image(path)
    assert (info.height, info.width, info.orientation) == (*upright.shape[:2], orientation)
    # The tf.data op gives the same pixels.
    np.testing.assert_array_equal(image_files.load_image(tf.constant(path)).numpy(), upright)


def test_voc_boxes_refer_to_the_upright_image(tmp_path, files):
    # Stored 12x20, EXIF 6 (turn 90 degrees clockwise): the upright image is 20x12.
    root = tmp_path / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    Image.fromarray(RGB).save(root / "JPEGImages" / "p.jpg", exif=_exif(6), quality=95)
    files.write_voc_xml(str(root), "p", "p.jpg", (20, 12), [("cat", (1, 1, 6, 10), False)])
    (ex,) = list(data.load(str(root), None).as_numpy_iterator())
    assert ex["image"].shape == (20, 12, 3)
    np.testing.assert_allclose(ex["boxes"], [[0, 0, 10 / 20, 6 / 12]], atol=1e-6)
    # An XML giving the stored size is repaired, with a hint about the tag.
    files.write_voc_xml(str(root), "p", "p.jpg", (12, 20), [("cat", (1, 1, 6, 10), False)])
    with pytest.warns(data.BadInputWarning, match="EXIF orientation 6 turns it a quarter"):
        data.load(str(root), None)


def test_unreadable_files_name_the_file(tmp_path):
    missing = str(tmp_path / "missing.png")
    with pytest.raises(data.ImageFileError, match=f"cannot read image '{missing}': file not found"):
        data.read_image(missing)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(data.ImageFileError, match="notes.jpg': not an image file"):
        data.read_image(str(text))
    wide = _save(tmp_path, "wide.tiff", Image.fromarray(np.full((4, 4), 1 << 20, np.int32)))
    with pytest.raises(data.ImageFileError, match=r"wide.tiff'.*32-bit integer pixels .*8 or 16 bits"):
        data.read_image(wide)
    floats = _save(tmp_path, "float.tiff", Image.fromarray(np.zeros((4, 4), np.float32)))
    with pytest.raises(data.ImageFileError, match=r"float.tiff'.*floating-point pixels"):
        data.read_image(floats)
