"""`TFLiteDetector`: an exported `.tflite` SSD run like `keras_ssd.build_detector`'s model."""

import os

import numpy as np

from keras_ssd.detections import as_detections
from keras_ssd.export import labels
from keras_ssd.export.images import resize_images


def check_images(images):
    """Checks a batch of images as exported models take it.

    Args:
        images: uint8 `[B, H, W, 3]` RGB.

    Returns:
        `images` as a numpy array.

    Raises:
        ValueError: wrong rank, channel count, an empty batch or image, or a dtype other than
            uint8 (the message quotes what was given).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 [B, H, W, 3] RGB, got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(
            f"images must be uint8 [B, H, W, 3] RGB 0..255, got dtype {images.dtype}; "
            "convert with np.clip(images, 0, 255).astype(np.uint8)"
        )
    if min(images.shape[:3]) < 1:
        raise ValueError(f"images must hold at least one image of positive size, got shape {images.shape}")
    return images


def at_input_size(images, image_size):
    """uint8 `[B, H, W, 3]` images at the network input, as exported graphs take them.

    Returns `images` unchanged when H and W are S, else resized to S x S
    (bilinear, as `resize_images`) and rounded to uint8 `[B, S, S, 3]`.
    """
    if images.shape[1:3] == (image_size, image_size):
        return images
    resized = resize_images(images, image_size).numpy()
    return np.clip(np.round(resized), 0, 255).astype(np.uint8)


class TFLiteDetector:
    """Runs a `.tflite` file from `keras_ssd.export.export_tflite` in `ai_edge_litert`.

    Args:
        path: the `.tflite` file; class names are read from `<stem>.labels.txt`
            when present.
        num_threads: interpreter threads; None: all of the machine's cores
            (the exported post-processing gives the same detections at any
            thread count).
        xnnpack: True runs LiteRT's default delegate (XNNPack) as an app does;
            False runs LiteRT's built-in kernels only
            (`OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`), slower, to tell
            a delegate's numerics from the model's.

    Attributes:
        image_size: side S of the model's input.
        class_names: list of names, or None without a labels file.
        interpreter: the `ai_edge_litert.interpreter.Interpreter`.

    Raises:
        ValueError: `path` is missing, not a `.tflite` flatbuffer (truncated
            or another kind of file), or has no `serving_default` signature
            with an `images` input; the message names the file.
    """

    def __init__(self, path, num_threads=None, xnnpack=True):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        path = str(path)
        if not os.path.isfile(path):
            raise ValueError(f"TFLite model {path!r} does not exist")
        try:
            self.interpreter = Interpreter(
                model_path=path,
                num_threads=num_threads or os.cpu_count(),
                experimental_op_resolver_type=(
                    OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                ),
            )
            self._runner = self.interpreter.get_signature_runner("serving_default")
            spec = self._runner.get_input_details()["images"]
        except (ValueError, RuntimeError, KeyError) as error:
            raise ValueError(
                f"{path!r} is not a TFLite detection model exported by keras_ssd "
                f"(truncated, or not a .tflite file: {error})"
            ) from None
        self.image_size = int(spec["shape"][1])
        self.class_names = labels.read_labels(labels.labels_path_beside(path))

    def __call__(self, images):
        """Detects objects, one image at a time (the TFLite op takes batch 1).

        Args:
            images: uint8 `[B, H, W, 3]` RGB; resized to S x S (bilinear, then
                rounded to uint8) when H or W differs from S.

        Returns:
            dict of numpy arrays as `build_detector`'s model returns
            (`keras_ssd.detections.as_detections`): `detection_boxes` float32
            `[B, K, 4]` normalised yxyx, clipped to [0, 1], `detection_scores`
            float32 `[B, K]`, `detection_classes` int32 `[B, K]` (0-based),
            `num_detections` int32 `[B]`. Rows past `num_detections` are zero:
            the TFLite op leaves them as the interpreter's memory held them.

        Raises:
            ValueError: images of the wrong rank, channel count or dtype.
        """
        images = at_input_size(check_images(images), self.image_size)
        outputs = [self._runner(images=image[None]) for image in images]
        # Fast-NMS files return the op's unclipped decode; as_detections clips every file alike.
        return as_detections({key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]})
