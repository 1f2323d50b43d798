"""Naming and selecting a checkpoint's values: object paths, kinds, optimizer state,
filters and renames (tfckpt.inspection.selection)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tfckpt
from tests.conftest import CORPUS, FIXTURES
from tfckpt.errors import InvalidArgumentError
from tfckpt.inspection.selection import (
    Rename,
    Selection,
    ValueName,
    describe_checkpoint,
    key_for_path,
    path_from_key,
    unescape_local_name,
)
from tfckpt.objects.keys import escape_local_name
from tfckpt.proto import trackable_object_graph_pb2


def _describe(prefix):
    with tfckpt.load_checkpoint(prefix) as reader:
        return {v.key: v for v in describe_checkpoint(reader)}


def test_object_based_paths_kinds_and_optimizer_state():
    """Keys get the object path TensorFlow's graph gives them; slots, the Keras and the TF1
    optimizer's variables are optimizer state; the graph and save counter bookkeeping."""
    values = _describe(FIXTURES / "object_based" / "ckpt-1")
    kernel = values["dense/_kernel/.ATTRIBUTES/VARIABLE_VALUE"]
    assert (kernel.path, kernel.kind, kernel.optimizer) == ("dense/_kernel", "variable", False)
    slot = values["net/w/.OPTIMIZER_SLOT/v1_optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"]
    assert (slot.path, slot.kind, slot.optimizer) == (
        "net/w/.OPTIMIZER_SLOT/v1_optimizer/m",
        "slot",
        True,
    )
    assert values["optimizer/_variables/2/.ATTRIBUTES/VARIABLE_VALUE"].optimizer
    assert values["v1_optimizer/beta1_power/.ATTRIBUTES/VARIABLE_VALUE"].optimizer
    assert values["_CHECKPOINTABLE_OBJECT_GRAPH"].bookkeeping
    assert values["save_counter/.ATTRIBUTES/VARIABLE_VALUE"].kind == "save_counter"
    assert not any(v.optimizer for k, v in values.items() if k.startswith(("net/d", "dense")))


def test_numpy_state_values():
    """NumpyState values are kind 'numpy', named by their attribute's object path."""
    values = _describe(FIXTURES / "numpy_state" / "ckpt-1")
    x = values["numpy_arrays/x/.ATTRIBUTES/py_state"]
    assert (x.path, x.kind) == ("numpy_arrays/x", "numpy")


def test_keras3_model_variables_listed_by_the_optimizer_are_not_optimizer_state(tmp_path):
    """Keras 3 optimizers list the model's variables as _trainable_variables; where that is
    the first path to them (the optimizer sorts first) they are still model variables."""
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    names = {0: [("adam", 1), ("model", 2)], 1: [("_iterations", 3), ("_trainable_variables", 4)]}
    names[4] = [("0", 5)]
    names[2] = [("kernel", 5)]
    for node_id in range(6):
        node = graph.nodes.add()
        for local_name, child in names.get(node_id, []):
            ref = node.children.add()
            ref.local_name, ref.node_id = local_name, child
    keys = {3: "adam/_iterations/.ATTRIBUTES/VARIABLE_VALUE"}
    keys[5] = "adam/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"
    for node_id, key in keys.items():
        attribute = graph.nodes[node_id].attributes.add()
        attribute.name, attribute.checkpoint_key = "VARIABLE_VALUE", key
    tfckpt.save_tensors(
        tmp_path / "ckpt",
        {
            keys[3]: 1,
            keys[5]: [1.0, 2.0],
            "_CHECKPOINTABLE_OBJECT_GRAPH": graph.SerializeToString(),
        },
    )
    values = _describe(tmp_path / "ckpt")
    assert values[keys[3]].optimizer and not values[keys[5]].optimizer


