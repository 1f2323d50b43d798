"""Serializing a tree of tfckpt objects into TensorFlow's TrackableObjectGraph.

Nodes are numbered breadth-first from the root (node 0), children in the order their owner
lists them, each object once however many paths lead to it; a value's checkpoint key comes
from the first (shortest) path that reaches it.  Every node carries
``has_checkpoint_values``: whether it or anything below it holds a value.  Sources:
tensorflow/python/checkpoint/graph_view.py, save_util_v1.py, util.py.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfckpt.objects import trackable
from tfckpt.objects.keys import ATTRIBUTES, VARIABLE_VALUE, escape_local_name, object_path_key
from tfckpt.proto import trackable_object_graph_pb2


@dataclass
class Node:
    """One object of the graph being saved."""

    obj: Any
    path: tuple[str, ...]
    children: list[tuple[str, int]] = field(default_factory=list)
    # attribute name -> (full_name, checkpoint key, value function)
    attributes: dict[str, tuple[str, str, Callable[[], Any]]] = field(default_factory=dict)


def attributes_of(
    obj: Any, path: tuple[str, ...], prefix: str | None = None
) -> dict[str, tuple[str, str, Callable[[], Any]]]:
    """The attributes of the object at ``path``; ``prefix`` is its escaped key prefix
    (``object_path_key(path)``) when the caller has it."""
    if prefix is None:
        prefix = object_path_key(path)
    if isinstance(obj, np.ndarray):
        return {
            VARIABLE_VALUE: ("/".join(path), _attribute_key(prefix, VARIABLE_VALUE), lambda: obj)
        }
    getter = getattr(obj, "_tfckpt_attributes", None)
    if getter is None:
        return {}
    return {
        name: (full_name, _attribute_key(prefix, name), value_fn)
        for name, (full_name, value_fn) in getter().items()
    }


def _attribute_key(prefix: str, attribute: str) -> str:
    """keys.attribute_key from the escaped object path."""
    return f"{prefix}/{ATTRIBUTES}/{attribute}" if prefix else f"{ATTRIBUTES}/{attribute}"


def collect(root: Any) -> list[Node]:
    """Breadth-first list of the nodes reachable from ``root``."""
    nodes = [Node(root, ())]
    prefixes = [""]  # escaped key prefix of each node, built from its parent's
    ids = {id(root): 0}
    keep_alive = [root]  # ids stay unique while the objects are alive
    queue = deque([0])
    while queue:
        index = queue.popleft()
        node = nodes[index]
        node.attributes = attributes_of(node.obj, node.path, prefixes[index])
        if type(node.obj) is np.ndarray:
            continue  # a variable: no children
        parent_prefix = prefixes[index]
        for name, child in trackable.children(node.obj):
            if type(child) is not np.ndarray:
                trackable.check_child(child, f"object {'/'.join((*node.path, name))!r}")
            child_id = ids.get(id(child))
            if child_id is None:
                child_id = len(nodes)
                ids[id(child)] = child_id
                keep_alive.append(child)
                nodes.append(Node(child, (*node.path, name)))
                escaped = escape_local_name(name)
                prefixes.append(f"{parent_prefix}/{escaped}" if parent_prefix else escaped)
                queue.append(child_id)
            node.children.append((name, child_id))
    return nodes


def to_proto(nodes: list[Node]) -> trackable_object_graph_pb2.TrackableObjectGraph:
    """The TrackableObjectGraph of ``nodes``."""
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    has_values = [bool(n.attributes) for n in nodes]
    # Propagate "has values" up to every ancestor (children always have larger BFS ids only
    # along tree edges, so iterate until stable to cover shared objects too).
    changed = True
    while changed:
        changed = False
        for i, node in enumerate(nodes):
            if not has_values[i] and any(has_values[c] for _, c in node.children):
                has_values[i] = True
                changed = True
    for i, node in enumerate(nodes):
        proto = graph.nodes.add()
        for name, child_id in node.children:
            ref = proto.children.add()
            ref.node_id = child_id
            ref.local_name = name
        for name, (full_name, key, _) in node.attributes.items():
            attr = proto.attributes.add()
            attr.name = name
            if full_name:
                attr.full_name = full_name
            attr.checkpoint_key = key
        proto.has_checkpoint_values.value = has_values[i]
    return graph
