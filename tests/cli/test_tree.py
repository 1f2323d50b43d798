"""``tfckpt tree``: the object graph as a tree."""

from __future__ import annotations

import json

from tests.cli.run import tfckpt
from tests.conftest import CORPUS, FIXTURES

OBJECT_BASED = FIXTURES / "object_based" / "ckpt-1"
KERAS_TUNER = next(
    CORPUS.glob("tensorflow-tfx@86bbd368b2/**/epoch_0/checkpoint.index")
).with_suffix("")


def test_variables_with_dtype_and_shape_and_slots_under_their_variable():
    """Objects are nested by local name, variables show dtype and shape, and an optimizer's
    slot variables appear under the variable they belong to."""
    done = tfckpt("tree", OBJECT_BASED)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{OBJECT_BASED} (")
    text = done.stdout
    assert "├── dense\n│   ├── _kernel: float32 [2, 3]\n│   └── bias: float32 [3]\n" in text
    w = lines.index("│   ├── w: float32 [2, 2]")
    assert lines[w + 1] == "│   │   ├── slot 'm' of v1_optimizer: float32 [2, 2]"
    assert lines[w + 2] == "│   │   └── slot 'v' of v1_optimizer: float32 [2, 2]"
    assert lines[-1] == "└── save_counter: int64 []"


def test_shared_objects_are_shown_once_and_referred_to():
    """An object reachable by several paths is expanded at its first path only; elsewhere
    the tree says where it is ('->')."""
    text = tfckpt("tree", OBJECT_BASED).stdout
    assert "0 -> dense/_kernel" in text and "1 -> dense/bias" in text
    assert text.count("_kernel: float32 [2, 3]") == 1


def test_numpy_state_arrays_show_their_array_dtype_and_shape():
    """NumpyState values are shown as the arrays they hold, read from the .npy header."""
    text = tfckpt("tree", FIXTURES / "numpy_state" / "ckpt-1").stdout
    assert "x: numpy float64 [3, 4]" in text
    assert "count: numpy int32 []" in text and "big_endian: numpy int32 [5]" in text


def test_keras_checkpoint_slots_and_hidden_bookkeeping():
    """A Keras save_weights checkpoint from the corpus: Adam's m and v under each kernel;
    objects without values are hidden unless --all."""
    text = tfckpt("tree", KERAS_TUNER).stdout
    assert "kernel: float32" in text and "slot 'm' of optimizer: float32" in text
    assert "keras_api" not in text
    everything = tfckpt("tree", KERAS_TUNER, "--all").stdout
    assert len(everything.splitlines()) > len(text.splitlines())


def test_name_based_checkpoint_by_scope():
    """A TF1 checkpoint (no object graph) is shown by name scope; its slots land under
    their variable."""
    done = tfckpt("tree", CORPUS / "Gknoblau-nxt-tensorflow@64ef5f9a79" / "model.ckpt")
    assert "no object graph" in done.stdout.splitlines()[0]
    assert "├── mbias: float32 [10]\n│   ├── Adam: float32 [10]\n│   └── Adam_1: float32 [10]" in (
        done.stdout
    )


def test_filter_and_depth():
    """--filter keeps matching objects and their ancestors; --depth cuts the tree with a
    count of what is below."""
    filtered = tfckpt("tree", OBJECT_BASED, "--filter", "alpha").stdout.splitlines()
    assert filtered[1:] == ["└── net", "    └── d", "        └── alpha: float32 []"]
    shallow = tfckpt("tree", OBJECT_BASED, "--depth", "1").stdout
    assert "├── net\n│   └── ... (" in shallow and "w: float32" not in shallow


def test_json_tree():
    """--json gives the nested objects with their values (key, dtype, shape) and slots."""
    data = json.loads(tfckpt("tree", OBJECT_BASED, "--json").stdout)
    assert data["object_graph"] is True
    net = next(c for c in data["root"]["children"] if c["name"] == "net")
    w = next(c for c in net["children"] if c["name"] == "w")
    assert w["values"][0]["key"] == "net/w/.ATTRIBUTES/VARIABLE_VALUE"
    assert w["values"][0]["shape"] == [2, 2]
    assert {s["slot"] for s in w["slots"]} == {"m", "v"}
