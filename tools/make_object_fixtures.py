#!/usr/bin/env python3
"""Write the object-based checkpoint fixtures in fixtures/objects/ with real TensorFlow.

Run with a Python that has TensorFlow 2.21 (and Keras 3) installed, e.g.

    /tmp/tfenv/bin/python tools/make_object_fixtures.py           # rewrite fixtures/objects/
    /tmp/tfenv/bin/python tools/make_object_fixtures.py --check   # regenerate into a temp
                                                                  # dir and compare

Fixtures (every checkpoint is written by TensorFlow itself, in one process, in this order):

* ``tfagents_numpy_state/ckpt-1``: ``tf.train.Checkpoint(numpy_arrays=NumpyState()).save()``
  with the TF-Agents NumpyState (tf_agents/utils/numpy_storage.py: each array attribute is a
  ``tf.train.experimental.PythonState`` whose ``py_state`` is ``numpy.save`` bytes written
  with ``allow_pickle=False``); arrays of many dtypes incl. 0-d, Fortran-ordered, big-endian,
  structured, unicode, bytes, datetime64 and a NumPy scalar.
* ``nested/ckpt-1``: ``tf.train.Checkpoint`` with dicts (keys with ``/`` and ``.``), lists,
  tuples of ``tf.Variable`` (several dtypes incl. bfloat16 and string), an empty list, a
  variable shared by two paths and a nested ``tf.train.Checkpoint``.
* ``keras_checkpoint/ckpt-1``: ``tf.train.Checkpoint(model=<Keras 3 Sequential>,
  optimizer=<Keras 3 Adam>)`` after one training step.
* ``optimizer_slots/ckpt-1``: a ``tf.Module`` and ``tf.compat.v1.train.AdamOptimizer``
  after one step: slot variables in the object graph (``.OPTIMIZER_SLOT`` keys).
* ``manager/``: ``tf.train.CheckpointManager(max_to_keep=2)`` after 3 saves (``ckpt-1``
  deleted), with its state file; ``time.time`` is replaced by a fixed clock so the
  timestamps are reproducible.
* ``keras_save_weights/`` is NOT written: Keras 3 ``Model.save_weights`` only writes
  ``.weights.h5`` files (the refusal is recorded under ``skipped`` in EXPECTED.json).

``EXPECTED.json`` records TensorFlow's view of each checkpoint: every key's dtype, shape and
sha256 (``tests/manifest.py`` ``value_digest`` over what ``tf.train.load_checkpoint``
returns), the state files, and per fixture what the Python objects were (the NumpyState
arrays as TensorFlow's NumpyState restored them, the nested structure, which key holds
which Keras weight / optimizer variable / slot, and the object paths TF's
``ObjectGraphView`` reports).  Array digests: ``array_digest`` below.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(REPO, "fixtures", "objects")

ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",  # bit-reproducible CPU math (Keras training step)
    "CUDA_VISIBLE_DEVICES": "",
    "PYTHONHASHSEED": "0",
    "TF_DETERMINISTIC_OPS": "1",
}

CLOCK_START = 1_700_000_000.0  # the fake time.time() of the manager fixture
CLOCK_STEP = 10.0


def value_digest(value, dtype_name):
    """tests/manifest.py ``value_digest`` (imported from there, so both always agree)."""
    sys.path.insert(0, REPO)
    try:
        from tests.manifest import value_digest as digest
    finally:
        sys.path.remove(REPO)
    return digest(value, dtype_name)


def array_digest(array):
    """SHA-256 of a decoded NumPy array's element bytes in C order, in its own byte order.

    ``numpy.ascontiguousarray(a).tobytes()``: a Fortran-ordered array hashes like its C-order
    copy; a big-endian array hashes its big-endian bytes (its dtype is recorded separately).
    """
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def describe_array(array):
    """What the tests compare for one NumPy array restored from a NumpyState attribute."""
    import numpy as np

    return {
        "descr": json.loads(json.dumps(np.lib.format.dtype_to_descr(array.dtype))),
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "fortran_order": bool(
            array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous
        ),
        "sha256": array_digest(array),
    }


# -- TensorFlow side ------------------------------------------------------------------------


def tf_numpy_state_classes(tf):
    """TF-Agents' NumpyState (tf_agents/utils/numpy_storage.py), for TF 2.21's trackable API."""
    import numpy as np
    from tensorflow.python.trackable import base

    class _NumpyWrapper(tf.train.experimental.PythonState):
        def __init__(self, array):
            self.array = array

        def serialize(self):
            buffer = io.BytesIO()
            np.save(buffer, self.array, allow_pickle=False)
            return buffer.getvalue()

        def deserialize(self, string_value):
            self.array = np.load(io.BytesIO(string_value), allow_pickle=False)

    class NumpyState(base.Trackable):
        def _lookup_dependency(self, name, cached_dependencies=None):
            value = super()._lookup_dependency(name, cached_dependencies)
            if value is None:
                value = _NumpyWrapper(np.array([]))
                self._maybe_initialize_trackable()
                self._self_unconditional_checkpoint_dependencies.append(
                    base.TrackableReference(name=name, ref=value)
                )
                self._self_unconditional_dependency_names[name] = value
                super().__setattr__(name, value)
            return value

        def __getattribute__(self, name):
            value = super().__getattribute__(name)
            if isinstance(value, _NumpyWrapper):
                return value.array
            return value

        def __setattr__(self, name, value):
            if isinstance(value, (np.ndarray, np.generic)):
                try:
                    existing = super().__getattribute__(name)
                    existing.array = value
                    return
                except AttributeError:
                    value = _NumpyWrapper(value)
                    self._track_trackable(value, name=name, overwrite=True)
            elif (
                name not in ("_setattr_tracking", "_update_uid")
                and not name.startswith("_self_")
                and getattr(self, "_setattr_tracking", True)
            ):
                raise NotImplementedError(f"{name}: NumpyState holds only NumPy arrays")
            super().__setattr__(name, value)

    return NumpyState, _NumpyWrapper


def numpy_state_arrays():
    """The arrays of the tfagents_numpy_state fixture (name -> value)."""
    import numpy as np

    structured = np.dtype([("id", "<i4"), ("pos", "<f8", (2,)), ("tag", "S3"), ("ok", "?")])
    return {
        "matrix": np.arange(12, dtype=np.float64).reshape(3, 4) / 4.0,
        "scalar_i32": np.array(-7, dtype=np.int32),
        "numpy_scalar": np.float32(2.5),
        "flags": np.array([True, False, True]),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "big_i4": np.array([1, -2, 0x01020304], dtype=">i4"),
        "big_f8": np.array([[1.5, -0.0], [np.inf, 1e-300]], dtype=">f8"),
        "structured": np.array(
            [(1, (0.5, -1.0), b"ab", True), (2, (2.0, 3.0), b"xyz", False)], dtype=structured
        ),
        "complex": np.array([1 + 2j, -3.5j], dtype=np.complex64),
        "empty": np.zeros((0, 3), dtype=np.uint8),
        "unicode": np.array(["a", "héllo", "日本"], dtype="<U5"),
        "bytes": np.array([b"", b"a\x01", b"xyz"], dtype="S3"),
        "dates": np.array(["2024-02-29T12:00", "1969-07-20T20:17"], dtype="datetime64[m]"),
        "half": np.array([0.5, -2.0, 65504.0], dtype=np.float16),
        "int8": np.array([-128, 0, 127], dtype=np.int8),
    }


def write_tfagents_numpy_state(tf, root):
    NumpyState, _ = tf_numpy_state_classes(tf)
    state = NumpyState()
    for name, value in numpy_state_arrays().items():
        setattr(state, name, value)
    checkpoint = tf.train.Checkpoint(numpy_arrays=state)
    path = checkpoint.save(os.path.join(root, "tfagents_numpy_state", "ckpt"))
    # TensorFlow's view of the arrays: what TF-Agents' NumpyState restores (attributes are
    # created by restore()).
    fresh = NumpyState()
    tf.train.Checkpoint(numpy_arrays=fresh).restore(path).assert_consumed()
    arrays = {}
    for name in numpy_state_arrays():
        arrays[name] = describe_array(getattr(fresh, name))
        arrays[name]["key"] = f"numpy_arrays/{name}/.ATTRIBUTES/py_state"
    return path, {
        "writer": "tf.train.Checkpoint(numpy_arrays=<TF-Agents NumpyState>).save",
        "description": "TF-Agents NumpyState: one PythonState child per array, py_state = "
        "numpy.save bytes (allow_pickle=False); 0-d, NumPy scalar (saved 0-d), "
        "Fortran-ordered, big-endian, structured, unicode, bytes, datetime64, empty",
        "numpy_state": arrays,
    }


def nested_structure(tf):
    """The nested fixture's Python structure (TF side) and its JSON description."""
    import ml_dtypes
    import numpy as np

    shared = tf.Variable(np.array([1.0, 2.0, 3.0], np.float32), name="shared")
    values = {
        "params": {
            "w": tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="w"),
            "b": tf.Variable(np.array([0.5, -0.5], np.float64), name="b"),
            "a/b": tf.Variable(np.array([7, 8], np.int32), name="slash"),
            "x.y": tf.Variable(np.array(9, np.int64), name="dot"),
            "shared": shared,
            "not_tracked": 42,
        },
        "layers": [
            tf.Variable(np.array([[True, False]]), name="mask"),
            {"inner": tf.Variable(np.array([1.5, -2.25], ml_dtypes.bfloat16), name="bf16")},
            (
                tf.Variable(np.array([3, 4], np.uint8), name="t0"),
                tf.Variable(np.array([1 + 1j], np.complex64), name="t1"),
            ),
            [],
            shared,
        ],
        "sub": tf.train.Checkpoint(
            names=tf.Variable(np.array([b"alpha", b"", b"\x00\xff"], object), name="names"),
            half=tf.Variable(np.array([0.25], np.float16), name="half"),
        ),
        "step": tf.Variable(np.array(5, np.int64), name="step"),
    }
    return values


