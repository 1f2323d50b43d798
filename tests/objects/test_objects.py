"""Object-based checkpoints without TensorFlow: NumpyState, Checkpoint, CheckpointManager,
load_tree.  Runs without TensorFlow (never imports it).

Expected values come from NumPy itself, from fixtures/objects/EXPECTED.json (what TensorFlow
2.21 saw when tools/make_object_fixtures.py wrote those checkpoints) and from the shared
corpus' MANIFEST.json (TensorFlow's view of real-world checkpoints).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time

import ml_dtypes
import numpy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tfckpt
from tests.conftest import CORPUS, FIXTURES
from tests.manifest import value_digest
from tfckpt.proto import trackable_object_graph_pb2

OBJECTS = FIXTURES / "objects"
EXPECTED_PATH = OBJECTS / "EXPECTED.json"
EXPECTED = json.loads(EXPECTED_PATH.read_text(encoding="utf-8")) if EXPECTED_PATH.is_file() else {}
GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"

IRIS = (
    "tensorflow-tfx@86bbd368b2/tfx/examples/iris/iris_native_keras_custom_splits/.temp/7/"
    "iris_tuning/trial_1cbaf13c352c7c7aeb70574ac4e5548b/checkpoints/epoch_0/checkpoint"
)
LSTM_SAVED_MODEL = (
    "SciSharp-TensorFlow.NET/test/TensorFlowNET.Keras.UnitTest/Assets/lstm_from_sequential"
)

needs_fixtures = pytest.mark.skipif(
    not EXPECTED, reason="fixtures/objects not generated (tools/make_object_fixtures.py)"
)


# -- helpers ---------------------------------------------------------------------------------


def npy_bytes(value, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=allow_pickle)
    return buffer.getvalue()


def array_digest(array) -> str:
    """EXPECTED.json's ``array_digest`` (tools/make_object_fixtures.py)."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def describe_array(array) -> dict:
    return {
        "descr": json.loads(json.dumps(np.lib.format.dtype_to_descr(array.dtype))),
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "fortran_order": bool(
            array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous
        ),
        "sha256": array_digest(array),
    }


def assert_same_array(actual, expected, what=""):
    """Same dtype (incl. byte order), shape, memory order and element bytes."""
    expected = np.asarray(expected)
    assert isinstance(actual, np.ndarray), f"{what}: {type(actual)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.dtype.str == expected.dtype.str, f"{what}: {actual.dtype.str}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if expected.ndim > 1 and expected.flags.f_contiguous and not expected.flags.c_contiguous:
        assert actual.flags.f_contiguous, f"{what}: Fortran order lost"
    assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes(), (
        f"{what}: values differ"
    )


def graph_of(prefix) -> trackable_object_graph_pb2.TrackableObjectGraph:
    proto = trackable_object_graph_pb2.TrackableObjectGraph()
    with tfckpt.load_checkpoint(prefix) as reader:
        proto.ParseFromString(bytes(reader.get_tensor(GRAPH_KEY)))
    return proto


def build_graph(nodes) -> bytes:
    """A TrackableObjectGraph from ``[(children {name: id}, attributes {name: key})]``."""
    proto = trackable_object_graph_pb2.TrackableObjectGraph()
    for children, attributes in nodes:
        node = proto.nodes.add()
        for name, node_id in children.items():
            ref = node.children.add()
            ref.node_id = node_id
            ref.local_name = name
        for name, key in attributes.items():
            attribute = node.attributes.add()
            attribute.name = name
            attribute.checkpoint_key = key
    return proto.SerializeToString()


def numpy_state_checkpoint(prefix, attribute_name, blobs) -> str:
    """A checkpoint of Checkpoint(numpy_arrays=NumpyState) with hand-made attribute bytes."""
    nodes = [({"numpy_arrays": 1}, {}), ({name: 2 + i for i, name in enumerate(blobs)}, {})]
    tensors = {}
    for name, blob in blobs.items():
        key = f"numpy_arrays/{name}/.ATTRIBUTES/{attribute_name}"
        nodes.append(({}, {attribute_name: key}))
        tensors[key] = blob
    tensors[GRAPH_KEY] = build_graph(nodes)
    return tfckpt.save_tensors(prefix, tensors)


def at(tree, path):
    node = tree
    for part in path:
        node = node[part]
    return node


def assert_tree_mappings(tree, reader):
    """key_to_path and path_to_key are inverse, cover every value, and point at it."""
    keys = set(reader.get_variable_to_shape_map()) - {GRAPH_KEY}
    assert set(tree.key_to_path) == keys
    assert len(tree.path_to_key) == len(tree.key_to_path)
    assert {path: key for key, path in tree.key_to_path.items()} == tree.path_to_key
    for key, path in tree.key_to_path.items():
        assert isinstance(path, tuple) and all(isinstance(p, str) for p in path), path
        value = at(tree, path)
        raw = reader.get_tensor(key)
        if isinstance(value, np.ndarray) and isinstance(raw, bytes):  # decoded py_state
            assert_same_array(value, np.load(io.BytesIO(raw), allow_pickle=False), key)
        elif isinstance(raw, bytes):
            assert value == raw, key
        elif np.asarray(raw).dtype == object:  # string tensors
            assert np.asarray(value).tolist() == np.asarray(raw).tolist(), key
        else:
            assert np.asarray(value).tobytes() == np.asarray(raw).tobytes(), key
            assert np.asarray(value).shape == np.asarray(raw).shape, key


def state_file(directory) -> str:
    with open(os.path.join(directory, "checkpoint"), encoding="utf-8") as f:
        return f.read()


def files_in(directory) -> list[str]:
    return sorted(os.listdir(directory))


