"""Helpers of the writer and probe subprocesses."""

from __future__ import annotations

import json
from typing import Any


def observe(key: str, value: Any) -> None:
    """Reports a fact from a writer subprocess to the generator."""
    print("@@OBS " + json.dumps([key, value]), flush=True)


def two_cpus() -> None:
    """Two logical CPU devices (/cpu:0, /cpu:1), for the sharded fixtures."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def first_error_line(e: BaseException) -> str:
    """``Type: message`` with the informative line of a TensorFlow error."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    # Graph-mode errors start with "Graph execution error:" and name the real
    # problem a few lines later; keep the informative line.
    for ln in lines:
        if not ln.startswith(
            ("Graph execution error", "Detected at node", "Node:", "File ", "Original stack", "[[")
        ):
            return f"{type(e).__name__}: {ln}"
    return f"{type(e).__name__}: {lines[0] if lines else ''}"
