"""TF Serving up to the server: a gRPC PredictRequest and a REST body, run through the SavedModel.

No TF Serving binary runs here. These tests build the requests exactly as a
client does (names and dtypes read from the exported signature, tensors as
`TensorProto`s / base64 JSON), hand their tensors to the loaded SavedModel as
the server would, and check the answer against the Keras detector.
"""

import base64
import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.tools import saved_model_utils

from conftest import assert_same_detections, encode

predict_pb2 = pytest.importorskip("tensorflow_serving.apis.predict_pb2")


def _signature_inputs(saved_model_dir, signature):
    meta_graph = saved_model_utils.get_meta_graph_def(saved_model_dir, "serve")
    return dict(meta_graph.signature_def[signature].inputs)


def _serve(saved_model_dir, request):
    """What the server does with a PredictRequest: tensors in, PredictResponse out."""
    function = tf.saved_model.load(saved_model_dir).signatures[request.model_spec.signature_name]
    inputs = {key: tf.constant(tf.make_ndarray(proto)) for key, proto in request.inputs.items()}
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for key, value in function(**inputs).items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    return response.SerializeToString()


@pytest.mark.parametrize("signature", ["serving_default", "serve_image_bytes"])
def test_grpc_predict_request_gives_keras_detections(saved_model_dir, keras_detector, images, signature):
    (name, info), = _signature_inputs(saved_model_dir, signature).items()
    dtype = tf.dtypes.as_dtype(info.dtype)
    batch = images[:4]
    value = batch if dtype == tf.uint8 else np.array([encode(image) for image in batch], object)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "ssd_tiny"
    request.model_spec.signature_name = signature
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))

    wire = request.SerializeToString()  # what travels to the server
    response = predict_pb2.PredictResponse.FromString(_serve(saved_model_dir, predict_pb2.PredictRequest.FromString(wire)))
    outputs = {key: tf.make_ndarray(proto) for key, proto in response.outputs.items()}
    assert set(outputs) == {"detection_boxes", "detection_scores", "detection_classes", "num_detections"}
    expected = keras_detector(batch.astype(np.float32))
    assert assert_same_detections(expected, outputs, tol=1e-3) >= len(batch) // 2


def test_rest_json_body_with_base64_images(saved_model_dir, keras_detector, images):
    # The README's REST example: {"signature_name": ..., "instances": [{"b64": ...}]}.
    body = json.dumps(
        {
            "signature_name": "serve_image_bytes",
            "instances": [{"b64": base64.b64encode(encode(image)).decode("ascii")} for image in images[:2]],
        }
    )
    # TF Serving's JSON decoding for a signature with one input: each instance
    # is that input's value; {"b64": s} is a DT_STRING of the decoded bytes.
    request = json.loads(body)
    (name, info), = _signature_inputs(saved_model_dir, request["signature_name"]).items()
    assert info.dtype == tf.string.as_datatype_enum
    value = tf.constant([base64.b64decode(i["b64"]) for i in request["instances"]])
    function = tf.saved_model.load(saved_model_dir).signatures[request["signature_name"]]
    outputs = function(**{name: value})
    expected = keras_detector(images[:2].astype(np.float32))
    assert assert_same_detections(expected, outputs, tol=1e-3) >= 2