class FakeClock:
    """A ``time.time`` replacement whose value the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock(1_000.0)
    monkeypatch.setattr(time, "time", fake)
    return fake


# Things unpickled by a crafted py_state would land here.
UNPICKLED: list[str] = []


def _record_unpickle(tag):
    UNPICKLED.append(tag)
    return tag


class _PickleTrap:
    def __reduce__(self):
        return (_record_unpickle, ("unpickled!",))


# -- the seed example ------------------------------------------------------------------------


def test_numpy_state_seed_example(tmp_path):
    tmp = str(tmp_path)
    arrays = tfckpt.NumpyState()
    checkpoint = tfckpt.Checkpoint(numpy_arrays=arrays)
    arrays.x = numpy.zeros([3, 4])
    save_path = checkpoint.save(os.path.join(tmp, "ckpt"))
    arrays.x[1, 1] = 4.0
    checkpoint.restore(save_path)
    assert (arrays.x == numpy.zeros([3, 4])).all()
    second_checkpoint = tfckpt.Checkpoint(numpy_arrays=tfckpt.NumpyState())
    second_checkpoint.restore(save_path)
    assert (second_checkpoint.numpy_arrays.x == numpy.zeros([3, 4])).all()


def test_numpy_state_seed_example_layout(tmp_path):
    arrays = tfckpt.NumpyState()
    checkpoint = tfckpt.Checkpoint(numpy_arrays=arrays)
    arrays.x = np.zeros([3, 4])
    save_path = checkpoint.save(os.path.join(tmp_path, "ckpt"))
    assert save_path == os.path.join(tmp_path, "ckpt-1")
    with tfckpt.load_checkpoint(save_path) as reader:
        assert sorted(reader.get_variable_to_shape_map()) == [
            GRAPH_KEY,
            "numpy_arrays/x/.ATTRIBUTES/py_state",
            "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
        ]
        assert reader.get_variable_to_dtype_map()["numpy_arrays/x/.ATTRIBUTES/py_state"].name == (
            "string"
        )
        assert reader.get_tensor("numpy_arrays/x/.ATTRIBUTES/py_state") == npy_bytes(
            np.zeros([3, 4])
        )
        assert reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE") == 1


# -- NumpyState ------------------------------------------------------------------------------

STRUCTURED = np.dtype([("id", "<i4"), ("pos", "<f8", (2,)), ("tag", "S3"), ("ok", "?")])
NESTED_STRUCTURED = np.dtype([("a", [("x", ">u2"), ("y", "<f4", (2, 2))]), ("b", "U2")])


def numpy_state_values() -> dict[str, object]:
    """Every kind of value numpy.save writes without pickling."""
    values: dict[str, object] = {
        "bool": np.array([True, False, True]),
        "float16": np.array([0.5, -2.0, 65504.0, np.inf], np.float16),
        "float32": np.arange(12, dtype=np.float32).reshape(3, 4) / 3,
        "float64": np.array([np.pi, -0.0, np.nan, 1e-308], np.float64),
        "longdouble": np.array([1.25, -3.5], np.longdouble),
        "complex64": np.array([1 + 2j, -3.5j], np.complex64),
        "complex128": np.array([[1e300 - 1j]], np.complex128),
        "clongdouble": np.array([1 + 2j], np.clongdouble),
        "zero_d": np.array(-7, np.int32),
        "zero_d_float": np.array(2.75),
        "empty": np.zeros((0,), np.float32),
        "empty_2d": np.zeros((3, 0), np.int16),
        "fortran": np.asfortranarray(np.arange(24, dtype=np.float64).reshape(2, 3, 4)),
        "fortran_2d": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
        "big_i4": np.array([1, -2, 0x01020304], ">i4"),
        "big_f8": np.array([[1.5, -0.0], [np.inf, 1e-300]], ">f8"),
        "big_u2": np.array([1, 0xFFFE], ">u2"),
        "big_c8": np.array([1 - 1j], ">c8"),
        "structured": np.array(
            [(1, (0.5, -1.0), b"ab", True), (2, (2.0, 3.0), b"xyz", False)], STRUCTURED
        ),
        "nested_structured": np.zeros(2, NESTED_STRUCTURED),
        "unicode": np.array(["a", "héllo", "日本", ""], "<U5"),
        "unicode_big": np.array(["xyz"], ">U3"),
        "bytes": np.array([b"", b"a\x01", b"xyz"], "S3"),
        "void": np.frombuffer(b"\x00\x01\x02\x03\x04\x05", "V3").copy(),
        "datetime64": np.array(["2024-02-29T12:00", "1969-07-20T20:17", "NaT"], "M8[m]"),
        "timedelta64": np.array([1, -2, 3], "m8[s]"),
        "np_float32_scalar": np.float32(2.5),
        "np_int64_scalar": np.int64(-(2**62)),
        "np_bool_scalar": np.bool_(True),
        "np_complex_scalar": np.complex128(1 - 2j),
        "np_bytes_scalar": np.bytes_(b"abc"),
        "np_str_scalar": np.str_("héllo"),
        "np_datetime_scalar": np.datetime64("2001-01-01", "D"),
        "np_structured_scalar": np.array([(3, (1.0, 2.0), b"q", True)], STRUCTURED)[0],
    }
    for dtype in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
        info = np.iinfo(dtype)
        values[dtype] = np.array([info.min, 0, 1, info.max], dtype)
    return values


@pytest.mark.parametrize("name", sorted(numpy_state_values()))
def test_numpy_state_round_trip_dtype(tmp_path, name):
    value = numpy_state_values()[name]
    state = tfckpt.NumpyState()
    setattr(state, name, value)
    checkpoint = tfckpt.Checkpoint(numpy_arrays=state)
    path = checkpoint.save(os.path.join(tmp_path, "ckpt"))
    with tfckpt.load_checkpoint(path) as reader:
        stored = reader.get_tensor(f"numpy_arrays/{name}/.ATTRIBUTES/py_state")
    assert stored == npy_bytes(value), "py_state is exactly numpy.save(allow_pickle=False)"

    fresh = tfckpt.NumpyState()
    status = tfckpt.Checkpoint(numpy_arrays=fresh).restore(path)
    status.assert_consumed()
    restored = getattr(fresh, name)
    expected = np.load(io.BytesIO(npy_bytes(value)), allow_pickle=False)
    assert_same_array(restored, expected, name)
    assert_same_array(restored, np.asarray(value), name)

    # Restoring into an existing attribute replaces its value.
    setattr(state, name, np.zeros(1, np.uint8))
    checkpoint.restore(path).assert_consumed()
    assert_same_array(getattr(state, name), expected, name)


def test_numpy_state_many_attributes_round_trip(tmp_path):
    values = numpy_state_values()
    state = tfckpt.NumpyState()
    for name, value in values.items():
        setattr(state, name, value)
    path = tfckpt.Checkpoint(numpy_arrays=state).write(os.path.join(tmp_path, "all"))
    fresh = tfckpt.NumpyState()
    tfckpt.Checkpoint(numpy_arrays=fresh).read(path).assert_consumed()
    assert sorted(n for n in dir(fresh) if n in values) == sorted(values)
    for name, value in values.items():
        assert_same_array(getattr(fresh, name), np.asarray(value), name)


def test_numpy_state_fortran_order_and_byte_order_preserved(tmp_path):
    state = tfckpt.NumpyState()
    state.f = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    state.b = np.arange(4, dtype=">i4")
    path = tfckpt.Checkpoint(s=state).write(os.path.join(tmp_path, "o"))
    fresh = tfckpt.NumpyState()
    tfckpt.Checkpoint(s=fresh).read(path).assert_consumed()
    assert fresh.f.flags.f_contiguous and not fresh.f.flags.c_contiguous
    assert fresh.b.dtype.str == ">i4"
    assert fresh.b.tolist() == [0, 1, 2, 3]


def test_numpy_state_numpy_scalar_comes_back_as_0d_array(tmp_path):
    state = tfckpt.NumpyState()
    state.s = np.float32(1.5)
    assert state.s == np.float32(1.5)
    path = tfckpt.Checkpoint(s=state).write(os.path.join(tmp_path, "s"))
    fresh = tfckpt.NumpyState()
    tfckpt.Checkpoint(s=fresh).read(path)
    # numpy.load of a saved scalar gives a 0-d array, as in TF-Agents.
    assert isinstance(fresh.s, np.ndarray) and fresh.s.shape == () and fresh.s.dtype == np.float32
    assert fresh.s[()] == np.float32(1.5)


def test_numpy_state_attribute_semantics():
    state = tfckpt.NumpyState()
    first = np.ones(3)
    state.x = first
    assert state.x is first
    second = np.zeros((2, 2), np.int8)
    state.x = second  # reassigning replaces, with any dtype/shape
    assert state.x is second
    with pytest.raises(AttributeError):
        _ = state.missing
    del state.x
    with pytest.raises(AttributeError):
        _ = state.x
    with pytest.raises(AttributeError):
        del state.x


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(3, id="int"),
        pytest.param(2.5, id="float"),
        pytest.param([1, 2], id="list"),
        pytest.param("abc", id="str"),
        pytest.param(b"abc", id="bytes"),
        pytest.param(None, id="None"),
        pytest.param({"a": np.ones(1)}, id="dict"),
        pytest.param(tfckpt.NumpyState(), id="NumpyState"),
    ],
)
def test_numpy_state_rejects_non_numpy_values(value):
    state = tfckpt.NumpyState()
    with pytest.raises(TypeError, match="NumPy"):
        state.x = value
    with pytest.raises(AttributeError):
        _ = state.x


def _object_values():
    structured_object = np.zeros(2, [("a", "<i4"), ("b", "O")])
    return [
        pytest.param(np.array([1, "a", None], dtype=object), id="object_array"),
        pytest.param(np.empty((0,), dtype=object), id="empty_object_array"),
        pytest.param(np.array(None, dtype=object), id="0d_object_array"),
        pytest.param(structured_object, id="structured_with_object_field"),
        pytest.param(structured_object[0], id="structured_scalar_with_object_field"),
    ]


@pytest.mark.parametrize("value", _object_values())
def test_numpy_state_rejects_object_arrays_at_assignment(value):
    state = tfckpt.NumpyState()
    with pytest.raises(TypeError) as excinfo:
        state.x = value
    message = str(excinfo.value)
    assert "'x'" in message and "object" in message and "pickl" in message, message
    with pytest.raises(AttributeError):
        _ = state.x  # nothing was tracked


def test_numpy_state_existing_object_attribute_is_not_replaced_by_object_array():
    state = tfckpt.NumpyState()
    state.x = np.arange(3)
    with pytest.raises(TypeError):
        state.x = np.array([object()], dtype=object)
    assert state.x.tolist() == [0, 1, 2]


def test_numpy_state_legacy_array_attribute_is_restored(tmp_path):
    """The earliest tf.contrib NumpyState stored the bytes under the attribute 'array'."""
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.array(5, np.int16)
    path = numpy_state_checkpoint(
        tmp_path / "legacy", "array", {"x": npy_bytes(x), "y": npy_bytes(y)}
    )
    state = tfckpt.NumpyState()
    # read(): the hand-made checkpoint has no save_counter (restore() would create one).
    tfckpt.Checkpoint(numpy_arrays=state).read(path).assert_consumed()
    assert_same_array(state.x, x, "x")
    assert_same_array(state.y, y, "y")


def test_numpy_state_pickled_py_state_is_never_unpickled(tmp_path):
    payload = np.array([_PickleTrap(), "x"], dtype=object)
    blob = npy_bytes(payload, allow_pickle=True)
    assert np.load(io.BytesIO(blob), allow_pickle=True)[0] == "unpickled!"  # the trap works
    UNPICKLED.clear()
    path = numpy_state_checkpoint(tmp_path / "evil", "py_state", {"x": blob})

    state = tfckpt.NumpyState()
    with pytest.raises(tfckpt.DataLossError) as excinfo:
        tfckpt.Checkpoint(numpy_arrays=state).restore(path)
    assert UNPICKLED == []
    # The error names the checkpoint key of the value (not just the attribute's name).
    assert excinfo.value.tensor == "numpy_arrays/x/.ATTRIBUTES/py_state"
    assert excinfo.value.path == path
    assert str(excinfo.value).startswith(
        f"{path!r}, tensor 'numpy_arrays/x/.ATTRIBUTES/py_state': "
    )
    assert isinstance(excinfo.value, tfckpt.CheckpointError)

    # Also through the legacy attribute name and through load_tree (bytes stay bytes).
    legacy = numpy_state_checkpoint(tmp_path / "evil_legacy", "array", {"x": blob})
    with pytest.raises(tfckpt.DataLossError):
        tfckpt.Checkpoint(numpy_arrays=tfckpt.NumpyState()).restore(legacy)
    tree = tfckpt.load_tree(path)
    assert tree["numpy_arrays"]["x"] == blob
    assert UNPICKLED == []


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not numpy at all", id="garbage"),
        pytest.param(npy_bytes(np.arange(100))[:-7], id="truncated"),
        pytest.param(b"\x93NUMPY\x01\x00\x10\x00{'descr': 'zz'}\n", id="bad_header"),
    ],
)
def test_numpy_state_corrupt_py_state_is_data_loss(tmp_path, blob):
    path = numpy_state_checkpoint(tmp_path / "bad", "py_state", {"x": blob})
    with pytest.raises(tfckpt.DataLossError):
        tfckpt.Checkpoint(numpy_arrays=tfckpt.NumpyState()).restore(path)


def test_numpy_state_in_nested_structures(tmp_path):
    states = [tfckpt.NumpyState(), {"inner": tfckpt.NumpyState()}]
    states[0].a = np.arange(3)
    states[1]["inner"].b = np.array(["x", "yz"])
    path = tfckpt.Checkpoint(states=states).save(os.path.join(tmp_path, "ckpt"))
    fresh = [tfckpt.NumpyState(), {"inner": tfckpt.NumpyState()}]
    tfckpt.Checkpoint(states=fresh).restore(path).assert_consumed()
    assert fresh[0].a.tolist() == [0, 1, 2]
    assert fresh[1]["inner"].b.tolist() == ["x", "yz"]


@pytest.mark.filterwarnings("ignore:Stored array in format 3.0")
@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        dtype=st.one_of(
            hnp.scalar_dtypes(),
            hnp.byte_string_dtypes(),
            hnp.unicode_string_dtypes(),
            hnp.array_dtypes(allow_subarrays=True),
        ),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    ),
    st.booleans(),
)
def test_numpy_state_round_trips_any_array(value, fortran):
    if fortran:
        value = np.asfortranarray(value)
    state = tfckpt.NumpyState()
    state.v = value
    with tempfile.TemporaryDirectory() as tmp:
        path = tfckpt.Checkpoint(s=state).write(os.path.join(tmp, "h"))
        fresh = tfckpt.NumpyState()
        tfckpt.Checkpoint(s=fresh).read(path).assert_consumed()
    assert_same_array(fresh.v, np.load(io.BytesIO(npy_bytes(value)), allow_pickle=False), "v")


# -- Checkpoint: arrays and structures -------------------------------------------------------


def make_structure():
    return {
        "params": {
            "w": np.arange(6, dtype=np.float32).reshape(2, 3),
            "b": np.zeros(3),
            "a/b": np.array([7, 8], np.int32),
            "x.y": np.array(True),
        },
        "layers": [
            np.array([1.5, 2.5], ml_dtypes.bfloat16),
            (np.array([1, 2], np.uint16), {"deep": np.array([1 + 2j], np.complex64)}),
            [],
            np.array([b"abc", b"", b"\x00\xff"], dtype=object),
        ],
        "pair": (np.array(3, np.int64), np.full((2, 2), -1, np.int8)),
        "sub": tfckpt.Checkpoint(v=np.array([0.25], np.float16), flag=np.array([False])),
    }


def leaves(structure, path=()):
    """(path, array) of every array in a tfckpt structure."""
    if isinstance(structure, np.ndarray):
        yield path, structure
    elif isinstance(structure, dict):
        for key, value in structure.items():
            yield from leaves(value, (*path, key))
    elif isinstance(structure, (list, tuple)):
        for i, value in enumerate(structure):
            yield from leaves(value, (*path, str(i)))
    elif isinstance(structure, tfckpt.Checkpoint):
        for key, value in structure._tfckpt_children():
            if key != "save_counter":
                yield from leaves(value, (*path, key))


def zeros_like_structure(structure):
    if isinstance(structure, np.ndarray):
        if structure.dtype == object:
            out = np.empty(structure.shape, object)
            out[...] = b""
            return out
        return np.zeros_like(structure)
    if isinstance(structure, dict):
        return {k: zeros_like_structure(v) for k, v in structure.items()}
    if isinstance(structure, list):
        return [zeros_like_structure(v) for v in structure]
    if isinstance(structure, tuple):
        return tuple(zeros_like_structure(v) for v in structure)
    if isinstance(structure, tfckpt.Checkpoint):
        return tfckpt.Checkpoint(
            **{k: zeros_like_structure(v) for k, v in structure._children.items()}
        )
    raise TypeError(type(structure))


def test_nested_structures_round_trip_in_place(tmp_path):
    original = make_structure()
    path = tfckpt.Checkpoint(**original).save(os.path.join(tmp_path, "ckpt"))
    expected_keys = {
        "params/w/.ATTRIBUTES/VARIABLE_VALUE",
        "params/b/.ATTRIBUTES/VARIABLE_VALUE",
        "params/a.Sb/.ATTRIBUTES/VARIABLE_VALUE",
        "params/x..y/.ATTRIBUTES/VARIABLE_VALUE",
        "layers/0/.ATTRIBUTES/VARIABLE_VALUE",
        "layers/1/0/.ATTRIBUTES/VARIABLE_VALUE",
        "layers/1/1/deep/.ATTRIBUTES/VARIABLE_VALUE",
        "layers/3/.ATTRIBUTES/VARIABLE_VALUE",
        "pair/0/.ATTRIBUTES/VARIABLE_VALUE",
        "pair/1/.ATTRIBUTES/VARIABLE_VALUE",
        "sub/v/.ATTRIBUTES/VARIABLE_VALUE",
        "sub/flag/.ATTRIBUTES/VARIABLE_VALUE",
        "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
        GRAPH_KEY,
    }
    with tfckpt.load_checkpoint(path) as reader:
        assert set(reader.get_variable_to_shape_map()) == expected_keys
        assert reader.get_variable_to_dtype_map()["layers/0/.ATTRIBUTES/VARIABLE_VALUE"].name == (
            "bfloat16"
        )
        assert reader.get_variable_to_dtype_map()["layers/3/.ATTRIBUTES/VARIABLE_VALUE"].name == (
            "string"
        )

    target = zeros_like_structure(make_structure())
    before = {path: id(array) for path, array in leaves(target)}
    checkpoint = tfckpt.Checkpoint(**target)
    checkpoint.restore(path).assert_consumed()
    after = dict(leaves(target))
    assert {p: id(a) for p, a in after.items()} == before, "arrays must be restored in place"
    for leaf_path, array in leaves(original):
        restored = after[leaf_path]
        assert restored.dtype == array.dtype and restored.shape == array.shape, leaf_path
        if array.dtype == object:
            assert restored.tolist() == array.tolist(), leaf_path
        else:
            assert restored.tobytes() == array.tobytes(), leaf_path
    assert checkpoint.save_counter == 1


def test_object_graph_layout(tmp_path):
    w = np.ones(2)
    checkpoint = tfckpt.Checkpoint(z={"k": w}, a=[w, np.zeros(1)])
    path = checkpoint.write(os.path.join(tmp_path, "g"))
    proto = graph_of(path)
    root = proto.nodes[0]
    # Keyword arguments are tracked in sorted order, as tf.train.Checkpoint does.
    assert [c.local_name for c in root.children] == ["a", "z"]
    a = proto.nodes[root.children[0].node_id]
    assert [c.local_name for c in a.children] == ["0", "1"]
    shared = a.children[0].node_id
    z = proto.nodes[root.children[1].node_id]
    assert [(c.local_name, c.node_id) for c in z.children] == [("k", shared)]
    (attribute,) = proto.nodes[shared].attributes
    assert attribute.name == "VARIABLE_VALUE"
    # The shared array is saved once, under its first (breadth-first) path.
    assert attribute.checkpoint_key == "a/0/.ATTRIBUTES/VARIABLE_VALUE"
    assert all(n.has_checkpoint_values.value for n in proto.nodes)
    with tfckpt.load_checkpoint(path) as reader:
        assert sorted(reader.get_variable_to_shape_map()) == [
            GRAPH_KEY,
            "a/0/.ATTRIBUTES/VARIABLE_VALUE",
            "a/1/.ATTRIBUTES/VARIABLE_VALUE",
        ]
    w2, other = np.zeros(2), np.zeros(1)
    target = tfckpt.Checkpoint(z={"k": w2}, a=[w2, other])
    target.read(path).assert_consumed()
    assert w2.tolist() == [1.0, 1.0]


def test_dict_with_untrackable_values_and_non_string_keys(tmp_path):
    values = {"n": 3, "s": "text", "w": np.ones(2)}
    path = tfckpt.Checkpoint(d=values).write(os.path.join(tmp_path, "d"))
    with tfckpt.load_checkpoint(path) as reader:
        assert sorted(reader.get_variable_to_shape_map()) == [
            GRAPH_KEY,
            "d/w/.ATTRIBUTES/VARIABLE_VALUE",
        ]
    with pytest.raises(tfckpt.InvalidArgumentError):
        tfckpt.Checkpoint(d={1: np.ones(2)}).write(os.path.join(tmp_path, "bad"))
    assert not os.path.exists(os.path.join(tmp_path, "bad.index"))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(np.float32(1), id="numpy_scalar"),
        pytest.param(3, id="int"),
        pytest.param("text", id="str"),
        pytest.param(None, id="None"),
    ],
)
def test_checkpoint_rejects_untrackable_children(value):
    with pytest.raises(tfckpt.InvalidArgumentError):
        tfckpt.Checkpoint(x=value)
    checkpoint = tfckpt.Checkpoint()
    with pytest.raises(tfckpt.InvalidArgumentError):
        checkpoint.x = value


def test_checkpoint_save_counter_is_managed():
    checkpoint = tfckpt.Checkpoint()
    assert checkpoint.save_counter == 0
    with pytest.raises(AttributeError):
        checkpoint.save_counter = np.array(5)


def test_restore_mismatched_shape_names_the_key(tmp_path):
    path = tfckpt.Checkpoint(a={"w": np.ones((2, 3))}).write(os.path.join(tmp_path, "m"))
    target = np.zeros((3, 2))
    with pytest.raises(tfckpt.InvalidArgumentError) as excinfo:
        tfckpt.Checkpoint(a={"w": target}).read(path)
    assert "a/w/.ATTRIBUTES/VARIABLE_VALUE" in str(excinfo.value)
    assert excinfo.value.tensor == "a/w/.ATTRIBUTES/VARIABLE_VALUE"
    assert isinstance(excinfo.value, ValueError)
    assert "[2, 3]" in str(excinfo.value) and "[3, 2]" in str(excinfo.value)
    assert not target.any()


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.dtype(">f8").type, bool])
def test_restore_mismatched_dtype_names_the_key(tmp_path, dtype):
    path = tfckpt.Checkpoint(v=np.ones(3, np.float64)).write(os.path.join(tmp_path, "m"))
    if dtype is np.dtype(">f8").type:  # same dtype, other byte order: fine
        target = np.zeros(3, ">f8")
        tfckpt.Checkpoint(v=target).read(path).assert_consumed()
        assert target.tolist() == [1.0, 1.0, 1.0]
        return
    target = np.zeros(3, dtype)
    with pytest.raises(tfckpt.InvalidArgumentError) as excinfo:
        tfckpt.Checkpoint(v=target).read(path)
    assert "v/.ATTRIBUTES/VARIABLE_VALUE" in str(excinfo.value)
    assert "float64" in str(excinfo.value)
    assert not target.any()


def test_restore_into_read_only_array_fails(tmp_path):
    path = tfckpt.Checkpoint(v=np.ones(3)).write(os.path.join(tmp_path, "m"))
    target = np.zeros(3)
    target.flags.writeable = False
    with pytest.raises(tfckpt.InvalidArgumentError, match="read-only"):
        tfckpt.Checkpoint(v=target).read(path)


def test_arrays_with_any_layout_are_saved_as_tensorflow_values(tmp_path):
    base = np.arange(10.0)
    checkpoint = tfckpt.Checkpoint(
        big=np.arange(6, dtype=">i4").reshape(2, 3),
        fortran=np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        strided=base[::3],
    )
    path = checkpoint.write(os.path.join(tmp_path, "l"))
    with tfckpt.load_checkpoint(path) as reader:
        assert reader.get_variable_to_dtype_map()["big/.ATTRIBUTES/VARIABLE_VALUE"].name == "int32"
        big = reader.get_tensor("big/.ATTRIBUTES/VARIABLE_VALUE")
        assert big.tolist() == [[0, 1, 2], [3, 4, 5]]
        assert reader.get_tensor("fortran/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [
            [0.0, 1.0, 2.0],
            [3.0, 4.0, 5.0],
        ]
        assert reader.get_tensor("strided/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [0, 3, 6, 9]
    target_base = np.zeros(10)
    target = {
        "big": np.zeros((2, 3), ">i4"),
        "fortran": np.asfortranarray(np.zeros((2, 3))),
        "strided": target_base[::3],
    }
    tfckpt.Checkpoint(**target).read(path).assert_consumed()
    assert target["big"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert target["fortran"].flags.f_contiguous
    assert target["fortran"].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert target_base.tolist() == [0, 0, 0, 3, 0, 0, 6, 0, 0, 9]


# -- save / write / save_counter / state file ------------------------------------------------


def test_save_numbering_and_state_file(tmp_path):
    v = np.zeros(2)
    checkpoint = tfckpt.Checkpoint(v=v)
    prefix = os.path.join(tmp_path, "ckpt")
    paths = []
    for i in range(3):
        v[:] = i
        paths.append(checkpoint.save(prefix))
    assert paths == [f"{prefix}-1", f"{prefix}-2", f"{prefix}-3"]
    assert checkpoint.save_counter == 3
    # As tf.train.Checkpoint.save: only the latest, relative to the directory.
    assert state_file(tmp_path) == (
        'model_checkpoint_path: "ckpt-3"\nall_model_checkpoint_paths: "ckpt-3"\n'
    )
    assert tfckpt.latest_checkpoint(tmp_path) == paths[-1]
    for i, path in enumerate(paths):
        with tfckpt.load_checkpoint(path) as reader:
            assert reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE") == i + 1
            assert (
                reader.get_variable_to_dtype_map()["save_counter/.ATTRIBUTES/VARIABLE_VALUE"].name
                == "int64"
            )
            assert reader.get_tensor("v/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [i, i]
    assert files_in(tmp_path) == ["checkpoint"] + [
        f"ckpt-{n}{suffix}" for n in (1, 2, 3) for suffix in (".data-00000-of-00001", ".index")
    ]


def test_save_counter_continues_after_restore(tmp_path):
    prefix = os.path.join(tmp_path, "ckpt")
    first = tfckpt.Checkpoint(v=np.ones(1))
    first.save(prefix)
    first.save(prefix)
    second = tfckpt.Checkpoint(v=np.zeros(1))
    second.restore(tfckpt.latest_checkpoint(tmp_path)).assert_consumed()
    assert second.save_counter == 2
    assert second.save(prefix) == f"{prefix}-3"
    # restore() accepts the directory (its state file names the latest checkpoint).
    third = tfckpt.Checkpoint(v=np.zeros(1))
    third.restore(tmp_path).assert_consumed()
    assert third.save_counter == 3


def test_write_has_no_save_counter_and_no_state_file(tmp_path):
    checkpoint = tfckpt.Checkpoint(v=np.ones(2))
    prefix = os.path.join(tmp_path, "exact")
    assert checkpoint.write(prefix) == prefix
    assert files_in(tmp_path) == ["exact.data-00000-of-00001", "exact.index"]
    with tfckpt.load_checkpoint(prefix) as reader:
        assert sorted(reader.get_variable_to_shape_map()) == [
            GRAPH_KEY,
            "v/.ATTRIBUTES/VARIABLE_VALUE",
        ]
    # Reading the counter creates it (as in TensorFlow); a later write stores it.
    assert checkpoint.save_counter == 0
    checkpoint.write(prefix)
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE") == 0


def test_save_after_write_and_read_does_not_disturb_counter(tmp_path):
    checkpoint = tfckpt.Checkpoint(v=np.ones(2))
    checkpoint.write(os.path.join(tmp_path, "w"))
    assert checkpoint.save(os.path.join(tmp_path, "ckpt")).endswith("ckpt-1")
    fresh = tfckpt.Checkpoint(v=np.zeros(2))
    fresh.restore(os.path.join(tmp_path, "ckpt-1")).assert_consumed()
    assert fresh.save_counter == 1


def test_read_does_not_create_the_save_counter(tmp_path):
    """As tf.train.Checkpoint.read: the counter is not created by read(); its checkpointed
    value stays pending (assert_consumed fails) until the counter is created on access."""
    saved = tfckpt.Checkpoint(v=np.ones(2)).save(os.path.join(tmp_path, "ckpt"))
    v = np.zeros(2)
    checkpoint = tfckpt.Checkpoint(v=v)
    status = checkpoint.read(saved)
    assert v.tolist() == [1.0, 1.0]
    status.assert_existing_objects_matched()
    with pytest.raises(AssertionError):
        status.assert_consumed()  # save_counter's value was not restored into anything
    # write() after read() stores no save_counter: read() did not create one.
    written = checkpoint.write(os.path.join(tmp_path, "after_read"))
    with tfckpt.load_checkpoint(written) as reader:
        assert "save_counter/.ATTRIBUTES/VARIABLE_VALUE" not in reader.get_variable_to_shape_map()
    # Creating the counter restores the pending value (restore-on-create).
    assert checkpoint.save_counter == 1
    status.assert_consumed()
    # Only the counter in common: nothing but the root matched.
    with pytest.raises(AssertionError):
        tfckpt.Checkpoint().read(saved).assert_nontrivial_match()


# -- status objects --------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    """A saved Checkpoint(a=[0,1,2], b={'c': 0-d}) (with save_counter)."""
    checkpoint = tfckpt.Checkpoint(a=np.arange(3.0), b={"c": np.array(4, np.int32)})
    return checkpoint.save(os.path.join(tmp_path, "ckpt"))


def test_status_all_matched(saved):
    a, c = np.zeros(3), np.zeros((), np.int32)
    status = tfckpt.Checkpoint(a=a, b={"c": c}).restore(saved)
    assert status.assert_consumed() is status
    assert status.assert_existing_objects_matched() is status
    assert status.assert_nontrivial_match() is status
    assert status.expect_partial() is status
    assert a.tolist() == [0, 1, 2] and c == 4


def test_status_extra_python_object(saved):
    extra = np.zeros(5)
    status = tfckpt.Checkpoint(a=np.zeros(3), b={"c": np.zeros((), np.int32)}, extra=extra).restore(
        saved
    )
    with pytest.raises(AssertionError, match="not bound"):
        status.assert_existing_objects_matched()
    with pytest.raises(AssertionError):
        status.assert_consumed()
    status.assert_nontrivial_match()
    assert status.expect_partial() is status


def test_status_extra_value_in_checkpoint(saved):
    a = np.zeros(3)
    status = tfckpt.Checkpoint(a=a).restore(saved)
    status.assert_existing_objects_matched()
    status.assert_nontrivial_match()
    with pytest.raises(AssertionError, match="b"):
        status.assert_consumed()
    assert status.expect_partial() is status
    assert a.tolist() == [0, 1, 2]


def test_status_nothing_matched(tmp_path):
    path = tfckpt.Checkpoint(a=np.ones(1)).write(os.path.join(tmp_path, "w"))
    status = tfckpt.Checkpoint(other=np.zeros(1)).read(path)
    with pytest.raises(AssertionError):
        status.assert_nontrivial_match()
    with pytest.raises(AssertionError):
        status.assert_existing_objects_matched()
    with pytest.raises(AssertionError):
        status.assert_consumed()


def test_status_numpy_state_attributes_count_as_consumed(saved, tmp_path):
    state = tfckpt.NumpyState()
    state.x = np.ones(2)
    path = tfckpt.Checkpoint(s=state).save(os.path.join(tmp_path, "n", "ckpt"))
    tfckpt.Checkpoint(s=tfckpt.NumpyState()).restore(path).assert_consumed()
    status = tfckpt.Checkpoint(s=np.zeros(2)).restore(path)  # a variable where state was
    with pytest.raises(AssertionError):
        status.assert_consumed()


def test_restore_none(saved):
    a = np.zeros(3)
    checkpoint = tfckpt.Checkpoint(a=a)
    status = checkpoint.restore(None)
    for assertion in (
        status.assert_consumed,
        status.assert_existing_objects_matched,
        status.assert_nontrivial_match,
    ):
        with pytest.raises(AssertionError):
            assertion()
    assert status.expect_partial() is status
    assert not a.any()
    status.run_restore_ops()
    status.initialize_or_restore()


def test_restore_missing_checkpoint_raises(tmp_path):
    with pytest.raises(tfckpt.NotFoundError):
        tfckpt.Checkpoint(a=np.zeros(1)).restore(os.path.join(tmp_path, "nothing-1"))


# -- deferred restoration --------------------------------------------------------------------


def test_deferred_restoration_on_attach(saved):
    checkpoint = tfckpt.Checkpoint()
    status = checkpoint.restore(saved)
    with pytest.raises(AssertionError):
        status.assert_consumed()
    a = np.zeros(3)
    checkpoint.a = a
    assert a.tolist() == [0, 1, 2]
    c = np.zeros((), np.int32)
    checkpoint.b = {"c": c}
    assert c == 4
    status.assert_consumed()


def test_deferred_restoration_of_numpy_state_and_nested_checkpoint(tmp_path):
    state = tfckpt.NumpyState()
    state.x = np.arange(4)
    inner = tfckpt.Checkpoint(v=np.full(2, 9.0))
    path = tfckpt.Checkpoint(arrays=state, inner=inner).save(os.path.join(tmp_path, "ckpt"))

    fresh_inner = tfckpt.Checkpoint()
    checkpoint = tfckpt.Checkpoint(inner=fresh_inner)
    status = checkpoint.restore(path)
    checkpoint.arrays = tfckpt.NumpyState()  # attributes are created when attached
    assert checkpoint.arrays.x.tolist() == [0, 1, 2, 3]
    v = np.zeros(2)
    fresh_inner.v = v  # deferred inside a nested Checkpoint
    assert v.tolist() == [9.0, 9.0]
    status.assert_consumed()


def test_deferred_restoration_checks_shapes_on_attach(saved):
    checkpoint = tfckpt.Checkpoint()
    checkpoint.restore(saved)
    with pytest.raises(tfckpt.InvalidArgumentError, match=r"a/\.ATTRIBUTES/VARIABLE_VALUE"):
        checkpoint.a = np.zeros(4)


def test_latest_restore_wins_for_deferred_values(tmp_path):
    prefix = os.path.join(tmp_path, "ckpt")
    source = tfckpt.Checkpoint(a=np.array([1.0]))
    first = source.save(prefix)
    source.a[:] = 2.0
    second = source.save(prefix)
    checkpoint = tfckpt.Checkpoint()
    checkpoint.restore(first)
    checkpoint.restore(second)
    a = np.zeros(1)
    checkpoint.a = a
    assert a.tolist() == [2.0]


# -- CheckpointManager -----------------------------------------------------------------------


def _manager_checkpoint():
    return tfckpt.Checkpoint(step=np.zeros((), np.int64), w=np.zeros(2, np.float32))


def test_manager_max_to_keep_and_state_file(tmp_path, clock):
    directory = str(tmp_path / "run")
    checkpoint = _manager_checkpoint()
    manager = tfckpt.CheckpointManager(checkpoint, directory, max_to_keep=2)
    assert manager.latest_checkpoint is None
    assert manager.checkpoints == []
    assert manager.directory == directory
    assert manager.checkpoint is checkpoint
    saved = []
    for i in range(1, 4):
        clock.now = 1_000.0 + 10 * i
        checkpoint.step[...] = i
        saved.append(manager.save())
    assert saved == [os.path.join(directory, f"ckpt-{i}") for i in (1, 2, 3)]
    assert manager.latest_checkpoint == saved[-1]
    assert manager.checkpoints == saved[1:]
    assert tfckpt.latest_checkpoint(directory) == saved[-1]
    assert files_in(directory) == [
        "checkpoint",
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
        "ckpt-3.data-00000-of-00001",
        "ckpt-3.index",
    ]
    assert state_file(directory) == (
        'model_checkpoint_path: "ckpt-3"\n'
        'all_model_checkpoint_paths: "ckpt-2"\n'
        'all_model_checkpoint_paths: "ckpt-3"\n'
        "all_model_checkpoint_timestamps: 1020.0\n"
        "all_model_checkpoint_timestamps: 1030.0\n"
        "last_preserved_timestamp: 999.0\n"
    )
    from tfckpt.checkpoint_state import read_state

    state = read_state(directory)
    assert state.model_checkpoint_path == saved[-1]
    assert state.all_model_checkpoint_paths == saved[1:]
    assert state.all_model_checkpoint_timestamps == [1020.0, 1030.0]
    assert state.last_preserved_timestamp == 999.0
    with tfckpt.load_checkpoint(saved[-1]) as reader:
        assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 3
        assert reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE") == 3


def test_manager_continues_a_directory(tmp_path, clock):
    directory = str(tmp_path)
    checkpoint = _manager_checkpoint()
    manager = tfckpt.CheckpointManager(checkpoint, directory, max_to_keep=3)
    for i in range(1, 4):
        clock.now += 5
        checkpoint.step[...] = i
        manager.save()

    clock.now += 100
    fresh = _manager_checkpoint()
    successor = tfckpt.CheckpointManager(fresh, directory, max_to_keep=3)
    assert successor.latest_checkpoint == os.path.join(directory, "ckpt-3")
    assert successor.checkpoints == [os.path.join(directory, f"ckpt-{i}") for i in (1, 2, 3)]
    assert successor.restore_or_initialize() == os.path.join(directory, "ckpt-3")
    assert fresh.step == 3 and fresh.save_counter == 3
    assert successor.save() == os.path.join(directory, "ckpt-4")
    assert successor.checkpoints == [os.path.join(directory, f"ckpt-{i}") for i in (2, 3, 4)]
    assert not os.path.exists(os.path.join(directory, "ckpt-1.index"))
    assert not os.path.exists(os.path.join(directory, "ckpt-1.data-00000-of-00001"))
    from tfckpt.checkpoint_state import read_state

    state = read_state(directory)
    assert state.all_model_checkpoint_timestamps == [1010.0, 1015.0, 1115.0]


def test_manager_keep_checkpoint_every_n_hours(tmp_path, clock):
    directory = str(tmp_path)
    checkpoint = _manager_checkpoint()
    manager = tfckpt.CheckpointManager(
        checkpoint, directory, max_to_keep=2, keep_checkpoint_every_n_hours=1
    )  # created at t=1000: last preserved = 999
    times = [1000, 2000, 3000, 5000, 8000, 9000, 10000, 12000]
    for number, now in enumerate(times, start=1):
        clock.now = float(now)
        assert manager.save() == os.path.join(directory, f"ckpt-{number}")
    # ckpt-4 (t=5000 >= 999 + 3600) and ckpt-6 (t=9000 >= 5000 + 3600) are preserved when they
    # drop out of the window; the others are deleted.
    kept = sorted({f.split(".")[0] for f in files_in(directory) if f != "checkpoint"})
    assert kept == ["ckpt-4", "ckpt-6", "ckpt-7", "ckpt-8"]
    assert manager.checkpoints == [os.path.join(directory, f"ckpt-{i}") for i in (7, 8)]
    from tfckpt.checkpoint_state import read_state

    state = read_state(directory)
    assert state.last_preserved_timestamp == 9000.0
    assert state.all_model_checkpoint_timestamps == [10000.0, 12000.0]
    # A successor sees only the window; preserved checkpoints stay.
    successor = tfckpt.CheckpointManager(
        _manager_checkpoint(), directory, max_to_keep=2, keep_checkpoint_every_n_hours=1
    )
    assert successor.checkpoints == manager.checkpoints


def test_manager_checkpoint_number(tmp_path, clock):
    checkpoint = _manager_checkpoint()
    manager = tfckpt.CheckpointManager(
        checkpoint, tmp_path, max_to_keep=None, checkpoint_name="model"
    )
    assert manager.save(checkpoint_number=100) == os.path.join(tmp_path, "model-100")
    assert checkpoint.save_counter == 1  # still incremented
    assert manager.save() == os.path.join(tmp_path, "model-2")
    step = np.array(7, np.int64)
    assert manager.save(checkpoint_number=step) == os.path.join(tmp_path, "model-7")
    # Overwriting a managed number moves it to the end of the queue.
    assert manager.save(checkpoint_number=100) == os.path.join(tmp_path, "model-100")
    assert manager.checkpoints == [os.path.join(tmp_path, f"model-{n}") for n in (2, 7, 100)]
    assert manager.latest_checkpoint == os.path.join(tmp_path, "model-100")
    assert tfckpt.latest_checkpoint(tmp_path) == os.path.join(tmp_path, "model-100")


def test_manager_max_to_keep_none_keeps_everything(tmp_path, clock):
    manager = tfckpt.CheckpointManager(_manager_checkpoint(), tmp_path, max_to_keep=None)
    for _ in range(6):
        clock.now += 1
        manager.save()
    assert len(manager.checkpoints) == 6
    assert len(files_in(tmp_path)) == 13


@pytest.mark.parametrize("max_to_keep", [0, -1])
def test_manager_rejects_bad_max_to_keep(tmp_path, max_to_keep):
    with pytest.raises(ValueError):
        tfckpt.CheckpointManager(_manager_checkpoint(), tmp_path, max_to_keep=max_to_keep)


def test_manager_restore_or_initialize(tmp_path, clock):
    calls = []
    checkpoint = _manager_checkpoint()
    manager = tfckpt.CheckpointManager(
        checkpoint, tmp_path, max_to_keep=2, init_fn=lambda: calls.append("init")
    )
    assert manager.restore_or_initialize() is None
    assert calls == ["init"]
    checkpoint.w[:] = [1.5, -2.5]
    saved = manager.save()

    fresh = _manager_checkpoint()
    again = tfckpt.CheckpointManager(
        fresh, tmp_path, max_to_keep=2, init_fn=lambda: calls.append("again")
    )
    assert again.restore_or_initialize() == saved
    assert calls == ["init"]
    assert fresh.w.tolist() == [1.5, -2.5]
    assert fresh.save_counter == 1


def test_manager_checkpoint_interval(tmp_path, clock):
    step = np.array(0, np.int64)
    checkpoint = tfckpt.Checkpoint(step=step)
    manager = tfckpt.CheckpointManager(
        checkpoint, tmp_path, max_to_keep=None, step_counter=step, checkpoint_interval=10
    )
    results = []
    for value in (0, 0, 5, 10, 12, 20):
        step[...] = value
        results.append(manager.save())
    assert [os.path.basename(p) if p else None for p in results] == [
        "ckpt-1",
        None,
        None,
        "ckpt-2",
        None,
        "ckpt-3",
    ]
    with pytest.raises(ValueError):
        tfckpt.CheckpointManager(checkpoint, tmp_path, checkpoint_interval=5)


# -- load_tree -------------------------------------------------------------------------------


def test_load_tree_of_tfckpt_checkpoint(tmp_path):
    state = tfckpt.NumpyState()
    state.x = np.asfortranarray(np.arange(6, dtype=">f4").reshape(2, 3))
    state.s = np.array(["a", "bc"])
    structure = make_structure()
    path = tfckpt.Checkpoint(arrays=state, **structure).save(os.path.join(tmp_path, "ckpt"))
    tree = tfckpt.load_tree(path)
    assert isinstance(tree, tfckpt.CheckpointTree) and isinstance(tree, dict)
    assert sorted(tree) == ["arrays", "layers", "pair", "params", "save_counter", "sub"]
    assert tree["save_counter"] == 1
    assert_same_array(tree["arrays"]["x"], state.x, "x")
    assert_same_array(tree["arrays"]["s"], state.s, "s")
    assert sorted(tree["params"]) == ["a/b", "b", "w", "x.y"]
    assert tree["params"]["a/b"].tolist() == [7, 8]
    assert tree["params"]["x.y"] == np.True_
    assert tree["layers"]["0"].dtype == ml_dtypes.bfloat16
    assert tree["layers"]["1"]["1"]["deep"].tolist() == [1 + 2j]
    assert tree["layers"]["2"] == {}
    assert tree["layers"]["3"].tolist() == [b"abc", b"", b"\x00\xff"]
    assert tree["pair"]["0"] == 3
    assert tree["sub"]["v"].dtype == np.float16
    assert tree.key_to_path["params/a.Sb/.ATTRIBUTES/VARIABLE_VALUE"] == ("params", "a/b")
    assert tree.key_to_path["params/x..y/.ATTRIBUTES/VARIABLE_VALUE"] == ("params", "x.y")
    assert tree.key_to_path["arrays/x/.ATTRIBUTES/py_state"] == ("arrays", "x")
    assert tree.path_to_key[("layers", "1", "1", "deep")] == (
        "layers/1/1/deep/.ATTRIBUTES/VARIABLE_VALUE"
    )
    with tfckpt.load_checkpoint(path) as reader:
        assert_tree_mappings(tree, reader)


def test_load_tree_other_attributes_and_non_numpy_py_state(tmp_path):
    nodes = [
        ({"obj": 1, "blob": 2}, {}),
        (
            {},
            {"VARIABLE_VALUE": "obj/.ATTRIBUTES/VARIABLE_VALUE", "extra": "obj/.ATTRIBUTES/extra"},
        ),
        ({}, {"py_state": "blob/.ATTRIBUTES/py_state"}),
    ]
    prefix = tfckpt.save_tensors(
        tmp_path / "t",
        {
            GRAPH_KEY: build_graph(nodes),
            "obj/.ATTRIBUTES/VARIABLE_VALUE": np.arange(3, dtype=np.int32),
            "obj/.ATTRIBUTES/extra": b"meta",
            "blob/.ATTRIBUTES/py_state": b'{"json": "state"}',
        },
    )
    tree = tfckpt.load_tree(prefix)
    assert tree["obj"][".ATTRIBUTES"]["VARIABLE_VALUE"].tolist() == [0, 1, 2]
    assert tree["obj"][".ATTRIBUTES"]["extra"] == b"meta"
    assert tree["blob"] == b'{"json": "state"}'  # not numpy.save bytes: left alone
    assert tree.key_to_path["obj/.ATTRIBUTES/extra"] == ("obj", ".ATTRIBUTES", "extra")
    with tfckpt.load_checkpoint(prefix) as reader:
        assert_tree_mappings(tree, reader)


def test_load_tree_rejects_name_based_checkpoint(tmp_path):
    prefix = tfckpt.save_tensors(tmp_path / "v1", {"w": np.ones(2)})
    with pytest.raises(tfckpt.UnsupportedError):
        tfckpt.load_tree(prefix)


# -- corrupt object graphs -------------------------------------------------------------------


def corrupt_graph_checkpoint(prefix, graph, tensors=None) -> str:
    """A checkpoint holding ``graph`` (bytes, or any value) under the object-graph key."""
    return tfckpt.save_tensors(prefix, {**(tensors or {}), GRAPH_KEY: graph})


def assert_corrupt_graph(prefix, *fragments) -> None:
    """Restoring (Checkpoint.read, Checkpoint.restore) and load_tree all raise exactly
    DataLossError (not the bare base class, not a raw IndexError/KeyError) carrying the
    checkpoint and the object-graph key, with the location said once, in front."""
    attempts = [
        lambda: tfckpt.Checkpoint(v=np.zeros(2)).read(prefix),
        lambda: tfckpt.Checkpoint(v=np.zeros(2)).restore(prefix),
        lambda: tfckpt.load_tree(prefix),
    ]
    for attempt in attempts:
        with pytest.raises(tfckpt.DataLossError) as excinfo:
            attempt()
        exc = excinfo.value
        assert type(exc) is tfckpt.DataLossError
        assert exc.path == prefix
        assert exc.tensor == GRAPH_KEY
        assert str(exc) == f"{prefix!r}, tensor {GRAPH_KEY!r}: {exc.message}"
        assert prefix not in exc.message and GRAPH_KEY not in exc.message
        for fragment in fragments:
            assert fragment in exc.message, (fragment, exc.message)


def test_unparseable_object_graph_is_data_loss(tmp_path):
    """Bytes that are not a serialized TrackableObjectGraph (a length-delimited field that
    runs past the end) raise DataLossError naming the file and the graph key, not the bare
    CheckpointError they used to."""
    prefix = corrupt_graph_checkpoint(tmp_path / "m", b"\x0a\xff\x01")
    assert_corrupt_graph(prefix, "not a serialized TrackableObjectGraph")


def test_object_graph_that_is_not_a_scalar_string_is_data_loss(tmp_path):
    """An object-graph entry holding a numeric tensor is reported with what was expected and
    what was found, instead of its raw bytes being parsed as a protobuf."""
    prefix = corrupt_graph_checkpoint(tmp_path / "m", np.arange(3, dtype=np.float32))
    assert_corrupt_graph(prefix, "expected the object graph as a scalar string", "float32 [3]")


def test_object_graph_without_nodes_is_data_loss(tmp_path):
    """A graph with no nodes at all (not even the root) raises DataLossError instead of an
    IndexError from ``nodes[0]``."""
    prefix = corrupt_graph_checkpoint(tmp_path / "m", build_graph([]))
    assert_corrupt_graph(prefix, "no nodes")


@pytest.mark.parametrize("bad_id", [2, 99, -1])
def test_child_node_id_out_of_range_is_data_loss(tmp_path, bad_id):
    """A child reference to a node the graph does not have raises DataLossError naming the
    node, the child and the ids that would be valid, in restore and in load_tree (which used
    to skip such children silently)."""
    graph = build_graph([({"v": 1, "ghost": bad_id}, {}), ({}, {})])
    prefix = corrupt_graph_checkpoint(tmp_path / "m", graph)
    assert_corrupt_graph(
        prefix, "node 0", "child 'ghost'", f"node {bad_id}", "expected a node id from 0 to 1"
    )


@pytest.mark.parametrize("field", ["original_variable_node_id", "slot_variable_node_id"])
def test_slot_variable_node_id_out_of_range_is_data_loss(tmp_path, field):
    """An optimizer slot variable whose variable or slot node id is out of range raises
    DataLossError naming the slot and the bad field (load_tree used to raise IndexError or
    drop the slot)."""
    proto = trackable_object_graph_pb2.TrackableObjectGraph()
    root = proto.nodes.add()
    for name, node_id in (("v", 1), ("optimizer", 2)):
        ref = root.children.add()
        ref.node_id, ref.local_name = node_id, name
    variable = proto.nodes.add()
    attribute = variable.attributes.add()
    attribute.name, attribute.checkpoint_key = "VARIABLE_VALUE", "v/.ATTRIBUTES/VARIABLE_VALUE"
    optimizer = proto.nodes.add()
    slot = optimizer.slot_variables.add()
    slot.original_variable_node_id, slot.slot_variable_node_id = 1, 1
    slot.slot_name = "m"
    setattr(slot, field, 7)
    prefix = corrupt_graph_checkpoint(
        tmp_path / "m",
        proto.SerializeToString(),
        {"v/.ATTRIBUTES/VARIABLE_VALUE": np.ones(2)},
    )
    assert_corrupt_graph(prefix, "node 2", "slot variable 'm'", f"{field} 7", "0 to 2")


def test_attribute_pointing_to_a_missing_key_is_data_loss(tmp_path):
    """An attribute whose checkpoint key is not in the checkpoint is a corrupt graph:
    DataLossError naming the node, the attribute and the missing key (it used to surface as
    TensorNotFoundError for the key, as if the caller had asked for it)."""
    key = "v/.ATTRIBUTES/VARIABLE_VALUE"
    graph = build_graph([({"v": 1}, {}), ({}, {"VARIABLE_VALUE": key})])
    prefix = corrupt_graph_checkpoint(tmp_path / "m", graph)
    assert_corrupt_graph(prefix, "node 1", "attribute 'VARIABLE_VALUE'", repr(key))
    with pytest.raises(tfckpt.DataLossError) as excinfo:
        tfckpt.Checkpoint(v=np.zeros(2)).read(prefix)
    assert not isinstance(excinfo.value, KeyError)


def _corpus_manifest_entry(path):
    manifest = CORPUS / "MANIFEST.json"
    if not manifest.is_file():
        pytest.skip("shared corpus not available")
    for entry in json.loads(manifest.read_text(encoding="utf-8")):
        if entry["path"] == path:
            return entry
    raise AssertionError(f"{path} not in the corpus manifest")


def _check_against_manifest(tree, entry):
    """Every value in the tree is what TensorFlow read for its key."""
    tensors = entry["tensors"]
    assert set(tree.key_to_path) == set(tensors) - {GRAPH_KEY}
    for key, path in tree.key_to_path.items():
        value = at(tree, path)
        info = tensors[key]
        assert list(np.shape(value)) == info["shape"], key
        assert value_digest(value, info["dtype"]) == info["sha256"], key


def test_load_tree_keras_save_weights_checkpoint_from_corpus():
    entry = _corpus_manifest_entry(IRIS)
    prefix = CORPUS / IRIS
    tree = tfckpt.load_tree(prefix)
    shapes = [(4, 8), (8, 8), (8, 8), (8, 3)]
    for i, (rows, cols) in enumerate(shapes):
        layer = tree[f"layer_with_weights-{i}"]
        assert layer["kernel"].shape == (rows, cols) and layer["kernel"].dtype == np.float32
        assert layer["bias"].shape == (cols,)
        assert tree.key_to_path[f"layer_with_weights-{i}/kernel/.ATTRIBUTES/VARIABLE_VALUE"] == (
            f"layer_with_weights-{i}",
            "kernel",
        )
        # layer-(i+5) is the same Keras layer object.
        assert np.array_equal(tree[f"layer-{i + 5}"]["kernel"], layer["kernel"])
        for variable in ("kernel", "bias"):
            slots = tree["optimizer"][".OPTIMIZER_SLOT"][f"layer_with_weights-{i}/{variable}"]
            assert sorted(slots) == ["m", "v"]
            for slot in ("m", "v"):
                assert slots[slot].shape == layer[variable].shape
                key = (
                    f"layer_with_weights-{i}/{variable}/.OPTIMIZER_SLOT/optimizer/{slot}/"
                    ".ATTRIBUTES/VARIABLE_VALUE"
                )
                assert tree.key_to_path[key] == (
                    "optimizer",
                    ".OPTIMIZER_SLOT",
                    f"layer_with_weights-{i}/{variable}",
                    slot,
                )
    assert tree["optimizer"]["iter"].dtype == np.int64
    for name in ("beta_1", "beta_2", "decay", "learning_rate"):
        assert tree["optimizer"][name].dtype == np.float32
    _check_against_manifest(tree, entry)
    with tfckpt.load_checkpoint(prefix) as reader:
        assert_tree_mappings(tree, reader)


def test_load_tree_saved_model_from_corpus():
    entry = _corpus_manifest_entry(f"{LSTM_SAVED_MODEL}/variables/variables")
    directory = CORPUS / LSTM_SAVED_MODEL
    tree = tfckpt.load_tree(directory)
    assert [tree["variables"][str(i)].shape for i in range(5)] == [
        (3, 128),
        (32, 128),
        (128,),
        (32, 1),
        (1,),
    ]
    cell = tree["layer_with_weights-0"]["cell"]
    assert np.array_equal(cell["kernel"], tree["variables"]["0"])
    assert np.array_equal(cell["recurrent_kernel"], tree["variables"]["1"])
    assert np.array_equal(tree["layer_with_weights-1"]["kernel"], tree["variables"]["3"])
    assert tree.key_to_path["layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE"] == (
        "layer_with_weights-1",
        "kernel",
    )
    optimizer = tree["optimizer"]
    assert optimizer["_iterations"].dtype == np.int64
    assert [optimizer["_momentums"][str(i)].shape for i in range(5)] == [
        (3, 128),
        (32, 128),
        (128,),
        (32, 1),
        (1,),
    ]
    assert np.array_equal(optimizer["_velocities"]["4"], optimizer["_variables"]["10"])
    _check_against_manifest(tree, entry)
    with tfckpt.load_checkpoint(directory) as reader:
        assert_tree_mappings(tree, reader)


# -- fixtures/objects (written by TensorFlow) ------------------------------------------------


def _fixture_params():
    return [pytest.param(prefix, id=prefix) for prefix in EXPECTED.get("checkpoints", {})]


def test_object_fixtures_are_present_and_small():
    # Not skipped when missing: tools/make_fixtures.py rewrites fixtures/ from scratch, which
    # deletes fixtures/objects/ (then rerun tools/make_object_fixtures.py).
    assert EXPECTED, f"{EXPECTED_PATH} is missing: run tools/make_object_fixtures.py"
    assert set(EXPECTED["checkpoints"]) >= {
        "tfagents_numpy_state/ckpt-1",
        "nested/ckpt-1",
        "keras_checkpoint/ckpt-1",
        "manager/ckpt-2",
        "manager/ckpt-3",
    }
    total = sum(p.stat().st_size for p in OBJECTS.rglob("*") if p.is_file())
    assert total < 300_000
    assert "keras_save_weights" in EXPECTED["skipped"] or (OBJECTS / "keras_save_weights").is_dir()


@needs_fixtures
@pytest.mark.parametrize("prefix", _fixture_params())
def test_object_fixture_tensors_match_tensorflow(prefix):
    info = EXPECTED["checkpoints"][prefix]
    with tfckpt.load_checkpoint(OBJECTS / prefix) as reader:
        dtypes = reader.get_variable_to_dtype_map()
        shapes = reader.get_variable_to_shape_map()
        assert sorted(shapes) == sorted(info["tensors"])
        for key, expected in info["tensors"].items():
            assert dtypes[key].name == expected["dtype"], key
            assert shapes[key] == expected["shape"], key
            assert value_digest(reader.get_tensor(key), expected["dtype"]) == expected["sha256"]


@needs_fixtures
@pytest.mark.parametrize("prefix", _fixture_params())
def test_load_tree_of_object_fixture(prefix):
    info = EXPECTED["checkpoints"][prefix]
    tree = tfckpt.load_tree(OBJECTS / prefix)
    with tfckpt.load_checkpoint(OBJECTS / prefix) as reader:
        assert_tree_mappings(tree, reader)
    numpy_state = {a["key"]: a for a in info.get("numpy_state", {}).values()}
    for key, path in tree.key_to_path.items():
        value = at(tree, path)
        if key in numpy_state:
            assert isinstance(value, np.ndarray), key
            want = {k: v for k, v in numpy_state[key].items() if k != "key"}
            assert describe_array(value) == want, key
        else:
            expected = info["tensors"][key]
            assert value_digest(value, expected["dtype"]) == expected["sha256"], key
    if "save_counter/.ATTRIBUTES/VARIABLE_VALUE" in info["tensors"]:
        assert tree.key_to_path["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] == ("save_counter",)


@needs_fixtures
def test_tfagents_numpy_state_fixture_restores_into_numpy_state():
    info = EXPECTED["checkpoints"]["tfagents_numpy_state/ckpt-1"]
    state = tfckpt.NumpyState()
    checkpoint = tfckpt.Checkpoint(numpy_arrays=state)
    checkpoint.restore(OBJECTS / "tfagents_numpy_state" / "ckpt-1").assert_consumed()
    assert checkpoint.save_counter == 1
    assert sorted(n for n in dir(state) if n in info["numpy_state"]) == sorted(info["numpy_state"])
    for name, expected in info["numpy_state"].items():
        value = getattr(state, name)
        want = {k: v for k, v in expected.items() if k != "key"}
        assert describe_array(value) == want, name
    assert state.fortran.flags.f_contiguous
    assert state.big_i4.dtype.str == ">i4"
    assert state.structured.dtype.names == ("id", "pos", "tag", "ok")
    assert state.numpy_scalar.shape == ()
    # Restoring the directory finds ckpt-1 through the state file.
    again = tfckpt.NumpyState()
    again.matrix = np.zeros(1)
    tfckpt.Checkpoint(numpy_arrays=again).restore(OBJECTS / "tfagents_numpy_state")
    assert again.matrix.shape == (3, 4)


def _build_from_structure(description, shared):
    kind = description["kind"]
    if kind == "variable":
        key = description["key"]
        if key not in shared:
            if description["dtype"] == "string":
                array = np.empty(description["shape"], object)
                array[...] = b""
            else:
                dtype = tfckpt.as_dtype(description["dtype"]).as_numpy_dtype
                array = np.zeros(description["shape"], dtype)
            shared[key] = array
        return shared[key]
    if kind == "dict":
        out = {k: _build_from_structure(v, shared) for k, v in description["items"].items()}
        for k in description.get("untracked", []):
            out[k] = 42
        return out
    if kind == "list":
        return [_build_from_structure(v, shared) for v in description["items"]]
    if kind == "tuple":
        return tuple(_build_from_structure(v, shared) for v in description["items"])
    if kind == "checkpoint":
        return tfckpt.Checkpoint(
            **{k: _build_from_structure(v, shared) for k, v in description["items"].items()}
        )
    raise AssertionError(kind)


@needs_fixtures
def test_nested_fixture_restores_in_place():
    info = EXPECTED["checkpoints"]["nested/ckpt-1"]
    shared: dict[str, np.ndarray] = {}
    checkpoint = _build_from_structure(info["structure"], shared)
    checkpoint.restore(OBJECTS / "nested" / "ckpt-1").assert_consumed()
    assert checkpoint.save_counter == 1
    for key, array in shared.items():
        expected = info["tensors"][key]
        assert array.dtype == tfckpt.as_dtype(expected["dtype"]).as_numpy_dtype or (
            expected["dtype"] == "string"
        )
        assert value_digest(array, expected["dtype"]) == expected["sha256"], key
    # The variable TensorFlow shared between params/shared and layers/4 is one array here too.
    assert checkpoint.params["shared"] is checkpoint.layers[4]
    assert checkpoint.params["shared"].tolist() == [1.0, 2.0, 3.0]
    assert checkpoint.sub.names.tolist() == [b"alpha", b"", b"\x00\xff"]
    tree = tfckpt.load_tree(OBJECTS / "nested" / "ckpt-1")
    assert tree["params"]["a/b"].tolist() == [7, 8]
    assert tree["params"]["x.y"] == 9
    assert tree.key_to_path["params/a.Sb/.ATTRIBUTES/VARIABLE_VALUE"] == ("params", "a/b")
    assert np.array_equal(tree["params"]["shared"], tree["layers"]["4"])
    assert tree["layers"]["3"] == {}


@needs_fixtures
def test_keras_checkpoint_fixture_tree():
    info = EXPECTED["checkpoints"]["keras_checkpoint/ckpt-1"]
    tree = tfckpt.load_tree(OBJECTS / "keras_checkpoint" / "ckpt-1")
    for weight in info["model_weights"]:
        value = at(tree, tree.key_to_path[weight["key"]])
        assert value_digest(value, "float32") == weight["sha256"], weight["name"]
        # The same weight through the model: model/<layer path>/<weight path>.
        through_model = at(tree, ["model", *weight["layer_path"], *weight["weight_path"]])
        assert value_digest(through_model, "float32") == weight["sha256"], weight["name"]
    kernels = [w for w in info["model_weights"] if w["name"].endswith("kernel")]
    assert [at(tree, tree.key_to_path[w["key"]]).shape for w in kernels] == [(3, 4), (4, 2)]
    for variable in info["optimizer_variables"]:
        assert tree.key_to_path[variable["key"]] == tuple(variable["path"])
        value = at(tree, variable["path"])
        dtype = info["tensors"][variable["key"]]["dtype"]
        assert value_digest(value, dtype) == variable["sha256"], variable["name"]
    assert tree["optimizer"]["_iterations"] == 1


@needs_fixtures
def test_optimizer_slots_fixture_tree():
    info = EXPECTED["checkpoints"]["optimizer_slots/ckpt-1"]
    tree = tfckpt.load_tree(OBJECTS / "optimizer_slots" / "ckpt-1")
    assert len(info["slots"]) == 4
    for slot in info["slots"]:
        where = ("optimizer", ".OPTIMIZER_SLOT", slot["variable"], slot["slot"])
        assert tree.key_to_path[slot["key"]] == where
        assert tree.path_to_key[where] == slot["key"]
        value = at(tree, where)
        assert value_digest(value, "float32") == slot["sha256"]
        variable = at(tree, tree.key_to_path[slot["variable_key"]])
        assert value.shape == variable.shape


@needs_fixtures
def test_manager_fixture_state_and_continuation(tmp_path, clock):
    info = EXPECTED["manager"]
    directory = tmp_path / "manager"
    shutil.copytree(OBJECTS / "manager", directory)
    assert files_in(directory) == info["files"]
    from tfckpt.checkpoint_state import read_state

    state = read_state(directory)
    assert state.model_checkpoint_path == os.path.join(directory, info["latest_checkpoint"])
    assert state.all_model_checkpoint_paths == [
        os.path.join(directory, p) for p in info["state"]["all_model_checkpoint_paths"]
    ]
    assert state.all_model_checkpoint_timestamps == info["state"]["all_model_checkpoint_timestamps"]
    assert state.last_preserved_timestamp == info["state"]["last_preserved_timestamp"]

    clock.now = info["state"]["all_model_checkpoint_timestamps"][-1] + 60.0
    step, weights = np.zeros((), np.int64), np.zeros(3, np.float32)
    checkpoint = tfckpt.Checkpoint(step=step, weights=weights)
    manager = tfckpt.CheckpointManager(checkpoint, directory, max_to_keep=info["max_to_keep"])
    assert manager.latest_checkpoint == os.path.join(directory, info["latest_checkpoint"])
    assert manager.checkpoints == [os.path.join(directory, p) for p in info["checkpoints"]]
    assert manager.restore_or_initialize() == manager.latest_checkpoint
    latest = info["values"][info["latest_checkpoint"]]
    assert step == latest["step"] and weights.tolist() == latest["weights"]
    assert checkpoint.save_counter == 3
    assert manager.save() == os.path.join(directory, "ckpt-4")
    assert files_in(directory) == [
        "checkpoint",
        "ckpt-3.data-00000-of-00001",
        "ckpt-3.index",
        "ckpt-4.data-00000-of-00001",
        "ckpt-4.index",
    ]
    assert state_file(directory) == (
        'model_checkpoint_path: "ckpt-4"\n'
        'all_model_checkpoint_paths: "ckpt-3"\n'
        'all_model_checkpoint_paths: "ckpt-4"\n'
        f"all_model_checkpoint_timestamps: {info['state']['all_model_checkpoint_timestamps'][-1]}\n"
        f"all_model_checkpoint_timestamps: {clock.now}\n"
        f"last_preserved_timestamp: {info['state']['last_preserved_timestamp']}\n"
    )


@needs_fixtures
def test_manager_fixture_state_file_text_is_what_tfckpt_writes(tmp_path):
    """tfckpt formats a state file exactly as TensorFlow wrote the fixture's."""
    from tfckpt.checkpoint_state import format_state

    state = EXPECTED["manager"]["state"]
    text = format_state(
        state["model_checkpoint_path"],
        state["all_model_checkpoint_paths"],
        state["all_model_checkpoint_timestamps"],
        state["last_preserved_timestamp"],
    )
    assert text == state["text"] == state_file(OBJECTS / "manager")


