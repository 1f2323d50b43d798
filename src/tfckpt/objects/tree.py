"""TF2 checkpoints as the tree of objects they came from.

``load_tree(path)`` follows the TrackableObjectGraph from the root: every object becomes a
dict of its children by local name; an object holding one value (a variable's
``VARIABLE_VALUE`` or a NumpyState/PythonState ``py_state``) and nothing else becomes that
value; other attributes go under ``".ATTRIBUTES"``; optimizer slot variables go under the
optimizer's ``".OPTIMIZER_SLOT"``, keyed by the variable's path and the slot name.
NumpyState values are decoded with ``allow_pickle=False`` (other py_state stays bytes).
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

from tfckpt.errors import CheckpointError
from tfckpt.objects.keys import ATTRIBUTES, OPTIMIZER_SLOT, PY_STATE, VARIABLE_VALUE
from tfckpt.objects.numpy_state import deserialize_array
from tfckpt.objects.restore import SerializedTensor, missing_value, read_object_graph
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


def _decode(reader: CheckpointReader, node_id: int, attribute: SerializedTensor) -> Any:
    name, key = attribute.name, attribute.checkpoint_key
    if not reader.has_tensor(key):
        raise missing_value(reader.prefix, node_id, attribute)
    value = reader.get_tensor(key)
    if name == PY_STATE and isinstance(value, bytes) and value.startswith(b"\x93NUMPY"):
        try:
            return deserialize_array(value, key, reader.prefix)
        except CheckpointError:
            return value
    return value


def load_tree(path: str | os.PathLike[str]) -> CheckpointTree:
    """Reads an object-based checkpoint (prefix, directory or SavedModel) as a tree."""
    with load_checkpoint(path) as reader:
        proto = read_object_graph(reader)  # node ids checked: indexing nodes cannot fail
        nodes = proto.nodes
        # Breadth-first paths: each node is placed where TensorFlow names it.
        paths: dict[int, Path] = {0: ()}
        parents: dict[int, int] = {}
        order = [0]
        queue = deque([0])
        while queue:
            current = queue.popleft()
            for ref in nodes[current].children:
                if ref.node_id not in paths:
                    paths[ref.node_id] = (*paths[current], ref.local_name)
                    parents[ref.node_id] = current
                    order.append(ref.node_id)
                    queue.append(ref.node_id)
        tree = CheckpointTree()
        tree.key_to_path = {}
        tree.path_to_key = {}
        built: dict[int, Any] = {0: tree}

        def record(key: str, where: Path) -> None:
            tree.key_to_path[key] = where
            tree.path_to_key[where] = key

        def value_of(node_id: int, where: Path) -> Any:
            node = nodes[node_id]
            if (
                not node.children
                and len(node.attributes) == 1
                and (node.attributes[0].name in _LEAF_ATTRIBUTES)
                and not node.slot_variables
            ):
                attribute = node.attributes[0]
                record(attribute.checkpoint_key, where)
                return _decode(reader, node_id, attribute)
            out: dict[str, Any] = tree if node_id == 0 else {}
            if node.attributes:
                attrs = out.setdefault(ATTRIBUTES, {})
                for attribute in node.attributes:
                    record(attribute.checkpoint_key, (*where, ATTRIBUTES, attribute.name))
                    attrs[attribute.name] = _decode(reader, node_id, attribute)
            return out

        for node_id in order:
            where = paths[node_id]
            if node_id != 0:
                parent = built.get(parents[node_id])
                if isinstance(parent, dict):
                    built[node_id] = parent[where[-1]] = value_of(node_id, where)
            else:
                value_of(0, ())
        # Shared objects reachable by more than one path appear at each of them.
        for node_id in order:
            owner = built.get(node_id)
            if not isinstance(owner, dict):
                continue
            for ref in nodes[node_id].children:
                if (
                    ref.local_name not in owner
                    and ref.node_id in built
                    and not _is_ancestor(paths, ref.node_id, node_id)
                ):
                    owner[ref.local_name] = built[ref.node_id]
        for node_id in order:
            owner = built.get(node_id)
            if not isinstance(owner, dict):
                continue
            for slot in nodes[node_id].slot_variables:
                variable_path = paths.get(slot.original_variable_node_id)
                slot_path = paths.get(slot.slot_variable_node_id)
                if variable_path is None:
                    continue
                variable_name = "/".join(variable_path)
                slot_node = nodes[slot.slot_variable_node_id]
                where = (*paths[node_id], OPTIMIZER_SLOT, variable_name, slot.slot_name)
                slots = owner.setdefault(OPTIMIZER_SLOT, {}).setdefault(variable_name, {})
                if slot_path is not None and slot.slot_variable_node_id in built:
                    slots[slot.slot_name] = built[slot.slot_variable_node_id]
                elif slot_node.attributes:
                    attribute = slot_node.attributes[0]
                    record(attribute.checkpoint_key, where)
                    slots[slot.slot_name] = _decode(reader, slot.slot_variable_node_id, attribute)
        return tree


def _is_ancestor(paths: dict[int, Path], candidate: int, node_id: int) -> bool:
    ancestor, own = paths[candidate], paths[node_id]
    return own[: len(ancestor)] == ancestor
