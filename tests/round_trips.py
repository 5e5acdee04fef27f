"""Serialisation checks shared by the tests of every custom layer, loss, schedule and model.

`check_config_round_trip` rebuilds an object from `keras.saving.serialize_keras_object`
(no custom_objects: the classes must be registered) and compares configs and,
given inputs, outputs; `check_keras_file_round_trip` saves a model to `.keras`,
loads it back and compares outputs.
"""

import keras
import numpy as np


def _outputs(obj, inputs):
    outputs = obj(*inputs) if isinstance(inputs, tuple) else obj(inputs)
    return keras.tree.map_structure(np.asarray, outputs)


def check_config_round_trip(obj, inputs=None, atol=0.0):
    """Serialises `obj`, rebuilds it, and checks the clone's config (and outputs on `inputs`).

    Args:
        obj: a Keras layer, loss or learning-rate schedule of keras_ssd.
        inputs: optional input (a tuple for several arguments); a layer's
            weights are copied to the clone before comparing outputs.
        atol: output tolerance.

    Returns:
        The clone.
    """
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(clone) is type(obj)
    assert clone.get_config() == obj.get_config()
    if inputs is not None:
        expected = _outputs(obj, inputs)
        if isinstance(obj, keras.layers.Layer) and obj.weights:
            _outputs(clone, inputs)  # builds it
            clone.set_weights(obj.get_weights())
        keras.tree.map_structure(
            lambda a, b: np.testing.assert_allclose(a, b, atol=atol), expected, _outputs(clone, inputs)
        )
    return clone


def check_keras_file_round_trip(model, inputs, path, atol=0.0):
    """Saves `model` to `path` (`.keras`), loads it without custom_objects, compares outputs.

    Returns:
        The loaded model (its class, config and compiled loss are the caller's to check).
    """
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    if not type(model).__module__.startswith("keras."):  # Keras' functional configs hold generated names
        assert loaded.get_config() == model.get_config()
    keras.tree.map_structure(
        lambda a, b: np.testing.assert_allclose(a, b, atol=atol), _outputs(model, inputs), _outputs(loaded, inputs)
    )
    return loaded