# -- zero-copy NumpyState restore -------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
        np.zeros((0, 5), np.float64),
        np.array(7, np.int64),
        np.array([1 + 2j], np.complex64),
        np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
    ],
    ids=["c-order", "fortran", "empty", "0-d", "complex", "structured"],
)
def test_deserialize_array_from_a_view_matches_np_load(array):
    from tfckpt.objects.numpy_state import deserialize_array

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    data = buffer.getvalue()
    got = deserialize_array(memoryview(data))
    want = np.load(io.BytesIO(data), allow_pickle=False)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.flags.writeable
    np.testing.assert_array_equal(got, want)
    assert got.flags.f_contiguous == want.flags.f_contiguous


def test_deserialize_array_version_2_header_and_corrupt_bytes():
    from numpy.lib import format as npy_format

    from tfckpt.objects.numpy_state import deserialize_array

    array = np.arange(10, dtype=np.uint8)
    buffer = io.BytesIO()
    npy_format.write_array(buffer, array, version=(2, 0))
    data = buffer.getvalue()
    np.testing.assert_array_equal(deserialize_array(data), array)
    with pytest.raises(tfckpt.DataLossError, match="tensor 'x'"):
        deserialize_array(data[:-3], "x")  # truncated data
    with pytest.raises(tfckpt.DataLossError, match="without pickle"):
        deserialize_array(b"\x80\x04not npy", "x")
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(tfckpt.DataLossError, match="without pickle"):
        deserialize_array(pickled.getvalue(), "x")


