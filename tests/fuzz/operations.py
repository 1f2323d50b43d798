"""Every public read path, as operations run against one case directory.

An :class:`Op` has a ``label`` naming what it reads (the same label on the unmutated seed
gives the expected outcome), the subjects whose values it ``reads`` and those its result
``depends`` on (tensor names, ``open`` for opening the checkpoint, ``listing`` for the names
listed, ``graph`` for the object graph, ``tree`` for load_tree and ``restore`` for restoring
into objects, ``state`` for the state file) and a
``call`` taking a :class:`Context`.  :func:`plan` lists the
operations for a case once the checkpoint has been opened: per tensor ``get_tensor`` with
and without a copy, a partial read through ``get_slice`` and, for scalar strings,
``get_bytes_view``; the listings; ``load_tensors`` owned and as views; for directories with
a state file ``latest_checkpoint``, ``load_checkpoint(directory)`` and a
``CheckpointManager``; for object-based checkpoints ``load_tree``, ``Checkpoint.restore``
and ``Checkpoint.read`` into objects shaped like the seed's graph, NumpyState included.

Successful reads are checked against what the reader itself reports (shape and dtype of
every tensor returned): a contradiction raises :class:`~tests.fuzz.oracle.Inconsistent`.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import tfckpt
from tests.fuzz.mirror import Mirror
from tests.fuzz.oracle import Inconsistent

# Tensors read one by one per case (all of them are read in bulk anyway).
MAX_TENSORS_PER_CASE = 12


@dataclass
class Context:
    """One case directory and how to read it."""

    directory: Path
    prefix: Path
    verify: bool
    has_state_file: bool
    mirror: Callable[[], Mirror] | None = None  # objects to restore into (object seeds)
    _reader: tfckpt.CheckpointReader | None = None
    _shapes: dict[str, list[int]] | None = field(default=None, repr=False)

    def reader(self) -> tfckpt.CheckpointReader:
        """The checkpoint, opened on first use."""
        if self._reader is None:
            self._reader = tfckpt.load_checkpoint(self.prefix, verify_checksums=self.verify)
        return self._reader

    def listed_shape(self, name: str) -> tuple[int, ...] | None:
        """The shape the reader lists for ``name`` (None when listing fails)."""
        if self._shapes is None:
            try:
                self._shapes = self.reader().get_variable_to_shape_map()
            except tfckpt.CheckpointError:
                self._shapes = {}
        shape = self._shapes.get(name)
        return None if shape is None else tuple(shape)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


@dataclass(frozen=True)
class Op:
    """One read: ``label`` (what), ``reads`` and ``depends`` (see the module), ``call``.

    ``same_as`` is the label whose outcome on the seed is expected (another way of reading
    the same values, e.g. views instead of copies); ``unverified`` marks reads that check no
    checksum by design (partial reads).
    """

    label: str
    reads: frozenset[str]
    depends: frozenset[str]
    call: Callable[[Context], Any]
    unverified: bool = False
    same_as: str | None = None

    @property
    def expected_label(self) -> str:
        return self.same_as or self.label


# -- checks of returned values -------------------------------------------------------------


def _expected_dtype(dtype: tfckpt.DType) -> np.dtype[Any]:
    return np.dtype(object) if dtype.name == "string" else dtype.storage_dtype


def _check_tensor(ctx: Context, name: str, value: Any, shape: tuple[int, ...] | None) -> None:
    """Raises Inconsistent when a returned tensor contradicts the listed shape and dtype."""
    dtype = ctx.reader().get_dtype(name)
    if isinstance(value, bytes):
        if dtype.name != "string" or (shape is not None and shape != ()):
            raise Inconsistent(f"bytes returned for {dtype.name} {shape}")
        return
    array = np.asarray(value)
    if shape is not None and array.shape != shape:
        raise Inconsistent(f"shape {array.shape}, listed {shape}")
    if array.dtype.newbyteorder("=") != _expected_dtype(dtype).newbyteorder("="):
        raise Inconsistent(f"dtype {array.dtype}, listed {dtype.name}")


def _selected_shape(shape: tuple[int, ...], index: Any) -> tuple[int, ...]:
    """The shape ``index`` selects from an array of ``shape`` (no allocation)."""
    dummy = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape, (0,) * len(shape))
    return np.shape(dummy[index])


# -- the operations ------------------------------------------------------------------------


def _get_tensor(name: str, copy: bool) -> Callable[[Context], Any]:
    def call(ctx: Context) -> Any:
        value = ctx.reader().get_tensor(name, copy=copy)
        _check_tensor(ctx, name, value, ctx.listed_shape(name))
        return value

    return call


def _partial_index(shape: tuple[int, ...], name: str) -> Any:
    """A basic index valid for ``shape``, picked by the name (stable across cases)."""
    if not shape:
        return ()
    choices: list[Any] = [Ellipsis, slice(None, None, 2)]
    if shape[0] > 0:
        choices += [0, -1, (slice(1, None), Ellipsis)]
    if len(shape) > 1:
        choices.append((slice(None), slice(None, None, -1)))
    return choices[zlib.crc32(name.encode("utf-8", "surrogateescape")) % len(choices)]


def _get_slice(name: str, index: Any) -> Callable[[Context], Any]:
    def call(ctx: Context) -> Any:
        view = ctx.reader().get_slice(name)
        value = view[index]
        if not isinstance(value, bytes) and np.shape(value) != _selected_shape(view.shape, index):
            raise Inconsistent(f"partial read of {index!r} has shape {np.shape(value)}")
        return value

    return call


def _get_bytes_view(name: str) -> Callable[[Context], Any]:
    return lambda ctx: bytes(ctx.reader().get_bytes_view(name))


def _listings(ctx: Context) -> Any:
    reader = ctx.reader()
    return {
        "shapes": reader.get_variable_to_shape_map(),
        "dtypes": {n: d.name for n, d in reader.get_variable_to_dtype_map().items()},
        "debug": reader.debug_string(),
        "slices": {n: [str(s) for s in reader.get_tensor_slices(n)] for n in reader},
    }


def _load_tensors(copy: bool) -> Callable[[Context], Any]:
    return lambda ctx: tfckpt.load_tensors(ctx.prefix, copy=copy, verify_checksums=ctx.verify)


def _relative(ctx: Context, path: str | None) -> str | None:
    """``path`` relative to the case directory when inside it (cases and seeds live in
    different directories), else as it is."""
    if path is None or not path.startswith(f"{ctx.directory}{os.sep}"):
        return path
    return os.path.relpath(path, ctx.directory)


def _latest_checkpoint(ctx: Context) -> Any:
    return _relative(ctx, tfckpt.latest_checkpoint(ctx.directory))


def _load_directory(ctx: Context) -> Any:
    with tfckpt.load_checkpoint(ctx.directory, verify_checksums=ctx.verify) as reader:
        return [_relative(ctx, reader.prefix), reader.keys()]


def _manager(ctx: Context) -> Any:
    manager = tfckpt.CheckpointManager(tfckpt.Checkpoint(), ctx.directory, max_to_keep=None)
    return [_relative(ctx, manager.latest_checkpoint)] + [
        _relative(ctx, p) for p in manager.checkpoints
    ]


def _load_tree(ctx: Context) -> Any:
    tree = tfckpt.load_tree(ctx.prefix)
    return {"tree": dict(tree), "keys": tree.key_to_path, "paths": tree.path_to_key}


def _restore(method: str) -> Callable[[Context], Any]:
    def call(ctx: Context) -> Any:
        assert ctx.mirror is not None
        mirror = ctx.mirror()
        status = getattr(mirror.root, method)(str(ctx.prefix))
        try:
            status.assert_consumed()
            consumed = True
        except AssertionError:  # the status's own verdict, part of the outcome
            consumed = False
        return {"restored": mirror.restored(), "consumed": consumed}

    return call


# -- the plan ------------------------------------------------------------------------------


def opening() -> Op:
    """The first operation of every case: opening the checkpoint, listing its names."""
    return Op("open", _OPEN, _LISTING, lambda ctx: ctx.reader().keys())


_OPEN = frozenset({"open"})
_LISTING = frozenset({"listing"})


def _tensor_ops(ctx: Context, name: str, seed_shape: tuple[int, ...] | None) -> list[Op]:
    reads = frozenset({"open", name})
    depends = frozenset({name})
    label = f"get_tensor {name!r}"
    ops = [
        Op(label, reads, depends, _get_tensor(name, True)),
        Op(f"{label} copy=False", reads, depends, _get_tensor(name, False), same_as=label),
    ]
    shape = ctx.listed_shape(name)
    if shape is not None:
        # An index valid for the shape listed here and the seed's (the expected outcome).
        index = _partial_index(shape, name) if seed_shape in (None, shape) else Ellipsis
        call = _get_slice(name, index)
        ops.append(Op(f"get_slice {name!r}[{index!r}]", reads, depends, call, unverified=True))
        if shape == ():
            ops.append(Op(f"get_bytes_view {name!r}", reads, depends, _get_bytes_view(name)))
    return ops


def plan(
    ctx: Context,
    names: list[str],
    pick: Callable[[list[str], int], list[str]],
    seed_shape: Callable[[str], tuple[int, ...] | None],
) -> list[Op]:
    """The operations of a case, after :func:`opening` listed ``names``; ``pick(names, k)``
    chooses which k names are read one by one; ``seed_shape(name)`` is the shape the
    unmutated seed lists."""
    every_name = frozenset(names)
    everything = every_name | _LISTING
    ops = [Op("listings", _OPEN, everything, _listings)]
    chosen = names if len(names) <= MAX_TENSORS_PER_CASE else pick(names, MAX_TENSORS_PER_CASE)
    for name in chosen:
        ops += _tensor_ops(ctx, name, seed_shape(name))
    reads = every_name | _OPEN
    ops += [
        Op("load_tensors", reads, everything, _load_tensors(True)),
        Op(
            "load_tensors copy=False",
            reads,
            everything,
            _load_tensors(False),
            same_as="load_tensors",
        ),
    ]
    if ctx.mirror is not None:
        graph = everything | {"graph", "tree", "restore"}
        ops += [
            Op("load_tree", frozenset({"open", "graph", "tree"}), graph, _load_tree),
            Op("restore", frozenset({"open", "graph", "restore"}), graph, _restore("restore")),
            Op("read", frozenset({"open", "graph", "restore"}), graph, _restore("read")),
        ]
    return ops


def directory_ops() -> list[Op]:
    """Reading a directory through its state file (run whether or not opening worked)."""
    state = frozenset({"state"})
    return [
        Op("latest_checkpoint", state, state, _latest_checkpoint),
        # (it opens the checkpoint the state file names, which may be another one)
        Op("load_checkpoint(directory)", state, state | _LISTING, _load_directory),
        Op("CheckpointManager", state, state, _manager),
    ]
