"""Keras 3 ``.weights.h5`` files from the object graph of a Keras 3 model's checkpoint.

Keras 3's ``Model.load_weights`` refuses TensorFlow checkpoints (keras-team/keras#18709,
#20083).  Its own weights file (keras/src/saving/saving_lib.py, ``H5IOStore``,
``_save_state``/``_load_state``) is an HDF5 file holding, for every object that has
variables, a group ``<path>/vars`` with one dataset per variable named ``"0"``, ``"1"``,
... in the object's variable order (``Layer.save_own_variables``: its trainable variables,
then its non-trainable ones, each in creation order; ``Optimizer.save_own_variables``: its
``variables``).  ``<path>`` comes from walking the model the way ``_walk_saveable`` does:

* a Sequential or Functional model first yields its ``layers`` as the container
  ``layers``, whose members are named after their Python class in snake case, numbered
  per class in ``model.layers`` order (``layers/dense``, ``layers/dense_1``,
  ``layers/batch_normalization``; ``_save_container_state``);
* then every attribute in sorted order, private (``_x``) ones last, each object with state
  under the attribute's name (``block/d1``, ``optimizer``); an object reached twice is
  saved once, where it is first reached.

A ``tf.train.Checkpoint(model=model)`` of a Keras 3 model under TensorFlow records the same
model differently (keras/src/backend/tensorflow/layer.py, trackable.py): a layer's children
are its attributes that hold TensorFlow trackables (variables by attribute name, e.g.
``_kernel``, sublayers, the optimizer); a Functional model's layers are the list
``_operations`` (``model.layers`` order), a Sequential's are ``_functional/_operations``;
an optimizer's variables are the list ``_variables`` (``optimizer.variables`` order) and
``_trainable_variables`` names the model variables it trains.  It does not record classes:
a layer's class is read from its name, which Keras makes from the class
(``keras.src.utils.naming.auto_name``: ``dense``, ``dense_1``, ...) and which is the
next-to-last part of its variables' ``full_name`` (``sequential/dense/kernel``).

What cannot be made right is refused, naming what is missing: a checkpoint without an
object graph, a Keras 2 (``tf_keras``) graph, a layer whose class cannot be read (its
name then has to be given with ``classes``), variables the optimizer trains that the graph
does not lead to (Keras 3 under TensorFlow does not track layers kept in Python lists),
values HDF5/Keras cannot hold.  Two choices are made where the checkpoint is silent:

* a layer's variables are ordered trainable first when the checkpoint holds a Keras
  optimizer (its ``_trainable_variables``); without one, they keep the graph's order
  (creation order), which is Keras's order unless a layer creates a non-trainable variable
  before a trainable one;
* a layer without any variable has no name in the checkpoint and is not counted; Keras's
  own loading then fails loudly (variable counts differ) if such a layer shares its class
  with a layer that has variables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from tfckpt.convert.plan import Progress
from tfckpt.convert.staging import staged_file
from tfckpt.errors import InvalidArgumentError, UnsupportedError
from tfckpt.inspection.extras import require
from tfckpt.objects.keys import VARIABLE_VALUE
from tfckpt.proto import trackable_object_graph_pb2

ObjectGraph = trackable_object_graph_pb2.TrackableObjectGraph

_OPERATIONS = "_operations"  # Functional: its layers, in ``model.layers`` order
_FUNCTIONAL = "_functional"  # Sequential: the Functional model it builds over its layers
_OPTIMIZER = "optimizer"
_OPT_VARIABLES = "_variables"
_OPT_TRAINABLE = "_trainable_variables"
_OPT_ITERATIONS = "_iterations"
# Attributes that Keras's walk skips (keras/src/saving/saving_lib.py get_attr_skipset:
# those of a bare Layer, plus a Functional's operations and a Sequential's functional).
_SKIPPED = frozenset({_OPERATIONS, _FUNCTIONAL})
_KERAS2_CHILD = re.compile(r"^layer(_with_weights)?-\d+$")
_AUTO_SUFFIX = re.compile(r"_\d+$")


@dataclass(frozen=True)
class KerasEntry:
    """One dataset of the weights file: its HDF5 ``path`` (``layers/dense/vars/0``), the
    checkpoint ``key`` it holds and the object path it has in the checkpoint."""

    path: str
    key: str
    object_path: str


@dataclass
class KerasLayout:
    """The datasets of a weights file, in Keras's walk order, and notes on what was left
    out (``(object path, reason)``)."""

    entries: list[KerasEntry] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)


def to_snake_case(name: str) -> str:
    """Keras's snake case of a class name (keras/src/utils/naming.py), e.g.
    ``'BatchNormalization'`` -> ``'batch_normalization'``, ``'Conv2D'`` -> ``'conv2d'``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _error(message: str, path: str | None) -> UnsupportedError:
    return UnsupportedError(f"cannot write a Keras weights file: {message}", path=path)