def test_get_bytes_view_is_a_checked_zero_copy_view(tmp_path):
    prefix = tfckpt.save_tensors(tmp_path / "m", {"blob": b"x" * 1000, "w": np.zeros(3)})
    with tfckpt.load_checkpoint(prefix) as reader:
        view = reader.get_bytes_view("blob")
        assert isinstance(view, memoryview) and view.readonly and bytes(view) == b"x" * 1000
        with pytest.raises(tfckpt.InvalidArgumentError, match="'w'"):
            reader.get_bytes_view("w")
        with pytest.raises(tfckpt.TensorNotFoundError):
            reader.get_bytes_view("missing")
    data = next(tmp_path.glob("m.data-*"))
    raw = bytearray(data.read_bytes())
    raw[raw.index(b"x" * 1000) + 10] ^= 1
    data.write_bytes(bytes(raw))
    with (
        tfckpt.load_checkpoint(prefix) as reader,
        pytest.raises(tfckpt.DataLossError, match="blob"),
    ):
        reader.get_bytes_view("blob")


def test_numpy_state_restore_is_independent_of_the_file(tmp_path):
    state = tfckpt.NumpyState()
    state.x = np.arange(1000, dtype=np.float32)
    path = tfckpt.Checkpoint(state=state).write(str(tmp_path / "ckpt"))
    restored = tfckpt.NumpyState()
    tfckpt.Checkpoint(state=restored).read(path).assert_consumed()
    for f in tmp_path.glob("ckpt*"):
        f.unlink()
    restored.x[0] = 5  # writable, owned copy: the files are gone and nothing breaks
    np.testing.assert_array_equal(restored.x[1:], state.x[1:])


