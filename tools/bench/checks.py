"""Digest checks: what a row returned or wrote against the workload's SHA-256 manifest."""

from __future__ import annotations

import io
from typing import Any


class Mismatch(Exception):
    """A library returned data that differs from what was generated."""


def check_tensors(got: dict[str, Any], man: dict[str, Any], what: str) -> None:
    import numpy as np

    from .workloads import digest

    expected = man["tensors"]
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing or extra:
        raise Mismatch(f"{what}: tensor names differ (missing {missing[:3]}, extra {extra[:3]})")
    for name, info in expected.items():
        value = np.asarray(got[name])
        dtype = "object" if value.dtype == object else value.dtype.str
        if dtype != info["dtype"] or list(value.shape) != info["shape"]:
            raise Mismatch(
                f"{what}: {name!r} is {dtype} {list(value.shape)}, expected "
                f"{info['dtype']} {info['shape']}"
            )
        if digest(value) != info["sha256"]:
            raise Mismatch(f"{what}: {name!r} has the wrong contents (SHA-256 differs)")


def check_names(names: Any, man: dict[str, Any], what: str) -> None:
    if sorted(names) != sorted(man["tensors"]):
        raise Mismatch(f"{what}: listed {len(list(names))} names, expected {len(man['tensors'])}")


def check_shape_map(shapes: dict[str, Any], man: dict[str, Any], what: str) -> None:
    check_names(list(shapes), man, what)
    for name, info in man["tensors"].items():
        if list(shapes[name]) != info["shape"]:
            raise Mismatch(f"{what}: {name!r} has shape {shapes[name]}, expected {info['shape']}")


def _escape(name: str) -> str:
    # tensorflow/python/trackable/trackable_utils.py escape_local_name
    return name.replace(".", "..").replace("/", ".S")


def check_object_checkpoint(prefix: str, man: dict[str, Any], what: str) -> None:
    """``Checkpoint(**arrays)`` files: one VARIABLE_VALUE per array, read back with tfckpt."""
    import tfckpt

    with tfckpt.load_checkpoint(prefix) as reader:
        got = {
            name: reader.get_tensor(f"{_escape(name)}/.ATTRIBUTES/VARIABLE_VALUE")
            for name in man["order"]
        }
    check_tensors(got, man, what)


def check_numpy_state_checkpoint(prefix: str, man: dict[str, Any], what: str) -> None:
    """``Checkpoint(state=NumpyState)`` files: one ``.npy`` py_state per array."""
    import numpy as np

    import tfckpt

    with tfckpt.load_checkpoint(prefix) as reader:
        got = {
            name: np.load(
                io.BytesIO(reader.get_tensor(f"state/{name}/.ATTRIBUTES/py_state")),
                allow_pickle=False,
            )
            for name in man["order"]
        }
    check_tensors(got, man, what)


def check_loaded_weights(got: dict[str, Any], man: dict[str, Any], what: str) -> None:
    """A BERT loader's result: exactly the names it does not skip, each with its contents."""
    from .workloads import hf_loaded

    loaded = {name: info for name, info in man["tensors"].items() if hf_loaded(name)}
    check_tensors(got, {**man, "tensors": loaded}, what)


def check_bundle(prefix: str, man: dict[str, Any], what: str) -> None:
    """A flat checkpoint (sharded or not) read back whole with tfckpt."""
    import tfckpt

    check_tensors(tfckpt.load_tensors(prefix), man, what)
