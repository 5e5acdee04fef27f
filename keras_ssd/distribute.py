"""`tf.distribute` strategies by name: the package scales on TensorFlow's own engine."""

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name="default"):
    """Returns the `tf.distribute.Strategy` called `name`.

    Args:
        name: "default" (no distribution), "mirrored" (all local GPUs),
            "multi_worker" (`MultiWorkerMirroredStrategy`; reads `TF_CONFIG`),
            or "tpu" (`TPUStrategy` on the TPU found by `TPUClusterResolver`).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; valid strategies: {list(STRATEGIES)}")


def _tf_config():
    return json.loads(os.environ.get("TF_CONFIG", "{}"))


def worker_index():
    """This process's task index in `TF_CONFIG` (0 when not multi-worker, -1 for other roles)."""
    task = _tf_config().get("task", {})
    return int(task.get("index", 0)) if task.get("type", "worker") in ("worker", "chief") else -1


def is_chief():
    """True for the process that writes checkpoints and logs."""
    config = _tf_config()
    task = config.get("task", {})
    if not task:
        return True
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0
