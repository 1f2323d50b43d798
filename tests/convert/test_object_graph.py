"""Object graphs for converted checkpoints: built from keys, or the source's pruned
(tfckpt.convert.object_graph; that TensorFlow restores them is tests/tf's job)."""

from __future__ import annotations

import tfckpt
from tests.conftest import FIXTURES
from tfckpt.convert.object_graph import graph_from_keys, is_object_key, prune_graph
from tfckpt.objects.restore import read_object_graph

SLOT = "net/w/.OPTIMIZER_SLOT/opt/m/.ATTRIBUTES/VARIABLE_VALUE"


def _children(graph, node_id):
    return {ref.local_name: ref.node_id for ref in graph.nodes[node_id].children}


def test_graph_from_keys_nests_objects_breadth_first():
    """One object per path prefix, numbered breadth first from the root; each value an
    attribute of its object; escaped local names unescaped."""
    graph = graph_from_keys(
        [
            "net/w/.ATTRIBUTES/VARIABLE_VALUE",
            "net/d..x/.ATTRIBUTES/VARIABLE_VALUE",
            "top/.ATTRIBUTES/py_state",
            "_CHECKPOINTABLE_OBJECT_GRAPH",
        ]
    )
    assert graph is not None
    root = _children(graph, 0)
    assert list(root) == ["net", "top"] and root == {"net": 1, "top": 2}
    net = _children(graph, 1)
    assert list(net) == ["w", "d.x"]
    w = graph.nodes[net["w"]]
    assert [(a.name, a.checkpoint_key) for a in w.attributes] == [
        ("VARIABLE_VALUE", "net/w/.ATTRIBUTES/VARIABLE_VALUE")
    ]
    assert graph.nodes[2].attributes[0].name == "py_state"
    assert all(node.has_checkpoint_values.value for node in graph.nodes)


def test_slots_are_attached_to_their_optimizer():
    """A slot key makes a slot variable node that is nobody's child, referenced by the
    optimizer's slot_variables with the original variable's node id."""
    graph = graph_from_keys(["net/w/.ATTRIBUTES/VARIABLE_VALUE", SLOT])
    assert graph is not None
    optimizer = _children(graph, 0)["opt"]
    (slot,) = graph.nodes[optimizer].slot_variables
    assert slot.slot_name == "m"
    assert slot.original_variable_node_id == _children(graph, _children(graph, 0)["net"])["w"]
    slot_node = graph.nodes[slot.slot_variable_node_id]
    assert slot_node.attributes[0].checkpoint_key == SLOT
    assert all(slot.slot_variable_node_id != r.node_id for n in graph.nodes for r in n.children)
    assert graph.nodes[optimizer].has_checkpoint_values.value


def test_name_based_keys_need_no_graph():
    """Keys that are not object-based give no graph."""
    assert graph_from_keys(["dense/kernel", "global_step"]) is None
    assert not is_object_key("dense/kernel") and is_object_key(".ATTRIBUTES/x")


def test_prune_keeps_structure_and_drops_left_out_values():
    """Pruning a real graph keeps every object and edge, drops the attributes and slots of
    keys left out, and marks objects left without values."""
    reader = tfckpt.load_checkpoint(FIXTURES / "object_based" / "ckpt-1")
    graph = read_object_graph(reader)
    kept = [k for k in reader if "OPTIMIZER_SLOT" not in k and "v1_optimizer" not in k]
    pruned = prune_graph(graph, kept)
    assert len(pruned.nodes) == len(graph.nodes)
    assert [len(n.children) for n in pruned.nodes] == [len(n.children) for n in graph.nodes]
    keys = {a.checkpoint_key for n in pruned.nodes for a in n.attributes}
    assert keys == set(kept) - {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    assert not any(n.slot_variables for n in pruned.nodes)
    v1 = _children(pruned, 0)["v1_optimizer"]
    assert not pruned.nodes[v1].has_checkpoint_values.value
    assert len(graph.nodes[v1].slot_variables) == 4  # the source is untouched