class _Walk:
    """Walks the object graph from the model's node the way Keras walks the model."""

    def __init__(
        self,
        graph: ObjectGraph,
        *,
        optimizer: bool,
        classes: Mapping[str, str],
        path: str | None,
    ) -> None:
        self.nodes = graph.nodes
        self.want_optimizer = optimizer
        self.classes = {
            name: to_snake_case(c) if c[:1].isupper() else c for name, c in classes.items()
        }
        self.file = path
        self.layout = KerasLayout()
        self.visited: set[int] = set()
        self.reached: set[int] = set()  # variable nodes written
        self.trainable: set[int] | None = None
        self.named: set[str] = set()  # the layer names of ``classes`` that were used
        self.has_values = [False] * len(self.nodes)
        self._mark_values()

    # -- the graph ---------------------------------------------------------------------

    def _mark_values(self) -> None:
        for i in range(len(self.nodes)):
            self.has_values[i] = self._variable_key(i) is not None
        changed = True
        while changed:  # shared objects and cycles: until stable
            changed = False
            for i, node in enumerate(self.nodes):
                if not self.has_values[i] and any(
                    self.has_values[c.node_id] for c in node.children
                ):
                    self.has_values[i] = changed = True

    def _variable_key(self, node_id: int) -> str | None:
        for attribute in self.nodes[node_id].attributes:
            if attribute.name == VARIABLE_VALUE:
                return attribute.checkpoint_key
        return None

    def _full_name(self, node_id: int) -> str:
        for attribute in self.nodes[node_id].attributes:
            if attribute.name == VARIABLE_VALUE:
                return attribute.full_name
        return ""

    def child(self, node_id: int, name: str) -> int | None:
        for ref in self.nodes[node_id].children:
            if ref.local_name == name:
                return ref.node_id
        return None

    def _list(self, node_id: int) -> list[int]:
        """The members of a TensorFlow list wrapper, by index."""
        refs = [r for r in self.nodes[node_id].children if r.local_name.isdigit()]
        return [r.node_id for r in sorted(refs, key=lambda r: int(r.local_name))]

    def _layers_of(self, node_id: int) -> list[int] | None:
        """A Functional or Sequential model's layers, or None for any other object."""
        operations = self.child(node_id, _OPERATIONS)
        if operations is None:
            functional = self.child(node_id, _FUNCTIONAL)
            if functional is not None:
                operations = self.child(functional, _OPERATIONS)
        return None if operations is None else self._list(operations)

    def _kind(self, node_id: int) -> str:
        if self.child(node_id, _OPERATIONS) is not None:
            return "functional"
        functional = self.child(node_id, _FUNCTIONAL)
        if functional is not None and self.child(functional, _OPERATIONS) is not None:
            return "sequential"
        return "layer"

    def _is_optimizer(self, node_id: int) -> bool:
        """A Keras 3 optimizer (keras/src/optimizers/base_optimizer.py)."""
        return (
            self.child(node_id, _OPT_VARIABLES) is not None
            and self.child(node_id, _OPT_ITERATIONS) is not None
        )

    # -- the walk ----------------------------------------------------------------------

    def model(self, node_id: int, object_path: str) -> KerasLayout:
        for ref in self.nodes[node_id].children:
            if _KERAS2_CHILD.match(ref.local_name):
                raise _error(
                    f"{object_path or 'the root'!r} is a Keras 2 (tf_keras) model (its layers are "
                    f"{ref.local_name!r}, ...); only Keras 3 models' checkpoints are mapped",
                    self.file,
                )
        optimizer = self.child(node_id, _OPTIMIZER)
        if optimizer is not None and self._is_optimizer(optimizer):
            trainable = self.child(optimizer, _OPT_TRAINABLE)
            if trainable is not None:
                self.trainable = set(self._list(trainable))
        self.saveable(node_id, "", object_path)
        if not self.reached:
            raise _error(f"{object_path!r} leads to no layer variables", self.file)
        unused = sorted(set(self.classes) - self.named)
        if unused:
            raise InvalidArgumentError(
                f"no layer of the model's layer lists is named {', '.join(map(repr, unused))} "
                "(a class is given for it)",
                path=self.file,
            )
        self._check_trainable_reached()
        return self.layout

    def saveable(self, node_id: int, h5_path: str, object_path: str) -> None:
        if node_id in self.visited:
            return
        self.visited.add(node_id)
        if self._is_optimizer(node_id):
            self._optimizer(node_id, h5_path, object_path)
            return
        self._own_variables(node_id, h5_path, object_path)
        layers = self._layers_of(node_id)
        if layers is not None:
            self.container(layers, _join(h5_path, "layers"), f"{object_path}/{_OPERATIONS}")
        children = [
            ref
            for ref in self.nodes[node_id].children
            if ref.local_name not in _SKIPPED
            and self._variable_key(ref.node_id) is None
            and self.has_values[ref.node_id]
        ]
        # keras/src/saving/saving_lib.py _walk_saveable: sorted(dir(obj), key=_name_key),
        # which puts private names ("_x" -> "~_x") after public ones.
        for ref in sorted(children, key=lambda r: _name_key(r.local_name)):
            child_path = f"{object_path}/{ref.local_name}"
            child_h5 = _join(h5_path, ref.local_name)
            if self._is_list(ref.node_id):
                self.container(self._list(ref.node_id), child_h5, child_path)
            else:
                self.saveable(ref.node_id, child_h5, child_path)

    def _is_list(self, node_id: int) -> bool:
        refs = self.nodes[node_id].children
        return (
            bool(refs)
            and all(r.local_name.isdigit() for r in refs)
            and not self._is_optimizer(node_id)
        )

    def container(self, members: Iterable[int], h5_path: str, object_path: str) -> None:
        """keras/src/saving/saving_lib.py _save_container_state: members named after
        their class, numbered per class (``dense``, ``dense_1``)."""
        used: dict[str, int] = {}
        for index, member in enumerate(members):
            member_path = f"{object_path}/{index}"
            if self._variable_key(member) is not None or not self.has_values[member]:
                continue  # variables in a list are not Keras objects; empty layers: see above
            if member in self.visited:
                # Keras still numbers it (it names before it checks for a visit).
                _unique(self._class_name(member, member_path), used)
                continue
            if self._is_list(member):
                name = _unique("container", used)
                self.container(self._list(member), _join(h5_path, name), member_path)
                continue
            name = _unique(self._class_name(member, member_path), used)
            self.saveable(member, _join(h5_path, name), member_path)

    def _class_name(self, node_id: int, object_path: str) -> str:
        kind = self._kind(node_id)
        if kind != "layer":
            return kind
        layer_name = self._layer_name(node_id, object_path)
        if layer_name in self.classes:
            self.named.add(layer_name)
            return self.classes[layer_name]
        return _AUTO_SUFFIX.sub("", layer_name)

    def _layer_name(self, node_id: int, object_path: str) -> str:
        """The layer's name: the part of its variables' full names before the variable's
        own name (``sequential/dense/kernel`` -> ``dense``), one part further up per level
        of sublayers when it has no variable of its own."""
        level: list[int] = [node_id]
        seen = {node_id}
        for depth in range(8):
            names = set()
            for current in level:
                for ref in self.nodes[current].children:
                    full_name = self._full_name(ref.node_id)
                    if self._variable_key(ref.node_id) is not None and full_name:
                        parts = full_name.split("/")
                        if len(parts) >= depth + 2:
                            names.add(parts[-(depth + 2)])
            if len(names) == 1:
                return names.pop()
            if len(names) > 1:
                break
            level = [
                r.node_id
                for current in level
                for r in self.nodes[current].children
                if r.node_id not in seen and self._variable_key(r.node_id) is None
            ]
            seen.update(level)
            if not level:
                break
        raise _error(
            f"the class of the layer at {object_path!r} cannot be read from its variables' "
            "names (Keras names its file groups after the class); pass its class, e.g. "
            "--keras-class NAME=Dense",
            self.file,
        )

    def _own_variables(self, node_id: int, h5_path: str, object_path: str) -> None:
        refs = [
            r for r in self.nodes[node_id].children if self._variable_key(r.node_id) is not None
        ]
        if not refs:
            return
        if self.trainable is not None:
            # Layer.save_own_variables: trainable variables first, then the others.
            refs = [r for r in refs if r.node_id in self.trainable] + [
                r for r in refs if r.node_id not in self.trainable
            ]
        for index, ref in enumerate(refs):
            key = self._variable_key(ref.node_id)
            assert key is not None
            self.reached.add(ref.node_id)
            self.layout.entries.append(
                KerasEntry(_join(h5_path, f"vars/{index}"), key, f"{object_path}/{ref.local_name}")
            )

    def _optimizer(self, node_id: int, h5_path: str, object_path: str) -> None:
        if not self.want_optimizer:
            self.layout.left_out.append((object_path, "optimizer state (--exclude-optimizer)"))
            return
        variables = self.child(node_id, _OPT_VARIABLES)
        assert variables is not None
        for index, member in enumerate(self._list(variables)):
            key = self._variable_key(member)
            if key is None:
                raise _error(
                    f"the optimizer at {object_path!r} lists a variable without a value "
                    f"({_OPT_VARIABLES}/{index})",
                    self.file,
                )
            self.layout.entries.append(
                KerasEntry(
                    _join(h5_path, f"vars/{index}"), key, f"{object_path}/{_OPT_VARIABLES}/{index}"
                )
            )

    def _check_trainable_reached(self) -> None:
        if self.trainable is None:
            return
        missing = [n for n in sorted(self.trainable) if n not in self.reached]
        if not missing:
            return
        shown = ", ".join(repr(self._full_name(n) or str(n)) for n in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise _error(
            f"the optimizer trains {len(missing)} variable(s) that no layer of the object "
            f"graph holds ({shown}{more}); Keras 3 under TensorFlow does not record layers "
            "kept in Python lists or dicts in tf.train.Checkpoint, so their place in the "
            "model is unknown",
            self.file,
        )


def _name_key(name: str) -> str:
    return f"~{name}" if name.startswith("_") else name


def _unique(name: str, used: dict[str, int]) -> str:
    """keras/src/saving/saving_lib.py _get_unique_name."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def find_model(graph: ObjectGraph, model: str | None, path: str | None) -> tuple[int, str]:
    """The node of the Keras model: the object at the object path ``model`` when given,
    else the root's child ``model`` (``tf.train.Checkpoint(model=...)``), or the root when
    it is a Functional or Sequential model (``tf.train.Checkpoint(root=model)``).

    Raises:
        UnsupportedError: no such object, or the choice is ambiguous.
    """
    nodes = graph.nodes
    for ref in nodes[0].children:
        if _KERAS2_CHILD.match(ref.local_name):
            raise _error(
                f"a Keras 2 (tf_keras) model's checkpoint (its layers are {ref.local_name!r}, "
                "...); only the object graphs of Keras 3 models are mapped",
                path,
            )
    if model is not None:
        node_id, walked = 0, list[str]()
        for name in [p for p in model.split("/") if p]:
            found = [r.node_id for r in nodes[node_id].children if r.local_name == name]
            if not found:
                children = ", ".join(repr(r.local_name) for r in nodes[node_id].children)
                raise _error(
                    f"no object {name!r} under {'/'.join(walked) or 'the root'} "
                    f"(it has {children or 'no children'})",
                    path,
                )
            node_id = found[0]
            walked.append(name)
        return node_id, "/".join(walked)
    root = nodes[0]
    if any(r.local_name in (_OPERATIONS, _FUNCTIONAL) for r in root.children):
        return 0, ""  # tf.train.Checkpoint(root=model)
    for ref in root.children:
        if ref.local_name == "model":
            return ref.node_id, "model"
    candidates = [r for r in root.children if r.local_name != "save_counter"]
    names = ", ".join(repr(r.local_name) for r in candidates) or "none"
    raise _error(
        "which object is the Keras model? the root has no child 'model' (as "
        f"tf.train.Checkpoint(model=model) writes) but {names}; pass its object path "
        "(--keras-model NAME)",
        path,
    )


def keras_layout(
    graph: ObjectGraph,
    *,
    model: str | None = None,
    optimizer: bool = True,
    classes: Mapping[str, str] | None = None,
    path: str | None = None,
) -> KerasLayout:
    """Where each variable of the Keras 3 model in ``graph`` goes in a ``.weights.h5``.

    ``model`` is the model's object path (default: the root's child ``model``);
    ``optimizer`` includes the optimizer's variables (``optimizer/vars``, which
    ``load_weights`` restores into a built optimizer); ``classes`` maps layer names to
    their class (``{"encoder": "Dense"}``) for layers whose name is not Keras's automatic
    one.

    Raises:
        UnsupportedError: the graph does not say where a variable goes (see the module).
        InvalidArgumentError: ``classes`` names a layer that the model's layer lists lack.

    Example::

        layout = keras_layout(read_object_graph(reader))
        [(e.path, e.key) for e in layout.entries][0]
        # ('layers/dense/vars/0', 'model/_operations/1/_kernel/.ATTRIBUTES/VARIABLE_VALUE')
    """
    node_id, object_path = find_model(graph, model, path)
    walk = _Walk(graph, optimizer=optimizer, classes=classes or {}, path=path)
    return walk.model(node_id, object_path)


def write_keras_h5(
    final_path: str,
    entries: Iterable[tuple[str, Callable[[], np.ndarray]]],
    progress: Progress | None,
) -> None:
    """Writes ``(dataset path, read)`` pairs as Keras's ``H5IOStore`` does (bfloat16
    datasets marked ``dtype=bfloat16``), through a temporary renamed into place at the end.

    Raises:
        MissingExtraError: h5py is not installed.
    """
    h5py = require("h5py")
    with staged_file(final_path) as temporary, h5py.File(temporary, "w") as f:
        for dataset_path, read in entries:
            value = np.asarray(read())
            if not value.flags.c_contiguous:  # (np.ascontiguousarray would make scalars 1-d)
                value = value.copy(order="C")
            if value.dtype.name == "bfloat16":
                # keras/src/saving/saving_lib.py H5IOStore.__setitem__/__getitem__.
                dataset = f.create_dataset(dataset_path, data=value)
                dataset.attrs["dtype"] = "bfloat16"
            else:
                f.create_dataset(dataset_path, data=value)
            if progress is not None:
                progress(int(value.nbytes))
