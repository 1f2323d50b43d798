"""Python objects shaped like a checkpoint's object graph, for restoring into.

A user program restores a (possibly hostile) file into objects it built itself.  The
fuzzer plays that program: :func:`mirror_factory` reads the *unmutated* seed's object graph
once and returns a factory of fresh objects with the same shape (a ``Checkpoint`` root,
dicts for containers, zero arrays of the stored dtype and shape for variables, an empty
``NumpyState`` for a node whose children hold ``py_state``), so every mutant of the seed is
restored into the same program.  :class:`Mirror` collects what a restore left in them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tfckpt
from tfckpt.objects.keys import LEGACY_NUMPY_ATTRIBUTE, PY_STATE, SAVE_COUNTER, VARIABLE_VALUE
from tfckpt.objects.restore import ObjectGraph, read_object_graph

_NUMPY_ATTRIBUTES = {PY_STATE, LEGACY_NUMPY_ATTRIBUTE}


@dataclass
class Mirror:
    """A root to restore into, the variables' arrays and the NumpyState objects in it."""

    root: tfckpt.Checkpoint
    arrays: list[np.ndarray] = field(default_factory=list)
    states: list[tfckpt.NumpyState] = field(default_factory=list)

    def restored(self) -> dict[str, Any]:
        """What the restore left in the objects (arrays, NumpyState attributes, counter)."""
        return {
            "arrays": self.arrays,
            "states": [{n: getattr(s, n) for n in sorted(s._wrappers)} for s in self.states],
            "save_counter": self.root.save_counter,
        }


def _is_numpy_state(graph: ObjectGraph, node_id: int) -> bool:
    children = graph.nodes[node_id].children
    return bool(children) and all(
        {a.name for a in graph.nodes[ref.node_id].attributes} & _NUMPY_ATTRIBUTES
        for ref in children
    )


def _variable(reader: tfckpt.CheckpointReader, key: str) -> np.ndarray | None:
    try:
        dtype = reader.get_dtype(key)
        shape = tuple(reader.get_variable_to_shape_map()[key])
    except (tfckpt.CheckpointError, KeyError):
        return None
    if dtype.name == "string":
        array = np.empty(shape, object)
        array[...] = b""
        return array
    if not dtype.is_numeric_storage or dtype.is_quantized:
        return None
    return np.zeros(shape, dtype.as_numpy_dtype)


def _plan(reader: tfckpt.CheckpointReader) -> list[tuple[int, str, int, Any]]:
    """Breadth-first (parent, local name, node, template) rows of the graph's tree, where
    a template is a variable's array, "state", or "dict"."""
    graph = read_object_graph(reader)
    rows: list[tuple[int, str, int, Any]] = []
    placed = {0}
    queue = [0]
    while queue:
        parent = queue.pop(0)
        if _is_numpy_state(graph, parent):
            continue  # its children are re-created by restore
        for ref in graph.nodes[parent].children:
            if ref.node_id in placed:
                continue
            placed.add(ref.node_id)
            node = graph.nodes[ref.node_id]
            attributes = {a.name: a.checkpoint_key for a in node.attributes}
            template: Any = "dict"
            if _is_numpy_state(graph, ref.node_id):
                template = "state"
            elif not node.children and VARIABLE_VALUE in attributes:
                template = _variable(reader, attributes[VARIABLE_VALUE])
                if template is None:
                    continue
            rows.append((parent, ref.local_name, ref.node_id, template))
            queue.append(ref.node_id)
    return rows


def _attach(owner: Any, name: str, child: Any) -> None:
    if isinstance(owner, dict):
        owner[name] = child
    elif name != SAVE_COUNTER and not name.startswith("_"):
        setattr(owner, name, child)


def mirror_factory(prefix: str) -> Callable[[], Mirror]:
    """A factory of fresh objects shaped like the object graph of the checkpoint at
    ``prefix`` (read once, here)."""
    with tfckpt.load_checkpoint(prefix) as reader:
        rows = _plan(reader)

    def make() -> Mirror:
        mirror = Mirror(tfckpt.Checkpoint())
        built: dict[int, Any] = {0: mirror.root}
        for parent, name, node_id, template in rows:
            owner = built.get(parent)
            if owner is None or isinstance(owner, (np.ndarray, tfckpt.NumpyState)):
                continue
            if isinstance(template, np.ndarray):
                child: Any = template.copy()
                mirror.arrays.append(child)
            elif template == "state":
                child = tfckpt.NumpyState()
                mirror.states.append(child)
            else:
                child = {}
            built[node_id] = child
            _attach(owner, name, child)
        return mirror

    return make
