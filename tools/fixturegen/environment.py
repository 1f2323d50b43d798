"""The environment every TensorFlow fixture process runs in (reproducible, quiet, CPU only)."""

from __future__ import annotations

import os

ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",  # bit-reproducible CPU math (optimizer and training steps)
    "CUDA_VISIBLE_DEVICES": "",
    "PYTHONHASHSEED": "0",
    "TF_DETERMINISTIC_OPS": "1",
}


def child_env() -> dict[str, str]:
    """This process's environment with ``ENV`` imposed, for a writer or probe subprocess."""
    env = dict(os.environ)
    env.update(ENV)
    return env


def setdefault_env() -> None:
    """``ENV`` for this process, where the caller has not set a variable itself."""
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
