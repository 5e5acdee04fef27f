"""Writing a training model's files in a worker thread while it keeps training.

`keras.Model.save` of SSD300 with its SGD state (212 MB) takes 0.3-0.8 s on a
2-core CPU, all of it on the training's critical path at every epoch's end.
`BackgroundSaver` copies the model's state in the time of a memory copy (6-25
ms there) into a twin, a second model built from the same config and compiled
the same way, and saves the twin in a worker thread while the next epoch
trains. The save's CPU time remains (~0.4 s of one core there); it moves off
the critical path, into the next epoch's first steps.
"""

import concurrent.futures
import os
import threading

import keras

from keras_ssd import precision


class BackgroundSaver:
    """A twin of a training model, and one worker thread that runs file jobs in order.

    `snapshot()` copies every variable of the model (weights, batch-norm
    statistics, seed states) and of its optimizer (step count, momenta) into
    the twin and returns it; `submit(job)` queues a function for the worker.
    Jobs run one at a time, in the order submitted, so a job submitted after
    the one that saves the twin finds its file complete. `snapshot` waits for
    the jobs before it so that no job reads the twin while it changes.

    The twin is the model as `keras.models.load_model` would rebuild it (from
    `get_config` under the model's dtype policy, compiled from
    `get_compile_config`), so its `.keras` file is the model's. It costs one
    more copy of the weights and optimizer state in memory.

    After a job fails, the jobs queued behind it are dropped (a copy of a
    file that was not written would be stale) and the next `snapshot`,
    `submit` or `wait` raises the failure.

    Args:
        model: a compiled model whose optimizer is built.

    Raises:
        ValueError: the model cannot be rebuilt into a twin with the same
            variables; the message says why (save in the foreground then).
    """

    def __init__(self, model):
        if model.optimizer is None or not model.optimizer.built:
            raise ValueError("the model has no built optimizer to copy")
        try:
            with precision.global_policy(precision.policy_of(model)):
                twin = model.__class__.from_config(model.get_config())
                twin.compile_from_config(model.get_compile_config())
        except Exception as error:  # a model Keras can save but not rebuild from its config
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise ValueError(f"the model cannot be rebuilt from its config ({type(error).__name__}: {first_line})")
        if twin.optimizer is not None and not twin.optimizer.built:
            twin.optimizer.build(twin.trainable_variables)
        self._pairs = _variable_pairs(model, twin)
        self.twin = twin
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="keras_ssd_save", initializer=_lower_priority)
        self._pending = []
        self._error = None

    def snapshot(self):
        """The twin, holding the model's state as of now (after the queued jobs are done)."""
        self.wait()
        for target, source in self._pairs:
            target.assign(source.value)
        return self.twin

    def submit(self, job):
        """Queues `job()` to run in the worker after the jobs queued before it."""
        self._raise_error()
        self._pending.append(self._worker.submit(self._run, job))

    def _run(self, job):
        if self._error is None:
            try:
                job()
            except BaseException as error:
                self._error = error

    def _raise_error(self):
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def wait(self):
        """Blocks until every queued job has run; raises the first failure among them."""
        for future in self._pending:
            future.result()
        self._pending = []
        self._raise_error()

    def close(self):
        """Waits for the queued jobs (raising a failure) and stops the worker."""
        try:
            self.wait()
        finally:
            self._worker.shutdown(wait=True)


def _lower_priority():
    """Gives the calling thread the lowest CPU priority (Linux: nice 19 per thread), where the OS allows it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


def _variable_pairs(model, twin):
    """`[(twin variable, model variable)]` over the weights, then the optimizer's variables.

    Paired by order, which follows the layers; checked by name, shape and dtype
    (not by path: a model's paths carry the name scopes it was built under).

    Raises:
        ValueError: the two differ in number, name, shape or dtype of variables.
    """
    sources = [*model.variables, *model.optimizer.variables]
    targets = [*twin.variables, *twin.optimizer.variables]
    if len(sources) != len(targets):
        raise ValueError(f"its rebuilt copy has {len(targets)} variables where it has {len(sources)}")
    for index, (target, source) in enumerate(zip(targets, sources)):
        is_weight = index < len(model.variables)
        described = [(v.name if is_weight else "", tuple(v.shape), v.dtype) for v in (target, source)]
        if described[0] != described[1]:
            raise ValueError(f"its rebuilt copy has {target.path} {described[0][1:]} where it has "
                             f"{source.path} {described[1][1:]}")
    return list(zip(targets, sources))