# -- found by the fuzzer (tests/fuzz) ---------------------------------------------------------


def npy_with_header(header, payload=b"", version=1) -> bytes:
    """``.npy`` bytes with any header (a dict, or its text) and any payload after it."""
    text = header if isinstance(header, str) else repr(header)
    text += " " * ((64 - (len(text) + 11) % 64) % 64) + "\n"
    encoded = text.encode("utf-8" if version == 3 else "latin1")
    length = len(encoded).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes((version, 0)) + length + encoded + payload


def npy_dict(shape, descr="<i4", fortran_order=False) -> dict:
    return {"descr": descr, "fortran_order": fortran_order, "shape": shape}


FOUR_INT32 = np.arange(4, dtype=np.int32).tobytes()


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(npy_with_header(npy_dict((-1,)), FOUR_INT32), id="shape_minus_1"),
        pytest.param(npy_with_header(npy_dict((-4,)), FOUR_INT32), id="shape_minus_4"),
        pytest.param(npy_with_header(npy_dict((2, -2))), id="shape_2_minus_2"),
        pytest.param(npy_with_header(npy_dict((-2, -2)), FOUR_INT32 * 4), id="two_negative"),
        pytest.param(npy_with_header(npy_dict((10**13,)), FOUR_INT32), id="40_TB_claimed"),
        pytest.param(npy_with_header(npy_dict((2**32, 2**32, 16))), id="overflowing"),
        pytest.param(npy_with_header(npy_dict((0, 2**62, 2**62))), id="zero_beside_huge"),
        pytest.param(npy_with_header(npy_dict((1,) * 70), FOUR_INT32), id="70_dims"),
        pytest.param(npy_with_header(npy_dict((1.5,)), FOUR_INT32), id="float_dim"),
        pytest.param(npy_with_header(npy_dict((1,), [("a", "<f8", (10**9,))])), id="subarray"),
        pytest.param(npy_with_header(npy_dict((1,), [("a", "|O")]), bytes(8)), id="object_field"),
        pytest.param(
            npy_with_header(npy_dict((4,), fortran_order="yes"), FOUR_INT32),
            id="fortran_not_bool",
        ),
        pytest.param(npy_with_header({**npy_dict((4,)), "x": 1}, FOUR_INT32), id="extra_key"),
        pytest.param(npy_with_header("[1, 2]", FOUR_INT32), id="header_is_a_list"),
        pytest.param(npy_with_header("__import__('os').getcwd()"), id="header_is_a_call"),
        pytest.param(b"\x93NUMPY\x01\x00\xff\x7f{'descr'", id="header_longer_than_data"),
        pytest.param(b"\x93NUMPY\x07\x00" + bytes(8), id="version_7"),
    ],
)
def test_hostile_npy_headers_are_data_loss_before_allocating(tmp_path, blob):
    """A py_state whose .npy header has negative, non-integer, huge or overflowing dims,
    too many dims, a dtype NumPy cannot hold or holding objects, or is not NumPy's dict, is
    a DataLossError naming the key on restore, checked before anything is allocated.  A
    shape of (-1,) used to restore as a 4-element array (silently wrong), (2, -2) as an
    empty one; huge shapes went through numpy.load, which tried to allocate 36 TiB first;
    others escaped as ValueError."""
    path = numpy_state_checkpoint(tmp_path / "bad", "py_state", {"x": blob})
    with pytest.raises(tfckpt.DataLossError) as excinfo:
        tfckpt.Checkpoint(numpy_arrays=tfckpt.NumpyState()).restore(path)
    assert excinfo.value.tensor == "numpy_arrays/x/.ATTRIBUTES/py_state"
    assert excinfo.value.__context__ is None or not isinstance(
        excinfo.value.__context__, MemoryError
    )
    tree = tfckpt.load_tree(path)  # as documented: what is not a NumPy array stays bytes
    assert tree["numpy_arrays"]["x"] == blob


