"""Planning a sharded save: which tensor, or which slice of it, goes to which data file.

Two rules, both plain functions over :class:`TensorInfo` (name, dtype, shape, bytes):

``max_shard_size`` (:func:`plan_max_shard_size`, :class:`MaxShardSizePolicy`) reproduces
TensorFlow 2.21's ``tf.train.experimental.MaxShardSizePolicy``
(python/checkpoint/sharding/sharding_policies.py, MaxShardSizePartitioner), so that a save
of the same tensors in the same order gives TensorFlow's files:

* Tensors are taken in the order given and fill the current shard; TF counts a numeric
  tensor as elements x element size, a string tensor as the sum of its elements' lengths
  with the longest element as its "element size" (the varint lengths and the 4 checksum
  bytes are not counted, so a shard of strings can end up larger than the limit), and the
  object graph ``_CHECKPOINTABLE_OBJECT_GRAPH`` as 0 bytes (it joins the current shard).
* A scalar that does not fit the room left starts a new shard; a scalar larger than the
  limit gets a shard of its own, after all the others.
* A tensor that does not fit the room left is cut, slice after slice, each slice as large as
  the room left allows: ``_get_next_partition`` picks the axis along which the fewest parts
  of that room are needed (axis 0 unless an inner axis needs strictly fewer, with a part
  that fits), and the part size ``ceil(dim / parts)``; what remains of the tensor is the box
  after the slice.  When no slice fits, the next shard starts; when a shard is full (0
  bytes left), the next one starts.  What is left once it fits goes to the current shard.
* Each slice is stored as a partitioned variable's slice (spec ``offset,length`` per
  dimension: SaveSliceInfo.spec), so a sliced tensor has a full entry listing its slices.

Within a shard, tensors are written grouped by name in order of first appearance (TF builds
each shard as ``{checkpoint_key: {slice_spec: tensor}}``), and ``MergeV2Checkpoints``
numbers the shards' data files ``<prefix>.data-0000K-of-0000N`` in shard order (see
tfckpt.bundle, "Merging"); a sliced tensor's full entry lists its slices in that order and
carries the id of the first shard that holds one.

Where TensorFlow 2.21 cannot save, tfckpt does not pretend to: a tensor larger than the
limit whose smallest possible slice (one index along some axis) is also larger makes TF loop
forever (``max_shard_size`` 0, an element larger than the limit): tfckpt raises
InvalidArgumentError.  TF's policy drops tensors with no elements from the checkpoint
(silently) and fails on string tensors of rank >= 2 or with no elements; tfckpt keeps empty
tensors, whole, in the current shard (0 bytes), and counts a string tensor of any rank over
all its elements.  A shard that would hold nothing is not written (TF writes such a part
only when nothing follows a full shard, which its object graph always does).
TensorFlow's reader cannot assemble string or float16 tensors cut into slices
(BundleReader::GetSliceValue), its own files included; tfckpt reads them.

``num_shards`` (:func:`plan_num_shards`, tfckpt's own) spreads whole tensors over exactly
``num_shards`` data files to spread the I/O: largest first (ties: in the order given), each
to the shard holding the fewest bytes so far (ties: the lowest shard number); each shard
writes its tensors in the order given.  Shards left without a tensor are empty files.

Why BundleWriter plans at :meth:`~tfckpt.bundle.writer.BundleWriter.finish`: TF's policy is
greedy in order, but its file names carry the number of shards, and the oversized scalars
go after every other shard, so no data file's final name is known before the last tensor
has been planned (the commit protocol creates each file for its final name); the size rule
of ``num_shards`` needs every size; and writing all shards at once is what lets them be
written in parallel.  So with either option the writer checks and converts each value when
it is added, holds it, and plans and writes everything in ``finish``.
"""

from __future__ import annotations

import heapq
import math
import operator
from collections.abc import Sequence
from typing import Any, NamedTuple

from tfckpt.errors import InvalidArgumentError

# python/trackable/base.py OBJECT_GRAPH_PROTO_KEY: its size is counted as 0.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


