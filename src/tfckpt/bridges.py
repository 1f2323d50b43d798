"""Checkpoints as NumPy, PyTorch or JAX tensors, the way safetensors hands them out.

``safe_open`` mirrors ``safetensors.safe_open``: keys, lazy ``get_tensor``, partial reads
through ``get_slice``, ``metadata``.  Values come straight from a memory map of the data file
(read-only NumPy views, checksums verified for whole tensors; partial reads read only the
pages they touch).  ``load_state_dict`` reads a flat ``{name: tensor}`` dict with renaming and
dtype casts.

By default slot variables and other optimizer state, and the bookkeeping that
``tf.train.Checkpoint`` adds (``save_counter``, ``_CHECKPOINTABLE_OBJECT_GRAPH``), are left
out.  ``names="paths"`` names values by object path (``model/dense/kernel`` for
``model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE``) and gives NumpyState values as their
arrays.  PyTorch and JAX are never dependencies: ``framework="pt"``/``"jax"`` import them
when asked for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tfckpt import dtypes
from tfckpt.errors import InvalidArgumentError
from tfckpt.inspection.extras import require

if TYPE_CHECKING:  # (imported when used: ``import tfckpt`` stays quick)
    from tfckpt.inspection.selection import Naming, RenameSpec
    from tfckpt.inspection.sources import NamedTensors

FRAMEWORKS = ("numpy", "np", "pt", "torch", "jax")
DTypeSpec = Any  # a dtype NumPy or tfckpt.as_dtype understands ("float16", numpy.float32, ...)


def _framework(name: str) -> str:
    if name in ("numpy", "np"):
        return "numpy"
    if name in ("pt", "torch"):
        return "pt"
    if name == "jax":
        return "jax"
    raise InvalidArgumentError(f"unknown framework {name!r} (expected 'numpy', 'pt' or 'jax')")


def to_framework(array: np.ndarray, framework: str, name: str = "") -> Any:
    """``array`` as a tensor of ``framework`` (``numpy`` returns it as it is).

    Raises:
        InvalidArgumentError: a string tensor for ``pt`` or ``jax``.
        MissingExtraError: torch or jax is not installed.
    """
    framework = _framework(framework)
    if framework == "numpy":
        return array
    if array.dtype == object:
        raise InvalidArgumentError(
            f"a string tensor cannot be a {'PyTorch' if framework == 'pt' else 'JAX'} tensor; "
            "read it with framework='numpy'",
            tensor=name or None,
        )
    if framework == "jax":
        return require("jax.numpy").asarray(array)
    return _to_torch(array, name)


def _to_torch(array: np.ndarray, name: str) -> Any:
    torch = require("torch")
    owned = np.array(array)  # torch wants writable memory
    if owned.dtype.kind != "V":
        return torch.from_numpy(owned)
    # ml_dtypes (bfloat16, float8): torch takes the bits and reinterprets them.
    target = getattr(torch, owned.dtype.name, None)
    if target is None:
        raise InvalidArgumentError(f"PyTorch has no {owned.dtype.name} dtype", tensor=name or None)
    bits = owned.view(np.int16 if owned.dtype.itemsize == 2 else np.uint8)
    return torch.from_numpy(bits).view(target)


class SliceHandle:
    """A lazy handle on one tensor: ``get_shape()``, ``get_dtype()`` (TensorFlow's dtype
    name) and ``[...]`` basic indexing, which reads only what it selects."""

    def __init__(self, tensors: NamedTensors, name: str, framework: str) -> None:
        self._tensors = tensors
        self._name = name
        self._framework = framework
        self._spec = tensors.spec(name)

    def get_shape(self) -> list[int]:
        return list(self._spec.shape)

    def get_dtype(self) -> str:
        return self._spec.dtype

    def __getitem__(self, index: Any) -> Any:
        region = self._tensors.read_region(self._name, index)
        return to_framework(np.asarray(region), self._framework, self._name)

    def __repr__(self) -> str:
        return f"<tfckpt slice {self._name!r} {self._spec.dtype} {self.get_shape()}>"


class SafeOpen:
    """An open checkpoint handing out tensors of one framework (see :func:`safe_open`)."""

    def __init__(self, tensors: NamedTensors, framework: str) -> None:
        self._tensors = tensors
        self._framework = _framework(framework)

    def keys(self) -> list[str]:
        """The names of the tensors, in the checkpoint's order."""
        return self._tensors.names()

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def get_tensor(self, name: str) -> Any:
        """The whole tensor ``name``; for NumPy a read-only view of the memory map.

        Raises:
            TensorNotFoundError: no such (selected) name.
            DataLossError: its data is corrupt (checksum mismatch, truncated file).
        """
        return to_framework(self._tensors.read(name), self._framework, name)

    def get_slice(self, name: str) -> SliceHandle:
        """A lazy handle on ``name``: ``f.get_slice("emb")[0:10]`` reads ten rows."""
        return SliceHandle(self._tensors, name, self._framework)

    def metadata(self) -> dict[str, str]:
        """What kind of checkpoint this is (``format``, ``checkpoint_format``, ``names``)."""
        return {**self._tensors.source.metadata(), "names": self._tensors.selection.names}

    def close(self) -> None:
        self._tensors.close()

    def __enter__(self) -> SafeOpen:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def safe_open(
    path: str | os.PathLike[str],
    framework: str = "numpy",
    *,
    names: Naming = "keys",
    include_optimizer: bool = False,
    include_bookkeeping: bool = False,
) -> SafeOpen:
    """Opens a checkpoint (prefix, directory or SavedModel; ``.safetensors`` and ``.npz``
    work too) lazily, like ``safetensors.safe_open``.

    ``framework`` is ``"numpy"``, ``"pt"`` or ``"jax"``.  ``names="paths"`` names values
    by object path; ``include_optimizer`` and ``include_bookkeeping`` keep slot variables
    and optimizer state, and the save counter and object graph.

    Raises:
        CheckpointNotFoundError: there is no checkpoint at ``path``.
        InvalidArgumentError: an unknown framework or naming.
        MissingExtraError: torch or jax is not installed (on the first tensor).

    Example::

        with tfckpt.safe_open("model.ckpt-1000", framework="numpy", names="paths") as f:
            for name in f.keys():
                print(name, f.get_slice(name).get_shape())
            kernel = f.get_tensor("model/dense/kernel")
    """
    from tfckpt.inspection.selection import Selection
    from tfckpt.inspection.sources import open_tensors

    _framework(framework)
    selection = Selection(names=names, optimizer=include_optimizer, bookkeeping=include_bookkeeping)
    return SafeOpen(open_tensors(path, selection), framework)


