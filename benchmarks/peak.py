"""This machine's measured fp32 peak (the best large SGEMM of numpy, TensorFlow and XNNPack) and bf16 peak.

    python benchmarks/peak.py [--threads 2] [--seconds 3]

A GFLOP/s figure means little without the ceiling it is measured against, and a
clock-and-FMA estimate is not one (base clocks, turbo and shared cores move
it). So the ceiling is measured in the same run, the way the runs use the
machine: one large matrix product through numpy (OpenBLAS), TensorFlow (its
CPU matmul, Eigen or oneDNN) and LiteRT (XNNPack's FULLY_CONNECTED), each
with the given thread count, the best sample of each, and the best of the
three is the peak. 2 FLOPs per multiply-accumulate. On a CPU with AVX512_BF16
or AMX and oneDNN on, the bf16 peak is the best bfloat16 matmul of the same size
among TensorFlow's (oneDNN's bf16 kernels) and, when torch is already imported
(`compare.py` imports it first), torch's: the ceiling of the `mixed_bfloat16`
paths. `compare.py` raises it to any bf16 row that runs faster still, so that
no row is above 100% of its ceiling.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

# numpy and TensorFlow: n x n @ n x n; XNNPack: [XNN_ROWS, XNN_SIDE] @ [XNN_SIDE, XNN_SIDE].
SIDE = 4096
XNN_SIDE = 2048
XNN_ROWS = 1024


def best_gflops(fn, flop, seconds):
    """Best GFLOP/s of `fn` (one call = `flop` FLOPs) over samples for about `seconds`, after one warm-up."""
    fn()
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        best = max(best, flop / (time.perf_counter() - t) / 1e9)
    return best


def numpy_sgemm(seconds, side=SIDE):
    """numpy's float32 matmul (OpenBLAS, its own thread count: OPENBLAS_NUM_THREADS)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((side, side), np.float32), rng.random((side, side), np.float32)
    return best_gflops(lambda: a @ b, 2 * side**3, seconds)


def tensorflow_sgemm(seconds, side=SIDE):
    """TensorFlow's float32 matmul in a `tf.function` (TensorFlow's threads, as the runs use it)."""
    import tensorflow as tf

    a = tf.random.stateless_uniform((side, side), (0, 1))
    b = tf.random.stateless_uniform((side, side), (0, 2))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)[:1, :1]))
    return best_gflops(lambda: matmul().numpy(), 2 * side**3, seconds)


def tensorflow_bf16_gemm(seconds, side=SIDE):
    """TensorFlow's bfloat16 matmul in a `tf.function` (oneDNN's bf16 kernels where oneDNN is on)."""
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_uniform((side, side), (0, 1)), tf.bfloat16)
    b = tf.cast(tf.random.stateless_uniform((side, side), (0, 2)), tf.bfloat16)
    matmul = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], tf.float32)))
    return best_gflops(lambda: matmul().numpy(), 2 * side**3, seconds)


def torch_bf16_gemm(seconds, side=SIDE):
    """torch's bfloat16 matmul (oneDNN / its own bf16 GEMM), torch's threads."""
    import torch

    a = torch.rand((side, side), generator=torch.Generator().manual_seed(1)).bfloat16()
    b = torch.rand((side, side), generator=torch.Generator().manual_seed(2)).bfloat16()
    return best_gflops(lambda: float(torch.matmul(a, b)[0, 0]), 2 * side**3, seconds)


def measure_bf16_peak(seconds=3.0, log=None):
    """`(peak, by_engine)` for bfloat16: TensorFlow's matmul, and torch's when torch is already imported.

    torch is not imported here: importing it after TensorFlow segfaulted (torch's CUDA
    build from PyPI beside TensorFlow 2.21), so only a process that imported it first
    measures it.
    """
    engines = [("TensorFlow", tensorflow_bf16_gemm)]
    if "torch" in sys.modules:
        engines.append(("torch", torch_bf16_gemm))
    by_engine = {}
    for name, measure in engines:
        by_engine[name] = measure(seconds)
        if log is not None:
            log(f"bf16 GEMM peak, {name}: {by_engine[name]:.1f} GFLOP/s")
    return max(by_engine.values()), by_engine


def xnnpack_sgemm(seconds, threads, side=XNN_SIDE, rows=XNN_ROWS):
    """LiteRT's FULLY_CONNECTED (XNNPack, float32 weights) at `threads` interpreter threads."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    weights = tf.constant(np.random.default_rng(1).random((side, side), np.float32))
    dense = tf.function(lambda x: tf.matmul(x, weights), input_signature=[tf.TensorSpec([rows, side], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([dense.get_concrete_function()], dense)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sgemm.tflite")
        with open(path, "wb") as f:
            f.write(converter.convert())
        interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                           np.random.default_rng(2).random((rows, side), np.float32))
    return best_gflops(interpreter.invoke, 2 * rows * side * side, seconds)


def measure_peak(threads=None, seconds=3.0, log=None):
    """`(peak, by_engine)`: the best fp32 GFLOP/s and each engine's, e.g. {"numpy": 188.5, ...}.

    Args:
        threads: XNNPack's threads (numpy and TensorFlow keep their own
            settings, all cores by default, as the runs use them); None: all cores.
        seconds: sampling time per engine.
        log: optional callable taking a progress string.
    """
    threads = threads or os.cpu_count()
    by_engine = {}
    for name, measure in (
        ("numpy/OpenBLAS", lambda: numpy_sgemm(seconds)),
        ("TensorFlow", lambda: tensorflow_sgemm(seconds)),
        ("XNNPack", lambda: xnnpack_sgemm(seconds, threads)),
    ):
        by_engine[name] = measure()
        if log is not None:
            log(f"fp32 SGEMM peak, {name}: {by_engine[name]:.1f} GFLOP/s")
    return max(by_engine.values()), by_engine


def describe(peak, by_engine, threads):
    """One line: the peak and what each engine reached."""
    engines = ", ".join(f"{name} {value:.1f}" for name, value in by_engine.items())
    return f"measured fp32 peak {peak:.1f} GFLOP/s (best SGEMM at {threads} threads: {engines})"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--seconds", type=float, default=3.0, help="sampling time per engine")
    args = parser.parse_args()
    threads = args.threads or os.cpu_count()
    peak, by_engine = measure_peak(threads, args.seconds, log=print)
    print(describe(peak, by_engine, threads))
    bf16_peak, bf16_engines = measure_bf16_peak(args.seconds)
    print(f"bf16 peak {bf16_peak:.1f} GFLOP/s (" + ", ".join(f"{k} {v:.1f}" for k, v in bf16_engines.items()) + ")")


if __name__ == "__main__":
    main()