class TensorInfo(NamedTuple):
    """What the planners know of one tensor (or of one given slice of a tensor).

    ``nbytes`` is the size TensorFlow's policy counts (numeric: elements x ``itemsize``;
    strings: the sum of the elements' lengths) and ``itemsize`` the bytes of an element (a
    string tensor's longest element).  A slice of a partitioned tensor gives its
    ``full_shape`` and its ``offset`` in it; ``shape`` is then the slice's shape.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    itemsize: int
    full_shape: tuple[int, ...] | None = None
    offset: tuple[int, ...] | None = None


class Piece(NamedTuple):
    """Tensor ``tensor`` (its index in the planner's input), or the box of it that starts at
    ``offset`` (in the full tensor) and has ``shape``."""

    tensor: int
    offset: tuple[int, ...]
    shape: tuple[int, ...]


Plan = list[list[Piece]]  # the pieces of each shard, in the order they are written


def check_max_shard_size(value: Any) -> int:
    """``value`` as a shard size limit: a positive int (bytes).

    TensorFlow 2.21 does not check it (``MaxShardSizePolicy(0)`` loops forever, a negative
    size fails in a Slice op, a float is used as it is); tfckpt accepts only what works.

    Raises:
        InvalidArgumentError: not an int (bool included) or not positive.
    """
    return _positive_int("max_shard_size", value, "bytes")


def check_num_shards(value: Any) -> int:
    """``value`` as a number of shards: a positive int.

    Raises:
        InvalidArgumentError: not an int (bool included) or not positive.
    """
    return _positive_int("num_shards", value, "data files")


def check_options(max_shard_size: Any, num_shards: Any) -> tuple[str, int] | None:
    """The sharding a writer was asked for: None (one data file), ``("max_shard_size",
    n)`` or ``("num_shards", n)``.

    Raises:
        InvalidArgumentError: an option is invalid, or both are given.
    """
    if max_shard_size is not None and num_shards is not None:
        raise InvalidArgumentError("give max_shard_size or num_shards, not both")
    if max_shard_size is not None:
        return "max_shard_size", check_max_shard_size(max_shard_size)
    if num_shards is not None:
        return "num_shards", check_num_shards(num_shards)
    return None


def _positive_int(what: str, value: Any, unit: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InvalidArgumentError(f"{what} must be a positive int ({unit}), found {value!r}")
    number = operator.index(value)
    if number <= 0:
        raise InvalidArgumentError(f"{what} must be a positive int ({unit}), found {number}")
    return number


class MaxShardSizePolicy:
    """tfckpt's ``tf.train.experimental.MaxShardSizePolicy``: data files of at most
    ``max_shard_size`` bytes, laid out as TensorFlow 2.21 lays them out (module docstring).

    Example::

        policy = MaxShardSizePolicy(max_shard_size=10_000_000)
        plan = policy([TensorInfo("w", "float32", (4096, 1024), 16777216, 4)])

    Raises:
        InvalidArgumentError: ``max_shard_size`` is not a positive int.
    """

    def __init__(self, max_shard_size: int) -> None:
        self.max_shard_size = check_max_shard_size(max_shard_size)

    @property
    def description(self) -> str:
        return "Split tensors into shards with a max shard size."  # TF's description

    def __call__(self, tensors: Sequence[TensorInfo]) -> Plan:
        """The plan for ``tensors`` (:func:`plan_max_shard_size`)."""
        return plan_max_shard_size(tensors, self.max_shard_size)

    def __repr__(self) -> str:
        return f"MaxShardSizePolicy(max_shard_size={self.max_shard_size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MaxShardSizePolicy) and other.max_shard_size == self.max_shard_size

    def __hash__(self) -> int:
        return hash((MaxShardSizePolicy, self.max_shard_size))


def policy_size(info: TensorInfo) -> tuple[int, int]:
    """``(total bytes, bytes an element)`` as TensorFlow's policy counts them."""
    if info.name == OBJECT_GRAPH_KEY:
        return 0, 0
    return info.nbytes, info.itemsize


def check_splittable(info: TensorInfo, max_shard_size: int) -> None:
    """Raises InvalidArgumentError when ``info`` can be neither stored whole in a shard nor
    cut into slices that fit one: not a scalar, larger than the limit, and one index along
    every axis is larger too (TensorFlow 2.21 loops forever on such a tensor)."""
    total, itemsize = policy_size(info)
    if not info.shape or total <= max_shard_size or 0 in info.shape:
        return
    elements = math.prod(info.shape)
    smallest = min(elements // dim for dim in info.shape) * itemsize
    if smallest > max_shard_size:
        raise InvalidArgumentError(
            f"cannot be saved with max_shard_size={max_shard_size}: it has {total} bytes and "
            f"its smallest slice {smallest} (TensorFlow's policy never finishes such a "
            "save); raise max_shard_size",
            tensor=info.name,
        )


def plan_max_shard_size(tensors: Sequence[TensorInfo], max_shard_size: int) -> Plan:
    """The shards TensorFlow 2.21's MaxShardSizePolicy makes of ``tensors`` (module
    docstring), empty ones left out.

    Raises:
        InvalidArgumentError: ``max_shard_size`` is invalid, or a tensor cannot be split
            into slices that fit (:func:`check_splittable`).
    """
    limit = check_max_shard_size(max_shard_size)
    planner = _MaxShardSizePlanner(limit)
    for index, info in enumerate(tensors):
        check_splittable(info, limit)
        planner.add(index, info)
    return planner.plan()


class _MaxShardSizePlanner:
    """MaxShardSizePartitioner.get_shards, tensor by tensor (names follow TF's)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.shards: list[dict[str, list[Piece]]] = [{}]
        self.large: list[dict[str, list[Piece]]] = []
        self.remaining = limit

    def plan(self) -> Plan:
        shards = (self.shards if self.shards[0] else []) + self.large
        return [
            [piece for pieces in shard.values() for piece in pieces] for shard in shards if shard
        ]

    def _put(self, shard: dict[str, list[Piece]], name: str, piece: Piece) -> None:
        shard.setdefault(name, []).append(piece)

    def add(self, index: int, info: TensorInfo) -> None:
        name, root_shape = info.name, tuple(info.shape)
        root_offset = tuple(info.offset) if info.offset is not None else (0,) * len(root_shape)
        total, itemsize = policy_size(info)
        whole = Piece(index, root_offset, root_shape)
        if not root_shape:  # a scalar is never cut
            if total > self.limit:
                self.large.append({name: [whole]})
                return
            if total > self.remaining:
                self.shards.append({})
                self.remaining = self.limit
            self._put(self.shards[-1], name, whole)
            self.remaining -= total
            return
        if 0 in root_shape:  # TF drops it from the checkpoint; tfckpt keeps it (0 bytes)
            self._put(self.shards[-1], name, whole)
            return
        offset = list(root_offset)  # _working_tensor_offset
        shape = root_shape  # _working_tensor_shape
        working = total
        while working > self.remaining:
            axis, part = _next_partition(shape, itemsize, self.remaining)
            if part == 0:
                if self.remaining == self.limit:  # TF would start new shards forever
                    raise InvalidArgumentError(
                        f"cannot be cut into slices of at most {self.limit} bytes", tensor=name
                    )
                self.shards.append({})
                self.remaining = self.limit
                continue
            # _add_partition
            relative = [o - r for o, r in zip(offset, root_offset)]
            slice_shape = [d - r for d, r in zip(root_shape, relative)]
            slice_shape[axis] = part
            slice_bytes = math.prod(slice_shape) * itemsize
            piece = Piece(index, tuple(offset), tuple(slice_shape))
            if slice_bytes > self.limit:  # (unreachable in TF's arithmetic; kept as TF has it)
                self.large.append({name: [piece]})
            elif slice_bytes > self.remaining:
                raise AssertionError("a slice larger than the room left")  # TF: RuntimeError
            else:
                self._put(self.shards[-1], name, piece)
                self.remaining -= slice_bytes
                if self.remaining == 0:
                    self.shards.append({})
                    self.remaining = self.limit
            offset[axis] += part
            relative[axis] += part
            shape = tuple(d - r for d, r in zip(root_shape, relative))
            working = math.prod(shape) * itemsize
        if math.prod(shape) > 0:
            self._put(self.shards[-1], name, Piece(index, tuple(offset), shape))
        self.remaining -= working


def _next_partition(shape: tuple[int, ...], itemsize: int, remaining: int) -> tuple[int, int]:
    """MaxShardSizePartitioner._get_next_partition: the axis to cut and the part's length
    along it (0: no slice fits in ``remaining``), with TF's arithmetic (floats included)."""
    num_elems = math.prod(shape)

    def num_partitions(axis: int) -> float:
        axis_len = shape[axis]
        bytes_per_slice = (num_elems // axis_len) * itemsize
        slices_per_shard = remaining // bytes_per_slice
        if slices_per_shard == 0:
            return math.inf
        return math.ceil(axis_len / slices_per_shard)

    min_parts = num_partitions(0)
    min_axis = 0
    for axis in range(1, len(shape)):
        parts_along_axis = num_partitions(axis)
        part_size = num_elems * itemsize / parts_along_axis
        if parts_along_axis < min_parts and part_size <= remaining:
            min_axis, min_parts = axis, int(parts_along_axis)
    return min_axis, math.ceil(int(shape[min_axis]) / min_parts)


def plan_num_shards(tensors: Sequence[TensorInfo], num_shards: int) -> Plan:
    """``tensors`` spread whole over exactly ``num_shards`` shards: largest first (ties in
    the order given), each to the shard with the fewest bytes so far (ties: the lowest
    number); each shard lists its tensors in the order given.

    Raises:
        InvalidArgumentError: ``num_shards`` is not a positive int.
    """
    count = check_num_shards(num_shards)
    loads = [(0, shard) for shard in range(count)]  # a heap: (bytes so far, shard)
    members: list[list[int]] = [[] for _ in range(count)]
    for index in sorted(range(len(tensors)), key=lambda i: -tensors[i].nbytes):
        load, shard = heapq.heappop(loads)
        members[shard].append(index)
        heapq.heappush(loads, (load + tensors[index].nbytes, shard))
    plan = []
    for indexes in members:
        pieces = []
        for index in sorted(indexes):
            info = tensors[index]
            offset = tuple(info.offset) if info.offset is not None else (0,) * len(info.shape)
            pieces.append(Piece(index, offset, tuple(info.shape)))
        plan.append(pieces)
    return plan
