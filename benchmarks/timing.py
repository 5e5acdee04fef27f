"""Timing shared by the benchmark scripts: warm-up, interleaved repeats, medians.

Every benchmark times zero-argument callables that block until their result
is ready (call `.numpy()` on a TF result, read a torch tensor). On a shared
machine the load changes while a script runs, so `interleaved_seconds` takes
one sample of every case per round, in turn, and reports each case's median
over the rounds: a burst of load hits all cases of a round alike, and the
ratios between cases stay meaningful even when the absolute figures do not.
"""

import os
import statistics
import time


def seconds_per_call(fn, min_seconds=0.0, durations=None):
    """One sample: calls `fn` once, then again until `min_seconds` have passed.

    Args:
        fn, min_seconds: as above.
        durations: optional list; each call's wall-clock seconds are appended.

    Returns:
        `(wall, cpu)`: mean wall-clock seconds and mean CPU seconds of this
        process (all its threads) per call over the sample. CPU time counts
        the work done, and moves much less than wall time with machine load.
    """
    calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        call_start = time.perf_counter()
        fn()
        calls += 1
        if durations is not None:
            durations.append(time.perf_counter() - call_start)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls, (time.process_time() - cpu_start) / calls


def train_step_seconds(model, batches, steps, warmup=2):
    """Median seconds of `model.train_on_batch` over `steps` calls, after `warmup` calls.

    The calls take `(images, y_true)` pairs from the list `batches` in turn.
    """
    for i in range(warmup):
        model.train_on_batch(*batches[i % len(batches)])
    seconds = []
    for i in range(steps):
        start = time.perf_counter()
        model.train_on_batch(*batches[i % len(batches)])
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def interleaved_seconds(cases, repeats=5, warmup=1, min_seconds=0.0, log=None, cpu_seconds=None, call_seconds=None):
    """Median seconds per call of each case, the cases' samples interleaved.

    Args:
        cases: dict name -> zero-argument callable.
        repeats: rounds; each round takes one sample of every case, in a
            rotated order so no case always runs right after the same other.
        warmup: untimed calls of each case first (tracing, compilation, caches).
        min_seconds: a sample repeats a call until this long has passed, so
            short calls are averaged over several runs.
        log: optional callable taking a progress string.
        cpu_seconds: optional dict, filled with name -> median CPU seconds per call.
        call_seconds: optional dict, filled with name -> every timed call's
            wall-clock seconds (for latency percentiles).

    Returns:
        dict name -> median seconds per call.
    """
    names = list(cases)
    for name in names:
        for _ in range(warmup):
            cases[name]()
    samples = {name: [] for name in names}
    calls = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(seconds_per_call(cases[name], min_seconds, calls[name]))
        if log is not None:
            log(f"round {round_index + 1}/{repeats} done, load {load_average()}")
    if call_seconds is not None:
        call_seconds.update(calls)
    if cpu_seconds is not None:
        cpu_seconds.update({name: statistics.median(c for _, c in values) for name, values in samples.items()})
    return {name: statistics.median(w for w, _ in values) for name, values in samples.items()}


def images_per_second(fn, batch_size, seconds, warmup=2, min_calls=3):
    """Images/s of `fn` (one batch of `batch_size` per call) over about `seconds`.

    Makes `warmup` untimed calls, then calls for at least `seconds` and at
    least `min_calls` times.
    """
    for _ in range(warmup):
        fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < min_calls:
        fn()
        calls += 1
    return calls * batch_size / (time.perf_counter() - start)


def load_average():
    """`os.getloadavg()` rounded, as a string: '1.23 / 2.34 / 3.45' (1, 5, 15 min)."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())
