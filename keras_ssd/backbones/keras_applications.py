"""Loading a `keras.applications` network's weights, from ImageNet or a local file."""


def keras_application(constructor, weights, imagenet_top):
    """`constructor(weights=weights)`, with its classifier top when the weights have one.

    Args:
        constructor: a `keras.applications` function, e.g. `keras.applications.VGG16`.
        weights: "imagenet" (Keras downloads the file; fails offline) or a
            path to weights saved from `constructor(...)`, with or without the top.
        imagenet_top: for "imagenet", whether to download the file with the top.

    Returns:
        The Keras model holding the weights, at its default input size.

    Raises:
        ValueError: `weights` is a file that fits the network neither with nor
            without the top (the message names the file).
    """
    if weights == "imagenet":
        return constructor(include_top=imagenet_top, weights="imagenet")
    try:
        return constructor(include_top=True, weights=weights)
    except ValueError:
        pass
    try:
        return constructor(include_top=False, weights=weights)
    except ValueError as error:
        raise ValueError(
            f"Backbone weights file {weights!r} is not a keras.applications.{constructor.__name__} "
            f"weights file (with or without the top): {error}"
        ) from error
