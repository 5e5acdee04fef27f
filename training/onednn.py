"""Turns on TensorFlow's oneDNN CPU kernels for training; import it before TensorFlow.

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it loads, and turns oneDNN on
by default only on CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX
(`python -m keras_ssd.cpu` says which). On a 2-core AVX2 CPU (AMD EPYC) its kernels
ran `ssd_tiny`'s training step 1.8x faster (convolution gradients;
`benchmarks/train_step.py`) and the SSD300 recipe's XLA step no slower; they ran
SSD300's batch-1 forward pass 1.6x slower (`benchmarks/inference.py`), which is
why only the training entry points import this module. An explicit
`TF_ENABLE_ONEDNN_OPTS=0` in the environment wins.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