def test_an_npz_archive_in_py_state_is_data_loss(tmp_path):
    """An .npz archive (a zip file) used to come back from numpy.load as an NpzFile object
    in place of the attribute's array."""
    archive = io.BytesIO()
    np.savez(archive, x=np.arange(3))
    path = numpy_state_checkpoint(tmp_path / "npz", "py_state", {"x": archive.getvalue()})
    with pytest.raises(tfckpt.DataLossError, match="magic"):
        tfckpt.Checkpoint(numpy_arrays=tfckpt.NumpyState()).restore(path)


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        pytest.param(npy_with_header(npy_dict((2, 2), fortran_order=True), FOUR_INT32),
                     np.asfortranarray(np.array([[0, 2], [1, 3]], np.int32)), id="fortran"),
        pytest.param(npy_with_header(npy_dict((4,)), FOUR_INT32, version=3),
                     np.arange(4, dtype=np.int32), id="version_3"),
        pytest.param(npy_bytes(np.arange(4, dtype=np.int32)) + b"trailing",
                     np.arange(4, dtype=np.int32), id="trailing_bytes"),
    ],
)  # fmt: skip
def test_valid_npy_variants_restore_as_numpy_load_reads_them(tmp_path, blob, expected):
    """The strict header check still reads what numpy.load(allow_pickle=False) reads:
    Fortran order, the 3.0 (UTF-8) header, bytes after the array."""
    np.testing.assert_array_equal(np.load(io.BytesIO(blob), allow_pickle=False), expected)
    path = numpy_state_checkpoint(tmp_path / "ok", "py_state", {"x": blob})
    state = tfckpt.NumpyState()
    tfckpt.Checkpoint(numpy_arrays=state).read(path)
    assert_same_array(state.x, expected, "x")
    assert state.x.flags.f_contiguous == expected.flags.f_contiguous