def describe_structure(value, object_names, tf):
    """JSON description of a Python structure of variables (leaves name their key)."""
    if isinstance(value, tf.Variable):
        return {
            "kind": "variable",
            "dtype": value.dtype.name,
            "shape": list(value.shape),
            "key": object_names[value] + "/.ATTRIBUTES/VARIABLE_VALUE",
        }
    if isinstance(value, tf.train.Checkpoint):
        # tf.train.Checkpoint children are the keyword arguments (tracked in sorted order).
        items = {}
        for name, child in sorted(value._trackable_children().items()):
            if name == "save_counter":
                continue
            items[name] = describe_structure(child, object_names, tf)
        return {"kind": "checkpoint", "items": items}
    if isinstance(value, dict) or type(value).__name__ == "_DictWrapper":
        return {
            "kind": "dict",
            "items": {
                k: describe_structure(v, object_names, tf)
                for k, v in value.items()
                if not isinstance(v, int)
            },
            "untracked": sorted(k for k, v in value.items() if isinstance(v, int)),
        }
    if isinstance(value, tuple) or type(value).__name__ == "_TupleWrapper":
        return {"kind": "tuple", "items": [describe_structure(v, object_names, tf) for v in value]}
    if isinstance(value, list) or type(value).__name__ == "ListWrapper":
        return {"kind": "list", "items": [describe_structure(v, object_names, tf) for v in value]}
    raise TypeError(f"unexpected {type(value)}")


