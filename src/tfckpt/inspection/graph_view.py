"""A checkpoint's objects as a tree to show: ``tfckpt tree`` and ``tfckpt info``.

Unlike :func:`tfckpt.load_tree` this reads no values: every object of the object graph is
an :class:`ObjectView` with its values' dtypes and shapes (NumpyState arrays from their
``.npy`` header), and optimizer slot variables appear under the variable they belong to.
An object reachable by several paths is shown in full at its object path
(:func:`tfckpt.inspection.selection.object_paths`: breadth first, through optimizers last) and as a
reference elsewhere.  A name-based (TF1) checkpoint, which has no
object graph, is shown by name scope (``a/b/c`` under ``a`` and ``a/b``), so TF1 slots
(``kernel/Adam``) also land under their variable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfckpt.errors import CheckpointError
from tfckpt.inspection.selection import object_paths
from tfckpt.inspection.sources import dtype_name, npy_spec
from tfckpt.objects.keys import OBJECT_GRAPH_KEY, PY_STATE, VARIABLE_VALUE
from tfckpt.reader import CheckpointReader


@dataclass
class ValueView:
    """One stored value of an object: ``attribute`` (``VARIABLE_VALUE``, ``py_state``, ...),
    its checkpoint ``key``, ``kind`` (``variable``, ``numpy``, ``python``, ``attribute``,
    ``tensor``), dtype and shape; ``present`` is False when the key is missing."""

    attribute: str
    key: str
    kind: str
    dtype: str
    shape: tuple[int, ...]
    present: bool = True

    def describe(self) -> str:
        if not self.present:
            return f"MISSING (key {self.key!r})"
        dtype = self.dtype.removeprefix("numpy:")
        kind = "numpy " if self.kind == "numpy" else ""
        return f"{kind}{dtype} {list(self.shape)}"


@dataclass
class SlotView:
    """An optimizer slot of a variable: slot name, the optimizer's path, its value."""

    slot: str
    optimizer: str
    value: ValueView


@dataclass
class ObjectView:
    """One object: local ``name``, ``path`` from the root, its values, the slots of the
    variable it is, its children; ``same_as`` is set (children empty) where an object shown
    elsewhere is reached again."""

    name: str
    path: str
    node_id: int | None
    values: list[ValueView] = field(default_factory=list)
    slots: list[SlotView] = field(default_factory=list)
    children: list[ObjectView] = field(default_factory=list)
    same_as: str | None = None
    has_values: bool = False

    @property
    def is_leaf_value(self) -> bool:
        """An object that is just one variable (or NumpyState value), shown on one line."""
        return (
            not self.children
            and len(self.values) == 1
            and self.values[0].attribute in (VARIABLE_VALUE, PY_STATE, "")
        )

    def count(self) -> tuple[int, int]:
        """(objects, values) in this subtree, references not counted."""
        if self.same_as is not None:
            return 0, 0
        objects, values = 1, len(self.values) + len(self.slots)
        for child in self.children:
            more_objects, more_values = child.count()
            objects += more_objects
            values += more_values
        return objects, values

    def to_dict(self) -> dict[str, Any]:
        def value(v: ValueView) -> dict[str, Any]:
            return {
                "attribute": v.attribute,
                "key": v.key,
                "kind": v.kind,
                "dtype": v.dtype,
                "shape": list(v.shape),
                "present": v.present,
            }

        out: dict[str, Any] = {"name": self.name, "path": self.path, "node_id": self.node_id}
        if self.same_as is not None:
            out["same_as"] = self.same_as
            return out
        out["values"] = [value(v) for v in self.values]
        if self.slots:
            out["slots"] = [
                {"slot": s.slot, "optimizer": s.optimizer, **value(s.value)} for s in self.slots
            ]
        out["children"] = [c.to_dict() for c in self.children]
        return out


def _value_view(reader: CheckpointReader, attribute: str, key: str) -> ValueView:
    if key not in reader:
        return ValueView(attribute, key, "attribute", "?", (), present=False)
    dtype = reader.get_dtype(key).name
    shape = _shape(reader, key)
    if attribute == VARIABLE_VALUE:
        return ValueView(attribute, key, "variable", dtype, shape)
    if attribute == PY_STATE and dtype == "string" and shape == ():
        try:
            found = npy_spec(reader.get_bytes_view(key))
        except CheckpointError:
            found = None
        if found is not None:
            return ValueView(attribute, key, "numpy", dtype_name(found[0]), found[1])
        return ValueView(attribute, key, "python", dtype, shape)
    return ValueView(attribute, key, "attribute", dtype, shape)


def _shape(reader: CheckpointReader, key: str) -> tuple[int, ...]:
    return tuple(reader.get_slice(key).shape)


def object_tree(reader: CheckpointReader) -> ObjectView:
    """The objects of ``reader``'s checkpoint (see the module docstring).

    Raises:
        DataLossError: the object graph is corrupt.
    """
    if OBJECT_GRAPH_KEY not in reader:
        return _scope_tree(reader)
    from tfckpt.objects.restore import read_object_graph

    graph = read_object_graph(reader)
    nodes = graph.nodes
    paths = object_paths(graph).paths
    slots: dict[int, list[SlotView]] = {}
    for optimizer_id, node in enumerate(nodes):
        for slot in node.slot_variables:
            slot_node = nodes[slot.slot_variable_node_id]
            for attribute in slot_node.attributes:
                slots.setdefault(slot.original_variable_node_id, []).append(
                    SlotView(
                        slot.slot_name,
                        "/".join(paths.get(optimizer_id, ("?",))),
                        _value_view(reader, attribute.name, attribute.checkpoint_key),
                    )
                )

    def build(node_id: int, name: str, path: tuple[str, ...]) -> ObjectView:
        node = nodes[node_id]
        view = ObjectView(name, "/".join(path), node_id)
        view.values = [_value_view(reader, a.name, a.checkpoint_key) for a in node.attributes]
        view.slots = slots.get(node_id, [])
        for ref in node.children:
            child_path = (*path, ref.local_name)
            first = paths.get(ref.node_id)
            if first != child_path:
                reference = ObjectView(ref.local_name, "/".join(child_path), ref.node_id)
                reference.same_as = "/".join(first) if first is not None else "?"
                reference.has_values = bool(nodes[ref.node_id].has_checkpoint_values.value)
                view.children.append(reference)
            else:
                view.children.append(build(ref.node_id, ref.local_name, child_path))
        view.has_values = bool(view.values or view.slots) or any(
            c.has_values for c in view.children
        )
        return view

    return build(0, "", ())


def _scope_tree(reader: CheckpointReader) -> ObjectView:
    root = ObjectView("", "", None)
    index: dict[str, ObjectView] = {"": root}
    for key in reader:
        parts = key.split("/")
        owner = root
        for depth in range(len(parts)):
            path = "/".join(parts[: depth + 1])
            found = index.get(path)
            if found is None:
                found = index[path] = ObjectView(parts[depth], path, None)
                owner.children.append(found)
            owner = found
        dtype = reader.get_dtype(key).name
        owner.values.append(ValueView("", key, "tensor", dtype, _shape(reader, key)))
    _mark(root)
    return root


def _mark(view: ObjectView) -> bool:
    view.has_values = bool(view.values) | any([_mark(c) for c in view.children])
    return view.has_values