class _MakesADirectory:
    """Unpickling this would create the directory named by $TFCKPT_TEST_EXECUTED."""

    def __reduce__(self):
        return (os.makedirs, (_ExpandsTheVariable(),))


class _ExpandsTheVariable:
    def __reduce__(self):
        return (os.path.expandvars, ("$TFCKPT_TEST_EXECUTED",))


@pytest.mark.parametrize("kind", ["pickle", "object_array"])
def test_a_py_state_pickle_that_would_create_a_directory_executes_nothing(
    tmp_path, monkeypatch, kind
):
    """A py_state holding a pickle (or an .npy of an object array, which is a pickle) whose
    unpickling would create a directory: restore, read, load_tree, get_tensor and
    get_bytes_view give a DataLossError or the raw bytes, and the directory never appears
    (the trap itself works: pickle.loads creates it)."""
    import pickle

    marker = tmp_path / "executed"
    monkeypatch.setenv("TFCKPT_TEST_EXECUTED", str(marker))
    if kind == "pickle":
        blob = pickle.dumps(_MakesADirectory(), protocol=2)
    else:
        blob = npy_bytes(np.array([_MakesADirectory(), 1], dtype=object), allow_pickle=True)
    path = numpy_state_checkpoint(tmp_path / "evil", "py_state", {"x": blob})
    for attempt in (
        lambda: tfckpt.Checkpoint(numpy_arrays=tfckpt.NumpyState()).restore(path),
        lambda: tfckpt.Checkpoint(numpy_arrays=tfckpt.NumpyState()).read(path),
    ):
        with pytest.raises(tfckpt.DataLossError):
            attempt()
    assert tfckpt.load_tree(path)["numpy_arrays"]["x"] == blob
    with tfckpt.load_checkpoint(path) as reader:
        assert reader.get_tensor("numpy_arrays/x/.ATTRIBUTES/py_state") == blob
        assert bytes(reader.get_bytes_view("numpy_arrays/x/.ATTRIBUTES/py_state")) == blob
    assert not marker.exists()
    if kind == "pickle":
        pickle.loads(blob)  # the trap works
    else:
        np.load(io.BytesIO(blob), allow_pickle=True)
    assert marker.is_dir()