def object_names_of(tf, root):
    """TensorFlow's own BFS object paths (escaped, as in checkpoint keys) from ``root``."""
    from tensorflow.python.checkpoint import graph_view, util

    _, node_paths, _, slot_variables, object_names = util.objects_ids_and_slot_variables_and_paths(
        graph_view.ObjectGraphView(root)
    )
    return node_paths, object_names, slot_variables


def local_path(node_paths, obj):
    """The (unescaped) local names leading from the view's root to ``obj``."""
    return [ref.name for ref in node_paths[obj]]


def write_nested(tf, root):
    values = nested_structure(tf)
    checkpoint = tf.train.Checkpoint(**values)
    path = checkpoint.save(os.path.join(root, "nested", "ckpt"))
    _, object_names, _ = object_names_of(tf, checkpoint)
    items = {}
    for name in sorted(values):
        tracked = getattr(checkpoint, name)
        items[name] = describe_structure(tracked, object_names, tf)
    return path, {
        "writer": "tf.train.Checkpoint(params=dict, layers=list, sub=tf.train.Checkpoint, "
        "step=Variable).save",
        "description": "dict/list/tuple wrappers of tf.Variables (float32, float64, int32, "
        "int64, bool, bfloat16, uint8, complex64, string, float16), dict keys with '/' and "
        "'.', an untracked int in a dict, an empty list, one variable shared by two paths "
        "(params/shared and layers/4), a nested tf.train.Checkpoint",
        "structure": {"kind": "checkpoint", "items": items},
    }