def test_tf1_optimizer_heuristics_on_real_checkpoints():
    """Name-based checkpoints: Adam/Ftrl/Adagrad/Momentum slots of existing variables,
    beta powers and Mesh TensorFlow's _slot_v are optimizer state, the variables are not."""
    adam = _describe(CORPUS / "Gknoblau-nxt-tensorflow@64ef5f9a79" / "model.ckpt")
    assert adam["mweight/Adam"].optimizer and adam["mweight/Adam_1"].optimizer
    assert adam["beta1_power"].optimizer and not adam["mweight"].optimizer
    tfx = _describe(
        CORPUS / "tensorflow-tfx@2f98ebd5c3/tfx/components/testdata/trainer/current/"
        "serving_model_dir/model.ckpt-10000"
    )
    optimizer = {k for k, v in tfx.items() if v.optimizer}
    assert optimizer and all(("Ftrl" in k or "Adagrad" in k) for k in optimizer)
    assert not tfx["global_step"].optimizer
    t5 = _describe(CORPUS / "google-research-t5x/t5x/testdata/mtf_tiny_t5/model.ckpt-0")
    assert t5["shared/embedding_slot_v"].optimizer and not t5["shared/embedding"].optimizer


local_names = st.text(alphabet="ab./S_", min_size=1, max_size=6)


@given(st.lists(local_names, min_size=1, max_size=4))
def test_escaping_round_trips(names):
    """unescape_local_name undoes TensorFlow's escaping of '.' and '/'."""
    for name in names:
        assert unescape_local_name(escape_local_name(name)) == name


@given(st.lists(st.text(alphabet="abc.-_", min_size=1, max_size=5), min_size=1, max_size=4))
def test_key_for_path_and_path_from_key_round_trip(parts):
    """For paths without '/' in local names, key -> path -> key is the identity, for
    variables, NumpyState values and slots."""
    path = "/".join(parts)
    for kind in ("variable", "numpy"):
        key = key_for_path(path, kind)  # type: ignore[arg-type]
        assert path_from_key(key) == (path, kind)
    slot = f"{path}/.OPTIMIZER_SLOT/opt/m"
    assert path_from_key(key_for_path(slot)) == (slot, "slot")


def test_key_for_path_examples():
    """The documented examples, and attributes other than VARIABLE_VALUE."""
    assert (
        key_for_path("model/dense.1/kernel") == "model/dense..1/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    )
    assert key_for_path("a/.ATTRIBUTES/OBJECT_CONFIG_JSON") == "a/.ATTRIBUTES/OBJECT_CONFIG_JSON"
    with pytest.raises(InvalidArgumentError):
        key_for_path("a/.OPTIMIZER_SLOT/m")


def test_rename_rules_apply_in_order():
    """Exact names first, then each regular expression substitution on the result."""
    rename = Rename({"w": "weight"}, [(r"^model/", ""), (r"/kernel$", "/weight"), ("/", ".")])
    assert rename("w") == "weight"
    assert rename("model/dense/kernel") == "dense.weight"
    assert Rename.from_spec(str.upper)("x") == "X"  # type: ignore[misc]


def test_selection_filters_and_collisions():
    """include/exclude, optimizer and bookkeeping switches; two values renamed to one name
    and invalid patterns raise InvalidArgumentError."""
    values = [
        ValueName("a/.ATTRIBUTES/VARIABLE_VALUE", "a", "variable"),
        ValueName(
            "a/.OPTIMIZER_SLOT/o/m/.ATTRIBUTES/VARIABLE_VALUE",
            "a/.OPTIMIZER_SLOT/o/m",
            "slot",
            True,
        ),
        ValueName("_CHECKPOINTABLE_OBJECT_GRAPH", "_CHECKPOINTABLE_OBJECT_GRAPH", "object_graph"),
        ValueName("b/.ATTRIBUTES/VARIABLE_VALUE", "b", "variable"),
    ]
    chosen = Selection(names="paths", optimizer=False, bookkeeping=False).apply(values)
    assert [s.name for s in chosen] == ["a", "b"]
    assert [s.name for s in Selection(names="paths", include=["^b"]).apply(values)] == ["b"]
    assert len(Selection(exclude=["OPTIMIZER"]).apply(values)) == 3
    with pytest.raises(InvalidArgumentError, match="two values would be called 'x'"):
        Selection(names="paths", bookkeeping=False, optimizer=False, rename=[(".+", "x")]).apply(
            values
        )
    with pytest.raises(InvalidArgumentError, match="invalid --include pattern"):
        Selection(include=["("]).apply(values)
    with pytest.raises(InvalidArgumentError):
        Selection(names="nicknames")  # type: ignore[arg-type]
