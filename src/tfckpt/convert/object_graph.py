"""The object graph of a converted checkpoint, so that ``tf.train.Checkpoint`` restores it.

TensorFlow restores an object-based checkpoint by walking its TrackableObjectGraph from the
root, matching children by local name, never by key.  A converted checkpoint therefore needs
a graph that leads to each value:

* :func:`prune_graph` keeps the source's own graph (every object, as TensorFlow wrote it),
  without the attributes and slots whose values were left out;
* :func:`graph_from_keys` builds one from object-based keys alone
  (``<path>/.ATTRIBUTES/<attribute>`` and ``<variable>/.OPTIMIZER_SLOT/<optimizer>/<slot>``
  keys, as :mod:`tfckpt.objects.keys` describes them): one object per path prefix, slot
  variables attached to their optimizer.  That is all TensorFlow needs to restore into
  objects with those paths.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from tfckpt.inspection.selection import unescape_local_name
from tfckpt.objects.keys import ATTRIBUTES, OBJECT_GRAPH_KEY, OPTIMIZER_SLOT, VARIABLE_VALUE
from tfckpt.proto import trackable_object_graph_pb2

ObjectGraph = trackable_object_graph_pb2.TrackableObjectGraph


def is_object_key(key: str) -> bool:
    """Whether ``key`` is an object-based checkpoint key."""
    return ATTRIBUTES in key.split("/")[:-1]


def prune_graph(graph: ObjectGraph, keys: Iterable[str]) -> ObjectGraph:
    """A copy of ``graph`` referring only to ``keys``: other attributes are dropped, slot
    variables whose value is gone too, and ``has_checkpoint_values`` is recomputed."""
    kept = set(keys)
    out = ObjectGraph()
    out.CopyFrom(graph)
    for node in out.nodes:
        attributes = [a for a in node.attributes if a.checkpoint_key in kept]
        del node.attributes[:]
        node.attributes.extend(attributes)
    for node in out.nodes:
        slots = [s for s in node.slot_variables if out.nodes[s.slot_variable_node_id].attributes]
        del node.slot_variables[:]
        node.slot_variables.extend(slots)
    _mark_values(out)
    return out


def graph_from_keys(keys: Iterable[str]) -> ObjectGraph | None:
    """An object graph leading to every object-based key in ``keys``, or None when there
    is none (a name-based checkpoint needs no graph)."""
    children: dict[tuple[str, ...], dict[str, None]] = {(): {}}
    attributes: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    slots: list[tuple[tuple[str, ...], tuple[str, ...], str, str]] = []

    def add_path(path: tuple[str, ...]) -> None:
        for depth in range(len(path)):
            parent, name = path[:depth], path[depth]
            children.setdefault(parent, {})[name] = None
            children.setdefault(path[: depth + 1], {})

    for key in keys:
        if key == OBJECT_GRAPH_KEY or not is_object_key(key):
            continue
        parts = key.split("/")
        at_attributes = parts.index(ATTRIBUTES)  # (escaped local names never equal it)
        owner, attribute = parts[:at_attributes], "/".join(parts[at_attributes + 1 :])
        if OPTIMIZER_SLOT in owner and attribute == VARIABLE_VALUE:
            at = owner.index(OPTIMIZER_SLOT)
            variable = tuple(unescape_local_name(p) for p in owner[:at])
            optimizer = tuple(unescape_local_name(p) for p in owner[at + 1 : -1])
            if variable and optimizer and len(owner) > at + 2:
                add_path(variable)
                add_path(optimizer)
                slots.append((variable, optimizer, unescape_local_name(owner[-1]), key))
                continue
        path = tuple(unescape_local_name(p) for p in owner)
        add_path(path)
        attributes.setdefault(path, []).append((attribute, key))
    if not attributes and not slots:
        return None
    # Number the objects breadth first from the root, as TensorFlow does.
    ids: dict[tuple[str, ...], int] = {(): 0}
    order: list[tuple[str, ...]] = [()]
    queue: deque[tuple[str, ...]] = deque([()])
    while queue:
        path = queue.popleft()
        for name in children.get(path, {}):
            child = (*path, name)
            ids[child] = len(order)
            order.append(child)
            queue.append(child)
    graph = ObjectGraph()
    for path in order:
        node = graph.nodes.add()
        for name in children.get(path, {}):
            ref = node.children.add()
            child = (*path, name)
            ref.node_id = ids[child]
            ref.local_name = name
        for attribute, key in attributes.get(path, []):
            serialized = node.attributes.add()
            serialized.name = attribute
            serialized.full_name = "/".join(path)
            serialized.checkpoint_key = key
    for variable, optimizer, slot_name, key in slots:
        slot_node = graph.nodes.add()  # slot variables are nobody's child
        serialized = slot_node.attributes.add()
        serialized.name = VARIABLE_VALUE
        serialized.full_name = f"{'/'.join(variable)}/{slot_name}"
        serialized.checkpoint_key = key
        reference = graph.nodes[ids[optimizer]].slot_variables.add()
        reference.original_variable_node_id = ids[variable]
        reference.slot_name = slot_name
        reference.slot_variable_node_id = len(graph.nodes) - 1
    _mark_values(graph)
    return graph


def _mark_values(graph: ObjectGraph) -> None:
    """Sets ``has_checkpoint_values``: whether an object or anything it leads to (children,
    slot variables) holds a value."""
    nodes = graph.nodes
    has = [bool(node.attributes) for node in nodes]
    changed = True
    while changed:  # until stable: shared objects and cycles need more than one pass
        changed = False
        for i, node in enumerate(nodes):
            if has[i]:
                continue
            if any(has[r.node_id] for r in node.children) or any(
                has[s.slot_variable_node_id] for s in node.slot_variables
            ):
                has[i] = changed = True
    for node, value in zip(nodes, has):
        node.has_checkpoint_values.value = value
