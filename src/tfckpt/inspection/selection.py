"""Which of a checkpoint's values to take, and what to call them.

Every value of a checkpoint has a *key* (its name in the file) and, in an object-based (TF2)
checkpoint, an *object path*: the local names from the root object to it, joined by ``/``,
as the object graph gives them (unescaped, without ``/.ATTRIBUTES/VARIABLE_VALUE``).  For a
name-based (TF1) checkpoint the path is the key.  :func:`describe_checkpoint` says for each
key what it holds:

* ``variable``: a variable's value (``.../.ATTRIBUTES/VARIABLE_VALUE``);
* ``numpy``: a NumpyState / PythonState value (``.../.ATTRIBUTES/py_state``);
* ``slot``: an optimizer slot variable, whose path is
  ``<variable path>/.OPTIMIZER_SLOT/<optimizer path>/<slot name>``;
* ``attribute``: any other attribute, with path ``<object path>/.ATTRIBUTES/<name>``;
* ``object_graph`` and ``save_counter``: bookkeeping that ``tf.train.Checkpoint`` adds;
* ``tensor``: a plain tensor of a name-based checkpoint.

``optimizer`` marks optimizer state.  In an object-based checkpoint that is every value
reachable only through an optimizer object (an object with slot variables, one with an
``iter`` or ``_iterations`` child as Keras optimizers have, or a child named ``optimizer``)
and every slot; object paths go through optimizers only where nothing else leads (see
:func:`object_paths`).  In a name-based checkpoint it is a heuristic over TF1 names:
``<var>/<Optimizer>`` and ``<var>/<Optimizer>_N`` slots where ``<var>`` is another key
(Adam, Adagrad, Ftrl, Momentum, RMSProp, ...), any name with an optimizer's name as a path
component, ``beta1_power``/``beta2_power``, and Mesh TensorFlow's ``<var>_slot_v``
(``_vc``, ``_vr``, ``_m``).

:class:`Selection` then filters (optimizer state, bookkeeping, ``include``/``exclude``
regular expressions on the name), and renames.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tfckpt.errors import InvalidArgumentError
from tfckpt.objects.keys import (
    ATTRIBUTES,
    OBJECT_GRAPH_KEY,
    OPTIMIZER_SLOT,
    PY_STATE,
    SAVE_COUNTER,
    VARIABLE_VALUE,
    escape_local_name,
)

if TYPE_CHECKING:
    from tfckpt.proto.trackable_object_graph_pb2 import TrackableObjectGraph
    from tfckpt.reader import CheckpointReader

Naming = Literal["keys", "paths"]
NAMINGS: tuple[Naming, ...] = ("keys", "paths")
Kind = Literal["variable", "numpy", "slot", "attribute", "object_graph", "save_counter", "tensor"]
BOOKKEEPING_KINDS = ("object_graph", "save_counter")

_TF1_OPTIMIZERS = (
    "Adam|Adagrad|AdagradDA|Adadelta|Adamax|AdamW|Ftrl|Momentum|RMSProp|ProximalAdagrad|"
    "ProximalGradientDescent|LazyAdam|Nadam|LAMB|LARS|Lars|Lamb"
)
_TF1_SLOT = re.compile(rf"^(?:{_TF1_OPTIMIZERS})(?:_\d+)?$")
_TF1_POWER = re.compile(r"^beta[12]_power(?:_\d+)?$")
_MESH_SLOT = re.compile(r"^(?P<var>.+)_slot_(?:v|vc|vr|m)$")
_KERAS_ITERATIONS = ("iter", "_iterations")
_KERAS_MODEL_VARIABLES = "_trainable_variables"


@dataclass(frozen=True)
class ValueName:
    """One value of a checkpoint: its ``key``, object ``path`` and what it holds."""

    key: str
    path: str
    kind: Kind
    optimizer: bool = False

    @property
    def bookkeeping(self) -> bool:
        """The object graph or the save counter, which ``tf.train.Checkpoint`` adds itself."""
        return self.kind in BOOKKEEPING_KINDS

    def name(self, naming: Naming) -> str:
        """The key or the object path."""
        return self.key if naming == "keys" else self.path


def unescape_local_name(escaped: str) -> str:
    """The inverse of :func:`tfckpt.objects.keys.escape_local_name` (``..`` -> ``.``,
    ``.S`` -> ``/``)."""
    return re.sub(r"\.(.)", lambda m: "/" if m.group(1) == "S" else m.group(1), escaped)


def key_for_path(path: str, kind: Kind = "variable") -> str:
    """The checkpoint key of the value at object path ``path``.

    A path containing ``.OPTIMIZER_SLOT`` is a slot and one containing ``.ATTRIBUTES`` names
    its attribute; any other path is a variable (or, for ``kind="numpy"``, a NumpyState
    value).  Local names are escaped as TensorFlow escapes them.

    Example::

        >>> key_for_path("model/dense.1/kernel")
        'model/dense..1/kernel/.ATTRIBUTES/VARIABLE_VALUE'
    """
    parts = path.split("/")
    if OPTIMIZER_SLOT in parts:
        at = parts.index(OPTIMIZER_SLOT)
        variable, rest = parts[:at], parts[at + 1 :]
        if not variable or len(rest) < 2:
            raise InvalidArgumentError(
                f"slot path {path!r}: expected <variable>/{OPTIMIZER_SLOT}/<optimizer>/<slot>"
            )
        return (
            f"{_escaped(variable)}/{OPTIMIZER_SLOT}/{_escaped(rest[:-1])}/"
            f"{escape_local_name(rest[-1])}/{ATTRIBUTES}/{VARIABLE_VALUE}"
        )
    if ATTRIBUTES in parts:
        at = parts.index(ATTRIBUTES)
        attribute = "/".join(parts[at + 1 :])
        if not attribute:
            raise InvalidArgumentError(f"path {path!r} names no attribute after {ATTRIBUTES}")
        owner = _escaped(parts[:at])
        return f"{owner}/{ATTRIBUTES}/{attribute}" if owner else f"{ATTRIBUTES}/{attribute}"
    if not path:
        raise InvalidArgumentError("an empty object path names no value")
    attribute = PY_STATE if kind == "numpy" else VARIABLE_VALUE
    return f"{_escaped(parts)}/{ATTRIBUTES}/{attribute}"


def _escaped(parts: Sequence[str]) -> str:
    return "/".join(escape_local_name(p) for p in parts)


def path_from_key(key: str) -> tuple[str, Kind]:
    """The object path and kind of a key, read from the key alone (no object graph).

    Example::

        >>> path_from_key("net/w/.OPTIMIZER_SLOT/opt/m/.ATTRIBUTES/VARIABLE_VALUE")
        ('net/w/.OPTIMIZER_SLOT/opt/m', 'slot')
    """
    if key == OBJECT_GRAPH_KEY:
        return key, "object_graph"
    parts = key.split("/")
    if ATTRIBUTES not in parts:
        return key, "tensor"
    at = parts.index(ATTRIBUTES)
    owner, attribute = parts[:at], "/".join(parts[at + 1 :])
    if OPTIMIZER_SLOT in owner and attribute == VARIABLE_VALUE:
        slot_at = owner.index(OPTIMIZER_SLOT)
        names = [unescape_local_name(p) for p in owner]
        names[slot_at] = OPTIMIZER_SLOT
        return "/".join(names), "slot"
    names = [unescape_local_name(p) for p in owner]
    if attribute == VARIABLE_VALUE:
        kind: Kind = "save_counter" if names == [SAVE_COUNTER] else "variable"
        return "/".join(names), kind
    if attribute == PY_STATE:
        return "/".join(names), "numpy"
    return "/".join([*names, ATTRIBUTES, attribute]), "attribute"


def describe_checkpoint(reader: CheckpointReader) -> list[ValueName]:
    """A :class:`ValueName` for every key of ``reader``, in the reader's key order.

    Object paths come from the object graph when the checkpoint has one (keys it does not
    reference are described from the key alone).

    Raises:
        DataLossError: the object graph is corrupt.
    """
    keys = reader.keys()
    if OBJECT_GRAPH_KEY in reader:
        from tfckpt.objects.restore import read_object_graph

        by_key = _describe_graph(read_object_graph(reader))
        out = []
        for key in keys:
            found = by_key.get(key)
            if found is None:
                path, kind = path_from_key(key)
                found = ValueName(key, path, kind, kind == "slot")
            out.append(found)
        return out
    key_set = set(keys)
    return [ValueName(key, key, "tensor", is_tf1_optimizer_name(key, key_set)) for key in keys]


@dataclass(frozen=True)
class ObjectPaths:
    """Where each object of a graph is: ``paths[node_id]`` (local names from the root) and
    which objects are optimizer state (``optimizer``)."""

    paths: dict[int, tuple[str, ...]]
    optimizer: frozenset[int]


def object_paths(graph: TrackableObjectGraph) -> ObjectPaths:
    """The object path of every object reachable from the root: breadth first, as
    TensorFlow names checkpoint keys, except that optimizers are entered last, so that a
    model's variables which an optimizer also lists (Keras 3 optimizers list them as
    ``_trainable_variables``, and TensorFlow keys them there) get their path in the model.

    An optimizer is an object with slot variables, one with an ``iter`` or ``_iterations``
    child (Keras optimizers), or a child named ``optimizer``; what is reachable only
    through optimizers is optimizer state, except their ``_trainable_variables``.
    """
    nodes = graph.nodes

    def is_optimizer(node_id: int, local_name: str) -> bool:
        node = nodes[node_id]
        return (
            local_name == "optimizer"
            or bool(node.slot_variables)
            or any(ref.local_name in _KERAS_ITERATIONS for ref in node.children)
        )

    paths: dict[int, tuple[str, ...]] = {0: ()}
    optimizer: set[int] = set()
    deferred: deque[int] = deque()
    queue = deque([0])
    while queue:  # the model first: optimizers are reached but not entered
        current = queue.popleft()
        if current != 0 and is_optimizer(current, paths[current][-1]):
            optimizer.add(current)
            deferred.append(current)
            continue
        for ref in nodes[current].children:
            if ref.node_id not in paths:
                paths[ref.node_id] = (*paths[current], ref.local_name)
                queue.append(ref.node_id)
    model_variables: set[int] = set()
    while deferred:  # then what only optimizers lead to
        current = deferred.popleft()
        for ref in nodes[current].children:
            if ref.node_id in paths:
                continue
            paths[ref.node_id] = (*paths[current], ref.local_name)
            if current in model_variables or (
                current in optimizer and ref.local_name == _KERAS_MODEL_VARIABLES
            ):
                model_variables.add(ref.node_id)
            else:
                optimizer.add(ref.node_id)
            deferred.append(ref.node_id)
    return ObjectPaths(paths, frozenset(optimizer))


def _describe_graph(graph: TrackableObjectGraph) -> dict[str, ValueName]:
    nodes = graph.nodes
    located = object_paths(graph)
    paths = located.paths
    out: dict[str, ValueName] = {}
    for node_id, path in paths.items():
        for attribute in nodes[node_id].attributes:
            key = attribute.checkpoint_key
            joined = "/".join(path)
            kind: Kind
            if attribute.name == VARIABLE_VALUE:
                kind = "save_counter" if path == (SAVE_COUNTER,) else "variable"
            elif attribute.name == PY_STATE:
                kind = "numpy"
            else:
                kind = "attribute"
                joined = "/".join([*path, ATTRIBUTES, attribute.name])
            out.setdefault(key, ValueName(key, joined, kind, node_id in located.optimizer))
    for optimizer_id, optimizer_path in paths.items():
        for slot in nodes[optimizer_id].slot_variables:
            variable_path = paths.get(slot.original_variable_node_id)
            if variable_path is None:
                continue
            slot_path = "/".join([*variable_path, OPTIMIZER_SLOT, *optimizer_path, slot.slot_name])
            for attribute in nodes[slot.slot_variable_node_id].attributes:
                key = attribute.checkpoint_key
                out.setdefault(key, ValueName(key, slot_path, "slot", True))
    return out


def is_tf1_optimizer_name(key: str, keys: set[str]) -> bool:
    """Whether a name-based checkpoint's ``key`` is optimizer state (the heuristic of the
    module docstring); ``keys`` are all its keys."""
    parts = key.split("/")
    if _TF1_POWER.match(parts[-1]):
        return True
    if len(parts) > 1 and _TF1_SLOT.match(parts[-1]) and "/".join(parts[:-1]) in keys:
        return True
    if any(_TF1_SLOT.match(p) for p in parts[:-1]):
        return True  # e.g. training/Ftrl/learning_rate_power
    mesh = _MESH_SLOT.match(key)
    return mesh is not None and mesh.group("var") in keys


# -- renaming ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rename:
    """Renaming rules: exact names first (``mapping``), then each ``(pattern, replacement)``
    regular expression substitution in turn (``re.sub``, so ``\\1`` refers to groups).

    Example::

        Rename({"w": "weight"}, [(r"^model/", ""), (r"/kernel$", "/weight")])
    """

    mapping: Mapping[str, str] = field(default_factory=dict)
    rules: Sequence[tuple[re.Pattern[str], str]] = ()

    def __init__(
        self,
        mapping: Mapping[str, str] | None = None,
        rules: Iterable[tuple[str | re.Pattern[str], str]] = (),
    ) -> None:
        object.__setattr__(self, "mapping", dict(mapping or {}))
        compiled = []
        for pattern, replacement in rules:
            compiled.append((compile_pattern(pattern, "rename pattern"), replacement))
        object.__setattr__(self, "rules", tuple(compiled))

    @classmethod
    def from_spec(cls, spec: RenameSpec) -> Rename | Callable[[str], str] | None:
        """A Rename from a mapping (exact names), a sequence of ``(pattern, replacement)``
        pairs, or a callable (returned as it is)."""
        if spec is None or isinstance(spec, Rename):
            return spec
        if isinstance(spec, Mapping):
            return cls(spec)
        if callable(spec):
            return spec
        return cls(None, spec)

    def __call__(self, name: str) -> str:
        name = self.mapping.get(name, name)
        for pattern, replacement in self.rules:
            try:
                name = pattern.sub(replacement, name)
            except (re.error, IndexError) as exc:
                raise InvalidArgumentError(
                    f"rename {pattern.pattern!r} -> {replacement!r}: {exc}"
                ) from None
        return name


# What ``rename=`` accepts: exact names, ``(pattern, replacement)`` pairs, a function.
RenameSpec = Mapping[str, str] | Sequence[tuple[str, str]] | Callable[[str], str] | Rename | None


def compile_pattern(pattern: str | re.Pattern[str], what: str = "pattern") -> re.Pattern[str]:
    """``re.compile(pattern)``; InvalidArgumentError naming ``what`` when it is invalid."""
    if isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidArgumentError(f"invalid {what} {pattern!r}: {exc}") from None


# -- selecting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Selected:
    """A value chosen by a :class:`Selection`: its new ``name`` and where it comes from."""

    name: str
    source: ValueName


@dataclass
class Selection:
    """What to take from a checkpoint and how to name it.

    ``names``: ``"keys"`` (as stored) or ``"paths"`` (object paths).  ``optimizer`` and
    ``bookkeeping`` keep optimizer state and the object graph / save counter.  ``include``
    (a name must match one, when given) and ``exclude`` (it must match none) are regular
    expressions searched in the name before renaming; ``rename`` maps names to new ones.

    Example::

        Selection(names="paths", optimizer=False, exclude=[r"^head/"])
    """

    names: Naming = "keys"
    optimizer: bool = True
    bookkeeping: bool = True
    include: Sequence[str | re.Pattern[str]] = ()
    exclude: Sequence[str | re.Pattern[str]] = ()
    rename: RenameSpec = None

    def __post_init__(self) -> None:
        if self.names not in NAMINGS:
            raise InvalidArgumentError(f"names must be 'keys' or 'paths', not {self.names!r}")

    def apply(self, values: Iterable[ValueName]) -> list[Selected]:
        """The selected values in order, with their new names.

        Raises:
            InvalidArgumentError: an invalid pattern, or two values would get one name.
        """
        include = [compile_pattern(p, "--include pattern") for p in self.include]
        exclude = [compile_pattern(p, "--exclude pattern") for p in self.exclude]
        rename = Rename.from_spec(self.rename)
        out: list[Selected] = []
        taken: dict[str, str] = {}
        for value in values:
            if value.optimizer and not self.optimizer:
                continue
            if value.bookkeeping and not self.bookkeeping:
                continue
            name = value.name(self.names)
            if include and not any(p.search(name) for p in include):
                continue
            if any(p.search(name) for p in exclude):
                continue
            new_name = rename(name) if rename is not None else name
            if not isinstance(new_name, str) or not new_name:
                raise InvalidArgumentError(f"renaming {name!r} gave {new_name!r}, not a name")
            if new_name in taken:
                raise InvalidArgumentError(
                    f"two values would be called {new_name!r}: {taken[new_name]!r} and "
                    f"{value.key!r}"
                )
            taken[new_name] = value.key
            out.append(Selected(new_name, value))
        return out
