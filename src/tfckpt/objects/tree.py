"""TF2 checkpoints as the tree of objects they came from.

``load_tree(path)`` follows the TrackableObjectGraph from the root: every object becomes a
dict of its children by local name; an object holding one value (a variable's
``VARIABLE_VALUE`` or a NumpyState/PythonState ``py_state``) and nothing else becomes that
value; other attributes go under ``".ATTRIBUTES"``; optimizer slot variables go under the
optimizer's ``".OPTIMIZER_SLOT"``, keyed by the variable's path and the slot name.
NumpyState values are decoded with ``allow_pickle=False`` (other py_state stays bytes).

Every value the tree holds is read in one bulk read before the tree is built
(:func:`tfckpt.objects.restore.read_values`): a remote checkpoint costs a few coalesced
ranged requests, not one per value.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping
from typing import Any

from tfckpt.errors import CheckpointError, DataLossError
from tfckpt.objects.keys import (
    ATTRIBUTES,
    OBJECT_GRAPH_KEY,
    OPTIMIZER_SLOT,
    PY_STATE,
    VARIABLE_VALUE,
)
from tfckpt.objects.numpy_state import deserialize_array
from tfckpt.objects.restore import (
    ObjectGraph,
    SerializedTensor,
    missing_value,
    read_object_graph,
    read_values,
)
from tfckpt.reader import CheckpointReader, load_checkpoint

Path = tuple[str, ...]
_LEAF_ATTRIBUTES = (VARIABLE_VALUE, PY_STATE)


class CheckpointTree(dict[str, Any]):
    """The nested dict of a checkpoint's objects, with the key <-> path mappings.

    ``key_to_path[checkpoint_key]`` is the tuple of dict keys leading to that value in the
    tree and ``path_to_key`` the reverse.
    """

    key_to_path: dict[str, Path]
    path_to_key: dict[Path, str]


def _decode(
    reader: CheckpointReader,
    node_id: int,
    attribute: SerializedTensor,
    fetched: dict[tuple[str, bool], Any] | None = None,
) -> Any:
    """The value of ``attribute``: from ``fetched`` (a bulk read), else read now."""
    name, key = attribute.name, attribute.checkpoint_key
    if not reader.has_tensor(key):
        raise missing_value(reader.prefix, node_id, attribute)
    if fetched is not None and (key, False) in fetched:
        value = fetched.pop((key, False))
    else:
        value = reader.get_tensor(key)
    if name == PY_STATE and isinstance(value, bytes) and value.startswith(b"\x93NUMPY"):
        try:
            return deserialize_array(value, key, reader.prefix)
        except CheckpointError:
            return value
    return value


def load_tree(
    path: str | os.PathLike[str],
    *,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> CheckpointTree:
    """Reads an object-based checkpoint (prefix, directory or SavedModel) as a tree.

    ``path`` may be an fsspec URL or, with ``fs``, a path on an fsspec filesystem (see
    :func:`tfckpt.load_checkpoint` for ``fs`` and ``storage_options``).
    """
    with load_checkpoint(path, fs=fs, storage_options=storage_options) as reader:
        proto = read_object_graph(reader)  # node ids checked: indexing nodes cannot fail
        return _TreeBuilder(reader, proto).build()


class _SpanningTree:
    """The breadth-first spanning tree of an object graph from the root: each reached
    node's parent and local name (where TensorFlow names it), the visiting order, and
    ancestor tests in constant time (entry and exit times of a depth-first walk).

    Everything is linear in the graph's size, whatever its depth; :meth:`path` costs the
    node's depth, and the paths asked for may add up to at most ``budget`` names
    (DataLossError beyond: names the file's bytes do not hold).
    """

    def __init__(self, proto: ObjectGraph, where: str, budget: int) -> None:
        count = len(proto.nodes)
        self.parent = [-1] * count
        self.name = [""] * count
        self.order = [0]
        reached = bytearray(count)
        reached[0] = 1
        queue = deque([0])
        while queue:
            current = queue.popleft()
            for ref in proto.nodes[current].children:
                if not reached[ref.node_id]:
                    reached[ref.node_id] = 1
                    self.parent[ref.node_id], self.name[ref.node_id] = current, ref.local_name
                    self.order.append(ref.node_id)
                    queue.append(ref.node_id)
        self.reached = reached
        self._enter, self._exit = self._intervals(count)
        self._where = where
        self._budget = budget

    def _intervals(self, count: int) -> tuple[list[int], list[int]]:
        children: list[list[int]] = [[] for _ in range(count)]
        for node_id in self.order[1:]:
            children[self.parent[node_id]].append(node_id)
        enter, leave = [0] * count, [0] * count
        clock = 0
        stack = [(0, False)]
        while stack:
            node_id, done = stack.pop()
            clock += 1
            if done:
                leave[node_id] = clock
                continue
            enter[node_id] = clock
            stack.append((node_id, True))
            stack.extend((child, False) for child in reversed(children[node_id]))
        return enter, leave

    def is_ancestor(self, candidate: int, node_id: int) -> bool:
        """Whether ``candidate`` is ``node_id`` or above it in the tree."""
        return self._enter[candidate] <= self._enter[node_id] <= self._exit[candidate]

    def path(self, node_id: int) -> Path:
        """The local names from the root down to a reached node."""
        names = []
        while node_id > 0:
            names.append(self.name[node_id])
            node_id = self.parent[node_id]
        self._budget -= len(names)
        if self._budget < 0:
            raise DataLossError(
                "the object graph's paths add up to more names than its bytes hold (a deep "
                "graph whose values do not have keys of their own)",
                path=self._where,
                tensor=OBJECT_GRAPH_KEY,
            )
        return tuple(reversed(names))


class _TreeBuilder:
    """Builds the tree of one checkpoint: values placed along the spanning tree, shared
    objects linked where else they are referenced, optimizer slots under their optimizer."""

    def __init__(self, reader: CheckpointReader, proto: ObjectGraph) -> None:
        self.reader = reader
        self.nodes = proto.nodes
        # A TensorFlow-written value's key spells its path, so the paths of all recorded
        # values hold fewer names than the graph has bytes (plus the slots' few more).
        budget = proto.ByteSize() + 8 * len(proto.nodes) + (1 << 16)
        self.spanning = _SpanningTree(proto, reader.prefix, budget)
        self.tree = CheckpointTree()
        self.tree.key_to_path = {}
        self.tree.path_to_key = {}
        self.built: dict[int, Any] = {0: self.tree}
        # Each key read once: attributes naming one key share its value (a graph of 1000
        # nodes naming one 3 MB tensor must not make 3 GB of copies).
        self._values: dict[tuple[str, bool], Any] = {}
        # The values of the keys the tree holds, read in bulk before it is built (for a
        # remote checkpoint a few coalesced requests instead of one per value); each is
        # taken out as it is decoded, so that NumpyState bytes are dropped once parsed.
        self._fetched: dict[tuple[str, bool], Any] = {}

    def _keys(self) -> list[str]:
        """The existing keys that :meth:`build` decodes: every attribute of a reached node,
        and the first of an unreached slot variable of a reached variable (as
        :meth:`_add_slots`).  A key missed here is read on its own when decoded."""
        spanning, nodes, reader = self.spanning, self.nodes, self.reader
        keys: list[str] = []
        for node_id in spanning.order:
            node = nodes[node_id]
            keys.extend(a.checkpoint_key for a in node.attributes)
            for slot in node.slot_variables:
                slot_id = slot.slot_variable_node_id
                if (
                    spanning.reached[slot.original_variable_node_id]
                    and not spanning.reached[slot_id]
                    and nodes[slot_id].attributes
                ):
                    keys.append(nodes[slot_id].attributes[0].checkpoint_key)
        return [key for key in dict.fromkeys(keys) if reader.has_tensor(key)]

    def build(self) -> CheckpointTree:
        spanning = self.spanning
        # Owned values (the tree keeps them); the arrays of a data file share one buffer.
        self._fetched = read_values(self.reader, self._keys(), copy=True)
        self._value_of(0)
        for node_id in spanning.order[1:]:
            parent = self.built.get(spanning.parent[node_id])
            if isinstance(parent, dict):
                self.built[node_id] = parent[spanning.name[node_id]] = self._value_of(node_id)
        self._link_shared()
        self._add_slots()
        return self.tree

    def _record(self, key: str, where: Path) -> None:
        self.tree.key_to_path[key] = where
        self.tree.path_to_key[where] = key

    def _decode(self, node_id: int, attribute: SerializedTensor) -> Any:
        key = (attribute.checkpoint_key, attribute.name == PY_STATE)  # (py_state is parsed)
        if key not in self._values:
            self._values[key] = _decode(self.reader, node_id, attribute, self._fetched)
        return self._values[key]

    def _value_of(self, node_id: int) -> Any:
        node = self.nodes[node_id]
        if (
            not node.children
            and len(node.attributes) == 1
            and (node.attributes[0].name in _LEAF_ATTRIBUTES)
            and not node.slot_variables
        ):
            attribute = node.attributes[0]
            self._record(attribute.checkpoint_key, self.spanning.path(node_id))
            return self._decode(node_id, attribute)
        out: dict[str, Any] = self.tree if node_id == 0 else {}
        if node.attributes:
            where = self.spanning.path(node_id)
            attrs = out.setdefault(ATTRIBUTES, {})
            for attribute in node.attributes:
                self._record(attribute.checkpoint_key, (*where, ATTRIBUTES, attribute.name))
                attrs[attribute.name] = self._decode(node_id, attribute)
        return out

    def _link_shared(self) -> None:
        """Shared objects reachable by more than one path appear at each of them (but never
        inside themselves: a reference to an ancestor is left out)."""
        for node_id in self.spanning.order:
            owner = self.built.get(node_id)
            if not isinstance(owner, dict):
                continue
            for ref in self.nodes[node_id].children:
                if (
                    ref.local_name not in owner
                    and ref.node_id in self.built
                    and not self.spanning.is_ancestor(ref.node_id, node_id)
                ):
                    owner[ref.local_name] = self.built[ref.node_id]

    def _add_slots(self) -> None:
        spanning = self.spanning
        for node_id in spanning.order:
            owner = self.built.get(node_id)
            if not isinstance(owner, dict):
                continue
            for slot in self.nodes[node_id].slot_variables:
                if not spanning.reached[slot.original_variable_node_id]:
                    continue
                variable_name = "/".join(spanning.path(slot.original_variable_node_id))
                slots = owner.setdefault(OPTIMIZER_SLOT, {}).setdefault(variable_name, {})
                slot_id = slot.slot_variable_node_id
                if spanning.reached[slot_id] and slot_id in self.built:
                    slots[slot.slot_name] = self.built[slot_id]
                elif self.nodes[slot_id].attributes:
                    where = (*spanning.path(node_id), OPTIMIZER_SLOT, variable_name)
                    attribute = self.nodes[slot_id].attributes[0]
                    self._record(attribute.checkpoint_key, (*where, slot.slot_name))
                    slots[slot.slot_name] = self._decode(slot_id, attribute)