def write_keras_checkpoint(tf, root):
    import keras
    import numpy as np

    keras.utils.set_random_seed(1234)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, activation="relu", name="hidden"),
            keras.layers.Dense(2, name="out"),
        ],
        name="mlp",
    )
    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    model.compile(optimizer=optimizer, loss="mse")
    x = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5.0) / 4.0
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.float32)
    model.train_on_batch(x, y)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    path = checkpoint.save(os.path.join(root, "keras_checkpoint", "ckpt"))

    node_paths, object_names, _ = object_names_of(tf, checkpoint)
    model_paths, _, _ = object_names_of(tf, model)
    weights = []
    for layer in model.layers:
        layer_paths, _, _ = object_names_of(tf, layer)
        for weight in layer.weights:
            weights.append(
                {
                    "name": weight.path,
                    "key": object_names[weight] + "/.ATTRIBUTES/VARIABLE_VALUE",
                    "layer_path": local_path(model_paths, layer),
                    "weight_path": local_path(layer_paths, weight),
                    "sha256": value_digest(weight.numpy(), str(weight.dtype)),
                }
            )
    assert [w["name"] for w in weights] == [w.path for w in model.weights]
    optimizer_variables = [
        {
            "name": variable.path,
            "key": object_names[variable] + "/.ATTRIBUTES/VARIABLE_VALUE",
            "path": local_path(node_paths, variable),
            "sha256": value_digest(variable.numpy(), str(variable.dtype)),
        }
        for variable in optimizer.variables
    ]
    return path, {
        "writer": "tf.train.Checkpoint(model=keras.Sequential, optimizer=keras.optimizers.Adam)"
        ".save after model.train_on_batch",
        "description": "Keras 3 Sequential (Dense 3->4 relu, Dense 4->2) and Keras 3 Adam after "
        "one step: model weights reached first through optimizer/_trainable_variables, Adam "
        "momentums/velocities under optimizer/_variables (Keras 3 has no slot variables)",
        "model_weights": weights,
        "optimizer_variables": optimizer_variables,
    }


