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


def in_multi_worker_mode(strategy):
    """True for a `MultiWorkerMirroredStrategy` with more than one worker."""
    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and strategy.extended._in_multi_worker_mode()


def reducible_across_workers(logs):
    """`logs` with every scalar reshaped to `[1]`.

    Keras 3.15 reduces a multi-worker step's logs with `strategy.reduce("MEAN",
    value, axis=0)`, which fails on the scalar loss ("Invalid reduction
    dimension 0 for input with 0 dimensions"); over `[1]`-shaped values the same
    reduction is the mean across replicas, a scalar again.
    """
    return {key: tf.reshape(value, [1]) if value.shape.rank == 0 else value for key, value in logs.items()}


def build_from_local_replica(model, iterator):
    """Builds `model`'s loss, metrics and optimizer state from one local replica's batch.

    Keras 3.15's TensorFlow trainer builds them before the first step by
    reducing a distributed batch with `strategy.reduce("MEAN", ...)`, which
    `MultiWorkerMirroredStrategy` cannot do on a nested batch ("Attempt to
    convert a value (PerReplica ...)", keras-team/keras#20585). The build only
    needs shapes and dtypes, which every replica's part of the batch has.

    Args:
        model: a compiled `keras.Model` under `model.distribute_strategy`.
        iterator: Keras' epoch iterator, yielding `(step, size, data_iterator)`;
            one batch is taken from it, as Keras itself does.
    """
    strategy = model.distribute_strategy
    batch = None
    for _, _, data_iterator in iterator:
        batch = next(data_iterator)
        break
    local = tf.nest.map_structure(
        lambda value: strategy.experimental_local_results(value)[0]
        if isinstance(value, tf.distribute.DistributedValues)
        else value,
        batch,
    )
    with strategy.scope():
        model._symbolic_build(data_batch=local)
