"""What this machine's CPU offers TensorFlow: its model, the instruction sets that pick kernels, oneDNN's state.

TensorFlow 2.21 turns its oneDNN kernels on by default on x86 CPUs with
AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX, and reads `TF_ENABLE_ONEDNN_OPTS`
(0 / 1) once, when it loads, to override that. oneDNN's convolutions round
differently from the default (Eigen) ones, so the same training run ends
elsewhere on another kind of CPU; `describe()` names what a run used.
"""

import os

# The flags that decide which kernels TensorFlow and its oneDNN run, in the order printed.
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def _cpuinfo():
    """The first processor's `key: value` lines of /proc/cpuinfo; empty where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read().split("\n\n")[0]
    except OSError:
        return {}
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def cpu_model():
    """The CPU's model name (`lscpu`'s "Model name"), or the platform's processor string."""
    import platform

    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def kernel_flags():
    """The `KERNEL_FLAGS` this CPU reports, in that order (empty off Linux)."""
    flags = set(_cpuinfo().get("flags", "").split())
    return tuple(flag for flag in KERNEL_FLAGS if flag in flags)


def has_amx():
    """True when this CPU reports any AMX flag (`amx_tile`, `amx_bf16`, `amx_int8`)."""
    return any(flag.startswith("amx") for flag in kernel_flags())


def onednn_enabled():
    """True when this process's TensorFlow runs its oneDNN kernels (loads TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def describe():
    """One line: CPU model, kernel flags, and whether oneDNN is on and why.

    e.g. "AMD EPYC (avx2 avx512f avx512_vnni avx512_bf16, no AMX); oneDNN on
    (TensorFlow's default for this CPU)".
    """
    flags = kernel_flags()
    amx = "" if has_amx() else ", no AMX"
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    why = f"TF_ENABLE_ONEDNN_OPTS={setting}" if setting else "TensorFlow's default for this CPU"
    state = "on" if onednn_enabled() else "off"
    return f"{cpu_model()} ({' '.join(flags) or 'no AVX2'}{amx}); oneDNN {state} ({why})"


def main():
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m keras_ssd.cpu",
        description="Prints this CPU's model, its kernel flags and whether TensorFlow runs oneDNN.",
    )
    parser.add_argument(
        "--opposite-onednn", action="store_true",
        help="print only the TF_ENABLE_ONEDNN_OPTS value (0 or 1) that flips this process's oneDNN state",
    )
    args = parser.parse_args()
    print(("0" if onednn_enabled() else "1") if args.opposite_onednn else describe())


if __name__ == "__main__":
    main()