def write_optimizer_slots(tf, root):
    import numpy as np

    class Net(tf.Module):
        def __init__(self):
            super().__init__(name="net")
            self.w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3) / 10, name="w")
            self.b = tf.Variable(np.array([0.1, -0.2, 0.3], np.float32), name="b")

    net = Net()
    optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate=0.05)
    x = tf.constant([[1.0, -2.0], [0.5, 0.25]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum((tf.matmul(x, net.w) + net.b) ** 2)
    grads = tape.gradient(loss, [net.w, net.b])
    optimizer.apply_gradients(zip(grads, [net.w, net.b]))
    checkpoint = tf.train.Checkpoint(model=net, optimizer=optimizer)
    path = checkpoint.save(os.path.join(root, "optimizer_slots", "ckpt"))
    _, object_names, _ = object_names_of(tf, checkpoint)
    slots = []
    for attr in ("w", "b"):
        variable = getattr(net, attr)
        for slot_name in optimizer.get_slot_names():
            slot = optimizer.get_slot(variable, slot_name)
            slots.append(
                {
                    "variable": f"model/{attr}",
                    "variable_key": object_names[variable] + "/.ATTRIBUTES/VARIABLE_VALUE",
                    "slot": slot_name,
                    "key": f"{object_names[variable]}/.OPTIMIZER_SLOT/optimizer/{slot_name}"
                    "/.ATTRIBUTES/VARIABLE_VALUE",
                    "sha256": value_digest(slot.numpy(), slot.dtype.name),
                }
            )
    return path, {
        "writer": "tf.train.Checkpoint(model=tf.Module, optimizer=tf.compat.v1.train."
        "AdamOptimizer).save after apply_gradients",
        "description": "slot variables (m, v) in the object graph: keys "
        "<variable>/.OPTIMIZER_SLOT/optimizer/<slot>/.ATTRIBUTES/VARIABLE_VALUE",
        "slots": slots,
    }


@contextlib.contextmanager
def fake_clock():
    """``time.time`` returning CLOCK_START, then CLOCK_STEP seconds later at each call."""
    real = time.time
    now = [CLOCK_START - CLOCK_STEP]

    def clock():
        now[0] += CLOCK_STEP
        return now[0]

    time.time = clock
    try:
        yield
    finally:
        time.time = real


def write_manager(tf, root):
    import numpy as np

    directory = os.path.join(root, "manager")
    step = tf.Variable(np.array(0, np.int64), name="step")
    weights = tf.Variable(np.zeros(3, np.float32), name="weights")
    checkpoint = tf.train.Checkpoint(step=step, weights=weights)
    saved = []
    with fake_clock():
        manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=2)
        for i in range(3):
            step.assign(10 * (i + 1))
            weights.assign(np.full(3, i + 0.5, np.float32))
            saved.append(manager.save())
    assert [os.path.basename(p) for p in saved] == ["ckpt-1", "ckpt-2", "ckpt-3"], saved
    assert not os.path.exists(saved[0] + ".index")
    state = tf.train.get_checkpoint_state(directory)
    return saved, {
        "writer": "tf.train.CheckpointManager(tf.train.Checkpoint(step, weights), "
        "max_to_keep=2).save() x3 (fake clock)",
        "description": "manager directory: ckpt-1 deleted, ckpt-2 and ckpt-3 kept; state file "
        "with relative paths, all_model_checkpoint_timestamps, last_preserved_timestamp",
        "max_to_keep": 2,
        "latest_checkpoint": os.path.relpath(manager.latest_checkpoint, directory),
        "checkpoints": [os.path.relpath(p, directory) for p in manager.checkpoints],
        "state": read_state_file(tf, directory),
        "state_via_tf": {
            "model_checkpoint_path": os.path.relpath(state.model_checkpoint_path, directory),
            "all_model_checkpoint_paths": [
                os.path.relpath(p, directory) for p in state.all_model_checkpoint_paths
            ],
        },
        "files": sorted(os.listdir(directory)),
        "values": {
            f"ckpt-{i + 1}": {"step": 10 * (i + 1), "weights": [i + 0.5] * 3} for i in range(3)
        },
    }


def read_state_file(tf, directory):
    """The raw fields of a ``checkpoint`` state file, parsed with TensorFlow's proto."""
    from google.protobuf import text_format
    from tensorflow.python.training import checkpoint_state_pb2

    del tf
    with open(os.path.join(directory, "checkpoint"), encoding="utf-8") as f:
        text = f.read()
    proto = checkpoint_state_pb2.CheckpointState()
    text_format.Parse(text, proto)
    out = {
        "model_checkpoint_path": proto.model_checkpoint_path,
        "all_model_checkpoint_paths": list(proto.all_model_checkpoint_paths),
    }
    if proto.all_model_checkpoint_timestamps:
        out["all_model_checkpoint_timestamps"] = list(proto.all_model_checkpoint_timestamps)
    if proto.last_preserved_timestamp:
        out["last_preserved_timestamp"] = proto.last_preserved_timestamp
    out["text"] = text
    return out


def tf_view(tf, prefix):
    """TensorFlow's view of one checkpoint: key -> dtype, shape, sha256."""
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()
    tensors = {}
    for key in sorted(shapes):
        value = reader.get_tensor(key)
        tensors[key] = {
            "dtype": dtypes[key].name,
            "shape": [int(d) for d in shapes[key]],
            "sha256": value_digest(value, dtypes[key].name),
        }
    return tensors


def probe_keras_save_weights(tmp):
    """Why Keras 3 cannot write the TF-format ``save_weights`` fixture (None if it can)."""
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    target = os.path.join(tmp, "weights_probe", "weights")
    try:
        model.save_weights(target)
    except Exception as exc:  # Keras 3: ValueError, filename must end in .weights.h5
        return (
            f"keras {keras.__version__}: model.save_weights({'weights'!r}) raised "
            f"{type(exc).__name__}: {str(exc).replace(target, '<dir>/weights')}"
        )
    return None


def generate(root):
    """Writes every fixture under ``root``; returns EXPECTED (a JSON-able dict)."""
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    import keras
    import numpy as np
    import tensorflow as tf

    os.makedirs(root)
    checkpoints = {}
    for write in (
        write_tfagents_numpy_state,
        write_nested,
        write_keras_checkpoint,
        write_optimizer_slots,
    ):
        path, info = write(tf, root)
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        directory = os.path.dirname(path)
        info["tensors"] = tf_view(tf, path)
        info["state_file"] = read_state_file(tf, directory)
        checkpoints[rel] = info
    saved, manager = write_manager(tf, root)
    for path in saved[1:]:
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        checkpoints[rel] = {
            "writer": "tf.train.CheckpointManager.save",
            "description": f"{os.path.basename(path)} of the manager directory",
            "tensors": tf_view(tf, path),
        }
    skipped = {}
    with tempfile.TemporaryDirectory() as tmp:
        reason = probe_keras_save_weights(tmp)
    if reason is not None:
        skipped["keras_save_weights"] = reason
    else:  # pragma: no cover - Keras 2 only
        raise SystemExit("Keras can write TF-format save_weights again: add the fixture")
    return {
        "generator": "tools/make_object_fixtures.py",
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "array_digest": "sha256 of numpy.ascontiguousarray(a).tobytes() (own byte order)",
        "checkpoints": checkpoints,
        "manager": manager,
        "skipped": skipped,
    }


def write_readme(root, expected):
    lines = [
        "# Object-based checkpoint fixtures",
        "",
        "Written by TensorFlow "
        f"{expected['versions']['tensorflow']} (Keras {expected['versions']['keras']}, "
        f"numpy {expected['versions']['numpy']}) with `tools/make_object_fixtures.py`; "
        "`EXPECTED.json` records TensorFlow's view (keys, dtypes, shapes, sha256, the "
        "NumpyState arrays as TF-Agents' NumpyState restores them, Keras/optimizer variable "
        "keys, the manager state).  Do not edit by hand; regenerate with",
        "",
        "    /tmp/tfenv/bin/python tools/make_object_fixtures.py [--check]",
        "",
        "| prefix | writer | keys |",
        "| --- | --- | --- |",
    ]
    for prefix, info in expected["checkpoints"].items():
        lines.append(f"| `{prefix}` | {info['writer']} | {len(info['tensors'])} |")
    lines += ["", "Not written:", ""]
    for name, reason in expected["skipped"].items():
        lines.append(f"* `{name}/`: {reason}")
    with open(os.path.join(root, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def dump(expected):
    return json.dumps(expected, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def _files(root):
    out = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temp dir and compare with the existing fixtures",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    tmp_parent = tempfile.mkdtemp(prefix="tfckpt_object_fixtures_")
    try:
        root = os.path.join(tmp_parent, "objects")
        expected = generate(root)
        with open(os.path.join(root, "EXPECTED.json"), "w", encoding="utf-8") as f:
            f.write(dump(expected))
        write_readme(root, expected)
        if args.check:
            with open(os.path.join(out, "EXPECTED.json"), encoding="utf-8") as f:
                old = json.load(f)
            new = json.loads(dump(expected))
            same = old == new
            for key in sorted(set(old["checkpoints"]) | set(new["checkpoints"])):
                if old["checkpoints"].get(key) != new["checkpoints"].get(key):
                    print(f"  {key}: TensorFlow's view differs")
            old_files, new_files = _files(out), _files(root)
            for name in sorted(set(old_files) | set(new_files)):
                if old_files.get(name) != new_files.get(name):
                    print(f"  file {name} differs (bytes)")
            print(f"fixtures/objects is {'up to date' if same else 'STALE'}")
            return 0 if same else 1
        if os.path.exists(out):
            shutil.rmtree(out)
        shutil.copytree(root, out)
        total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(out) for n in ns)
        print(f"wrote {out}: {len(expected['checkpoints'])} checkpoints, {total} bytes")
        return 0
    finally:
        shutil.rmtree(tmp_parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