def chain_graph(depth, key_of) -> bytes:
    """A graph whose root starts a chain of ``depth`` nodes named "c"; ``key_of(i)`` gives
    node i's VARIABLE_VALUE key (or None)."""
    proto = trackable_object_graph_pb2.TrackableObjectGraph()
    proto.nodes.add()
    parent = proto.nodes[0]
    for i in range(1, depth + 1):
        ref = parent.children.add()
        ref.node_id, ref.local_name = i, "c"
        parent = proto.nodes.add()
        key = key_of(i)
        if key is not None:
            attribute = parent.attributes.add()
            attribute.name, attribute.checkpoint_key = "VARIABLE_VALUE", key
    return proto.SerializeToString()


def test_load_tree_of_a_40000_deep_chain_is_linear(tmp_path):
    """A 420 KB graph of a 40,000-deep chain (the value at its end) took 28 s and 7.5 GB
    (every node's path built from its parent's); now linear: the value sits 40,000 levels
    down, under a small memory peak."""
    import tracemalloc

    graph = chain_graph(40000, lambda i: "v" if i == 40000 else None)
    prefix = corrupt_graph_checkpoint(tmp_path / "m", graph, {"v": np.arange(3.0)})
    tracemalloc.start()
    try:
        tree = tfckpt.load_tree(prefix)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    node = tree
    for _ in range(39999):
        node = node["c"]
    assert node["c"].tolist() == [0.0, 1.0, 2.0]
    assert tree.key_to_path["v"] == ("c",) * 40000
    assert peak < 200 << 20, peak


def test_load_tree_refuses_paths_longer_than_the_graph_holds(tmp_path):
    """A chain whose every node names the same one-letter key would need paths adding up
    to millions of names from a graph of a few hundred KB (quadratic memory): refused as
    DataLossError.  A chain whose keys spell their paths, as TensorFlow writes them, reads."""
    hostile = chain_graph(3000, lambda i: "v")
    prefix = corrupt_graph_checkpoint(tmp_path / "bad", hostile, {"v": np.arange(3.0)})
    with pytest.raises(tfckpt.DataLossError, match="paths add up to more names") as excinfo:
        tfckpt.load_tree(prefix)
    assert excinfo.value.tensor == GRAPH_KEY

    def key(i):
        return "c/" * i + ".ATTRIBUTES/VARIABLE_VALUE"

    honest = chain_graph(300, key)
    values = {key(i): np.float32(i) for i in range(1, 301)}
    tree = tfckpt.load_tree(corrupt_graph_checkpoint(tmp_path / "good", honest, values))
    assert tree.key_to_path[key(3)] == ("c", "c", "c", ".ATTRIBUTES", "VARIABLE_VALUE")
    node = tree
    for _ in range(299):
        node = node["c"]
    assert node[".ATTRIBUTES"]["VARIABLE_VALUE"] == 299 and node["c"] == 300


def test_load_tree_reads_a_key_named_by_many_nodes_once(tmp_path):
    """1000 nodes naming one 1 MB tensor: load_tree read it once per node, 1 GB of copies
    from a 1 MB file; now they share one value."""
    import tracemalloc

    graph = build_graph([({f"n{i}": i + 1 for i in range(1000)}, {}),
                         *[({}, {"VARIABLE_VALUE": "big"})] * 1000])  # fmt: skip
    prefix = corrupt_graph_checkpoint(tmp_path / "m", graph, {"big": np.zeros(1 << 17)})
    tracemalloc.start()
    try:
        tree = tfckpt.load_tree(prefix)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert tree["n0"] is tree["n999"] and tree["n0"].shape == (1 << 17,)
    assert peak < 50 << 20, peak


def test_assert_consumed_on_a_40000_deep_graph_is_linear(tmp_path):
    """Naming an unresolved node built every node's dotted path (40,000 deep: 800 million
    characters) with a list used as a queue; now only the named node's path is built."""
    import tracemalloc

    graph = chain_graph(40000, lambda i: "v" if i == 40000 else None)
    prefix = corrupt_graph_checkpoint(tmp_path / "m", graph, {"v": np.arange(3.0)})
    status = tfckpt.Checkpoint().read(prefix)
    tracemalloc.start()
    try:
        with pytest.raises(AssertionError, match="Unresolved object") as excinfo:
            status.assert_consumed()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ".".join(["c"] * 40000) in str(excinfo.value)
    assert peak < 100 << 20, peak


def test_a_giant_state_file_is_refused_without_reading_it(tmp_path):
    """A 64 GiB (sparse) ``checkpoint`` state file was read whole (MemoryError, or 30 s and
    3 GB for a 20 MB one): latest_checkpoint, load_checkpoint(directory) and
    CheckpointManager now refuse a state file over 1 MiB with a DataLossError naming it."""
    import tracemalloc

    prefix = tfckpt.Checkpoint(v=np.zeros(2)).save(str(tmp_path / "ckpt"))
    state = tmp_path / "checkpoint"
    with open(state, "ab") as f:
        f.truncate(64 << 30)
    attempts = [
        lambda: tfckpt.latest_checkpoint(tmp_path),
        lambda: tfckpt.load_checkpoint(tmp_path),
        lambda: tfckpt.CheckpointManager(tfckpt.Checkpoint(), tmp_path),
    ]
    tracemalloc.start()
    try:
        for attempt in attempts:
            with pytest.raises(tfckpt.DataLossError, match="larger than") as excinfo:
                attempt()
            assert excinfo.value.path == str(state)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak
    assert tfckpt.load_checkpoint(prefix).keys()  # the checkpoint itself still reads


@pytest.mark.parametrize("where", ["model_checkpoint_path", "all_model_checkpoint_paths"])
def test_a_state_file_path_with_a_nul_byte_is_data_loss(tmp_path, where):
    """A NUL byte in a state file's path (a raw byte text_format accepts, or ``\\000``)
    escaped from glob as ValueError: embedded null byte (found by the fuzzer); no file
    system has such a path, so the state file is a DataLossError naming it."""
    tfckpt.Checkpoint(v=np.zeros(2)).save(str(tmp_path / "ckpt"))
    state = tmp_path / "checkpoint"
    bad = f'"{tmp_path}/sub\x00dir/ckpt-1"'
    lines = {"model_checkpoint_path": '"ckpt-1"', "all_model_checkpoint_paths": '"ckpt-1"'}
    lines[where] = bad
    state.write_text("".join(f"{k}: {v}\n" for k, v in lines.items()))
    for attempt in (
        lambda: tfckpt.latest_checkpoint(tmp_path),
        lambda: tfckpt.load_checkpoint(tmp_path),
        lambda: tfckpt.CheckpointManager(tfckpt.Checkpoint(), tmp_path),
    ):
        with pytest.raises(tfckpt.DataLossError, match="NUL") as excinfo:
            attempt()
        assert excinfo.value.path == str(state)