def load_state_dict(
    path: str | os.PathLike[str],
    *,
    framework: str = "numpy",
    names: Naming = "keys",
    rename: RenameSpec = None,
    dtype: DTypeSpec | Mapping[str, DTypeSpec] = None,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    include_optimizer: bool = False,
    include_bookkeeping: bool = False,
) -> dict[str, Any]:
    """Every selected tensor of a checkpoint as a flat ``{name: tensor}`` dict of owned
    tensors.

    ``rename``: a mapping of exact names, ``(pattern, replacement)`` regular expression
    rules applied in turn, or a function (:class:`tfckpt.inspection.selection.Rename`).  ``dtype``:
    one dtype that floating-point tensors are cast to, or ``{pattern: dtype}`` casting the
    tensors whose (new) name matches the first pattern that matches.  ``include`` and
    ``exclude`` are regular expressions on the names before renaming.

    Raises:
        CheckpointNotFoundError, DataLossError: the checkpoint cannot be read.
        InvalidArgumentError: bad patterns or renames (two tensors with one name), an
            unknown dtype, a cast of strings.

    Example::

        weights = tfckpt.load_state_dict(
            "model.ckpt-1000", names="paths", rename=[(r"^model/", "")], dtype="float16"
        )
    """
    from tfckpt.inspection.selection import Selection
    from tfckpt.inspection.sources import open_tensors

    framework = _framework(framework)
    selection = Selection(
        names=names,
        optimizer=include_optimizer,
        bookkeeping=include_bookkeeping,
        include=tuple(include),
        exclude=tuple(exclude),
        rename=rename,
    )
    cast = _caster(dtype)
    out: dict[str, Any] = {}
    with open_tensors(path, selection) as tensors:
        for name in tensors.names():
            value = np.array(tensors.read(name))  # owned: it outlives the memory map
            value = cast(name, value)
            out[name] = to_framework(value, framework, name)
    return out


def _numpy_dtype(spec: DTypeSpec) -> np.dtype[Any]:
    try:
        return dtypes.as_dtype(spec).storage_dtype
    except TypeError:
        pass
    try:
        return np.dtype(spec)
    except TypeError:
        raise InvalidArgumentError(f"unknown dtype {spec!r}") from None


def _caster(spec: DTypeSpec | Mapping[str, DTypeSpec]) -> Any:
    """A function ``(name, array) -> array`` applying the casts ``spec`` asks for."""
    if spec is None:
        return lambda name, value: value
    if isinstance(spec, Mapping):
        from tfckpt.inspection.selection import compile_pattern

        rules = [(compile_pattern(p, "dtype pattern"), _numpy_dtype(d)) for p, d in spec.items()]

        def by_name(name: str, value: np.ndarray) -> np.ndarray:
            for pattern, target in rules:
                if pattern.search(name):
                    return _cast(name, value, target)
            return value

        return by_name
    target = _numpy_dtype(spec)

    def floats(name: str, value: np.ndarray) -> np.ndarray:
        return _cast(name, value, target) if _is_floating(value.dtype) else value

    return floats


def _is_floating(dtype: np.dtype[Any]) -> bool:
    if dtype.kind == "f":
        return True
    return dtype.kind == "V" and not re.fullmatch(r"u?int\d", dtype.name) and not dtype.fields


def _cast(name: str, value: np.ndarray, target: np.dtype[Any]) -> np.ndarray:
    if value.dtype == object:
        raise InvalidArgumentError(f"cannot cast a string tensor to {target}", tensor=name)
    return value.astype(target) if value.dtype != target else value
