"""TensorFlow writes, tfckpt reads.

``SaveV2`` of every dtype, ``tf.train.Checkpoint.write()/save()``, Saver-written
partitioned variables, a multi-shard Saver checkpoint and a SavedModel: tfckpt sees the
same names, dtypes, shapes and bit-exact values as TensorFlow's own reader.
"""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tfckpt
from tfckpt.proto import trackable_object_graph_pb2

from ._util import (
    ALL_DTYPES,
    DATA_SUFFIX,
    QUANTIZED,
    assert_value,
    np_dtype,
    obj_array,
    pattern_values,
    sample_tensors,
    tf_save,
)


def _key_order(names):
    return sorted(names, key=lambda n: n.encode("utf-8"))


def _check_reader(tf, prefix, tensors, dtypes, sliced=()):
    """tfckpt's view of the checkpoint at ``prefix`` equals ``tensors`` and TF's view.

    ``sliced`` names partitioned tensors: tfckpt assembles those into owned arrays even
    with ``copy=False`` (documented), so only the others must be read-only views.
    """
    theirs = tf.train.load_checkpoint(prefix)
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.prefix == prefix
        assert reader.keys() == _key_order(tensors)
        assert list(reader) == reader.keys()
        assert len(reader) == len(tensors)
        shapes = reader.get_variable_to_shape_map()
        assert shapes == {n: list(v.shape) for n, v in tensors.items()}
        assert all(type(d) is int for s in shapes.values() for d in s)
        assert shapes == theirs.get_variable_to_shape_map()
        our_dtypes = reader.get_variable_to_dtype_map()
        their_dtypes = theirs.get_variable_to_dtype_map()
        assert {n: d.name for n, d in our_dtypes.items()} == dtypes
        for name, dtype in our_dtypes.items():
            tf_dtype = their_dtypes[name]
            assert dtype.name == tf_dtype.name
            assert dtype.as_datatype_enum == tf_dtype.as_datatype_enum
            assert dtype == tf_dtype
            if dtype.name in QUANTIZED:
                assert np.dtype(dtype.as_numpy_dtype) == np.dtype(tf_dtype.as_numpy_dtype)
            else:
                assert dtype.as_numpy_dtype is tf_dtype.as_numpy_dtype
        for name, expected in tensors.items():
            assert reader.has_tensor(name) and name in reader
            value = reader.get_tensor(name)
            assert_value(value, expected, f"tfckpt get_tensor {name!r}")
            assert_value(reader[name], expected, f"tfckpt [{name!r}]")
            their_value = theirs.get_tensor(name)
            assert type(value) is type(their_value), name
            assert_value(their_value, expected, f"TF get_tensor {name!r}")
            # copy=False: a read-only view with the same value.
            view = reader.get_tensor(name, copy=False)
            assert_value(view, expected, f"tfckpt get_tensor(copy=False) {name!r}")
            if isinstance(view, np.ndarray) and view.dtype != object and name not in sliced:
                assert not view.flags.writeable, f"{name!r}: copy=False array is writeable"
                with pytest.raises(ValueError):
                    view.reshape(-1)[:1] = view.reshape(-1)[:1]
            if isinstance(value, np.ndarray) and value.dtype != object:
                assert value.flags.writeable, f"{name!r}: copy=True array is read-only"
        items = dict(reader.items())
        assert list(items) == reader.keys()
    assert tfckpt.list_variables(prefix) == tf.train.list_variables(prefix)
    for name, expected in tensors.items():
        assert_value(tfckpt.load_variable(prefix, name), expected, f"load_variable {name!r}")
        assert_value(tfckpt.load_variable(prefix, name + ":0"), expected, f"{name!r}:0")


# -- SaveV2 of every dtype -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL_DTYPES + sorted(QUANTIZED))
def test_reads_every_dtype_saved_by_tf(tf, tmp_path, dtype):
    tensors = {f"{dtype}/{key}": value for key, value in sample_tensors(dtype).items()}
    if dtype in QUANTIZED:
        assert all(v.dtype == np_dtype(QUANTIZED[dtype]) for v in tensors.values())
    dtypes = dict.fromkeys(tensors, dtype)
    prefix = tf_save(tf, str(tmp_path / "ckpt"), tensors, dtypes)
    _check_reader(tf, prefix, tensors, dtypes)


def test_reads_all_dtypes_in_one_tf_checkpoint(tf, tmp_path):
    tensors, dtypes = {}, {}
    for dtype in ALL_DTYPES + sorted(QUANTIZED):
        for key, value in sample_tensors(dtype).items():
            if dtype == "string" and key == "long":
                continue
            tensors[f"{key}:{dtype}"] = value
            dtypes[f"{key}:{dtype}"] = dtype
    order = list(tensors)
    random.Random(17).shuffle(order)
    prefix = tf_save(tf, str(tmp_path / "ckpt"), {n: tensors[n] for n in order}, dtypes)
    _check_reader(tf, prefix, tensors, dtypes)


def test_reads_unusual_names(tf, tmp_path):
    names = [
        "a",
        "A",
        "a/b/c",
        "a.b",
        "a/.ATTRIBUTES/VARIABLE_VALUE",
        " space",
        "!bang",
        "~tilde",
        "\x01ctrl",
        "\x00nul",
        "ü/ñ",
        "日本語/変数",
        "emoji🎉",
        "\U0010ffff",
        "x" * 3000,
        "a\x7fb",
    ]
    tensors = {n: np.array([i, -i], np.int32) for i, n in enumerate(names)}
    dtypes = dict.fromkeys(names, "int32")
    prefix = tf_save(tf, str(tmp_path / "ckpt"), tensors, dtypes)
    _check_reader(tf, prefix, tensors, dtypes)


# -- tf.train.Checkpoint (object-based) ------------------------------------------------------


def _nested_module(tf, seed=0):
    rng = np.random.default_rng(seed)

    class Inner(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(rng.standard_normal((3, 4)).astype(np.float32))
            self.vocab = tf.Variable([b"", b"a\x00b", "ü".encode()])

    class Outer(tf.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()
            self.layers = [
                tf.Variable(np.float64(seed) + 0.5),
                tf.Variable(np.arange(5, dtype=np.int64) * (seed + 1)),
                tf.Variable(pattern_values("bfloat16")[:4]),
            ]
            self.table = {"flag": tf.Variable(True), "half": tf.Variable(np.float16(-0.0))}

    return Outer()


def _expected_from_tf(tf, prefix):
    """Values via TF's reader, as NumPy arrays (for assert_value)."""
    out, dtypes = {}, {}
    reader = tf.train.load_checkpoint(prefix)
    for name, dtype in reader.get_variable_to_dtype_map().items():
        value = reader.get_tensor(name)
        if isinstance(value, bytes):
            arr = np.empty((), object)
            arr[()] = value
            value = arr
        out[name] = np.asarray(value)
        dtypes[name] = dtype.name
    return out, dtypes


def _check_object_graph(tf, prefix, children):
    from tensorflow.core.protobuf import trackable_object_graph_pb2 as tf_graph_pb2

    with tfckpt.load_checkpoint(prefix) as reader:
        raw = reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
        assert reader.get_variable_to_dtype_map()["_CHECKPOINTABLE_OBJECT_GRAPH"].name == "string"
        assert reader.get_variable_to_shape_map()["_CHECKPOINTABLE_OBJECT_GRAPH"] == []
    assert type(raw) is bytes
    assert raw == tf.train.load_checkpoint(prefix).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
    ours = trackable_object_graph_pb2.TrackableObjectGraph.FromString(raw)
    theirs = tf_graph_pb2.TrackableObjectGraph.FromString(raw)
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
        deterministic=True
    )
    root_children = {c.local_name for c in ours.nodes[0].children}
    assert root_children == set(children)
    keys = {attr.checkpoint_key for node in ours.nodes for attr in node.attributes}
    with tfckpt.load_checkpoint(prefix) as reader:
        assert keys == set(reader.keys()) - {"_CHECKPOINTABLE_OBJECT_GRAPH"}


def test_reads_tf_checkpoint_write(tf, tmp_path):
    model = _nested_module(tf)
    step = tf.Variable(7, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(model=model, step=step)
    prefix = ckpt.write(str(tmp_path / "written" / "ckpt"))
    assert prefix == str(tmp_path / "written" / "ckpt")
    tf_keys = [name for name, _ in tf.train.list_variables(prefix)]
    assert "model/inner/kernel/.ATTRIBUTES/VARIABLE_VALUE" in tf_keys
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in tf_keys
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.keys() == tf_keys
    expected, dtypes = _expected_from_tf(tf, prefix)
    assert expected["step/.ATTRIBUTES/VARIABLE_VALUE"].tobytes() == np.int64(7).tobytes()
    assert_value(
        expected["model/inner/kernel/.ATTRIBUTES/VARIABLE_VALUE"], model.inner.kernel.numpy()
    )
    _check_reader(tf, prefix, expected, dtypes)
    _check_object_graph(tf, prefix, ["model", "step"])


def test_reads_tf_checkpoint_save(tf, tmp_path):
    directory = tmp_path / "saved"
    model = _nested_module(tf, seed=1)
    ckpt = tf.train.Checkpoint(model=model)
    first = ckpt.save(str(directory / "ckpt"))
    model.layers[1].assign_add(np.full(5, 100, np.int64))
    second = ckpt.save(str(directory / "ckpt"))
    assert first.endswith("ckpt-1") and second.endswith("ckpt-2")
    assert tfckpt.latest_checkpoint(str(directory)) == tf.train.latest_checkpoint(str(directory))
    assert tfckpt.latest_checkpoint(str(directory)) == second

    for prefix, counter in ((first, 1), (second, 2)):
        tf_keys = [name for name, _ in tf.train.list_variables(prefix)]
        assert "save_counter/.ATTRIBUTES/VARIABLE_VALUE" in tf_keys
        with tfckpt.load_checkpoint(prefix) as reader:
            assert reader.keys() == tf_keys
            assert_value(
                reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE"),
                np.array(counter, np.int64),
            )
        expected, dtypes = _expected_from_tf(tf, prefix)
        _check_reader(tf, prefix, expected, dtypes)
        _check_object_graph(tf, prefix, ["model", "save_counter"])

    # The directory resolves to the latest checkpoint, as tf.train.load_checkpoint does.
    with tfckpt.load_checkpoint(str(directory)) as reader:
        assert reader.prefix == second
        assert_value(
            reader.get_tensor("model/layers/1/.ATTRIBUTES/VARIABLE_VALUE"),
            np.arange(5, dtype=np.int64) * 2 + 100,
        )
    assert tfckpt.list_variables(str(directory)) == tf.train.list_variables(str(directory))


def test_reads_checkpoint_manager_directory(tf, tmp_path):
    """A state file listing several checkpoints: the directory means the newest one."""
    directory = str(tmp_path / "managed")
    counter = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(counter=counter), directory, max_to_keep=3
    )
    paths = []
    for i in range(4):
        counter.assign(i * 10)
        paths.append(manager.save())
    with open(os.path.join(directory, "checkpoint")) as f:
        state = f.read()
    assert state.count("all_model_checkpoint_paths") == 3
    assert tf.train.latest_checkpoint(directory) == paths[-1]
    assert tfckpt.latest_checkpoint(directory) == paths[-1]
    with tfckpt.load_checkpoint(directory) as reader:
        assert reader.prefix == paths[-1]
        assert_value(
            reader.get_tensor("counter/.ATTRIBUTES/VARIABLE_VALUE"), np.array(30, np.int64)
        )
    for i, path in enumerate(paths[1:], start=1):
        assert_value(
            tfckpt.load_variable(path, "counter/.ATTRIBUTES/VARIABLE_VALUE"),
            np.array(i * 10, np.int64),
        )


# -- partitioned variables written by the Saver ----------------------------------------------


def test_reads_saver_partitioned_variables(tf, tmp_path):
    rng = np.random.default_rng(5)
    full = {
        "emb": rng.standard_normal((10, 4)).astype(np.float32),
        "wide": np.arange(3 * 11, dtype=np.int64).reshape(3, 11) - 7,
        "cube": np.resize(pattern_values("float64"), (2, 7, 3)),
        "plain": np.array([1.0, 2.0], np.float32),
    }
    partitioners = {"emb": (3, 0), "wide": (4, 1), "cube": (3, 1)}
    g = tf.Graph()
    with g.as_default():
        variables = {}
        for name, value in full.items():
            kwargs = {}
            if name in partitioners:
                count, axis = partitioners[name]
                kwargs["partitioner"] = tf.compat.v1.fixed_size_partitioner(count, axis=axis)
            variables[name] = tf.compat.v1.get_variable(
                name,
                shape=value.shape,
                dtype=tf.as_dtype(value.dtype),
                initializer=tf.compat.v1.zeros_initializer(),
                **kwargs,
            )
        assigns = []
        for name, variable in variables.items():
            if name not in partitioners:
                assigns.append(variable.assign(full[name]))
                continue
            for part in variable:
                info = part._get_save_slice_info()
                region = tuple(slice(o, o + s) for o, s in zip(info.var_offset, info.var_shape))
                assigns.append(part.assign(full[name][region]))
        saver = tf.compat.v1.train.Saver()
        init = tf.compat.v1.global_variables_initializer()
    (tmp_path / "saver").mkdir()
    with tf.compat.v1.Session(graph=g) as sess:
        sess.run(init)
        sess.run(assigns)
        prefix = saver.save(sess, str(tmp_path / "saver" / "model"))
    theirs = tf.train.load_checkpoint(prefix)
    with tfckpt.load_checkpoint(prefix) as reader:
        # Slice entries are hidden, as in TensorFlow's reader.
        assert reader.keys() == sorted(full)
        assert reader.get_variable_to_shape_map() == theirs.get_variable_to_shape_map()
        for name, value in full.items():
            got = reader.get_tensor(name)
            assert_value(got, value, name)
            assert_value(theirs.get_tensor(name), value, f"TF {name}")
            assert_value(reader.get_tensor(name, copy=False), value, f"copy=False {name}")
    # The directory with the Saver's state file works too.
    with tfckpt.load_checkpoint(str(tmp_path / "saver")) as reader:
        assert reader.prefix == prefix
        assert_value(reader.get_tensor("emb"), full["emb"], "emb via directory")


def test_reads_sliced_tensors_saved_by_savev2(tf, tmp_path):
    """SaveV2 with shape_and_slices, incl. string slices, which TF itself cannot read back."""
    full_f = np.resize(pattern_values("float32"), (10, 4))
    full_s = obj_array([bytes([97 + i % 26]) * (i % 5) for i in range(24)], (4, 6))
    items = [
        ("f", "10 4 0,5:-", full_f[0:5]),
        ("s", "4 6 -:0,2", full_s[:, 0:2]),
        ("f", "10 4 5,5:0,1", full_f[5:10, 0:1]),
        ("plain", "", np.array([1, 2], np.int16)),
        ("s", "4 6 0,4:2,4", full_s[:, 2:6]),
        ("f", "10 4 5,5:1,3", full_f[5:10, 1:4]),
    ]
    prefix = str(tmp_path / "ckpt")
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=[n for n, _, _ in items],
        shape_and_slices=[s for _, s, _ in items],
        tensors=[
            tf.constant(v, dtype=tf.string if v.dtype == object else None) for _, _, v in items
        ],
    )
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.keys() == ["f", "plain", "s"]
        assert reader.get_variable_to_shape_map() == {"f": [10, 4], "plain": [2], "s": [4, 6]}
        assert {n: d.name for n, d in reader.get_variable_to_dtype_map().items()} == {
            "f": "float32",
            "plain": "int16",
            "s": "string",
        }
        assert_value(reader.get_tensor("f"), full_f, "f")
        assert_value(reader.get_tensor("s"), full_s, "s")
        assert_value(reader.get_tensor("plain"), np.array([1, 2], np.int16), "plain")
    assert_value(tf.train.load_checkpoint(prefix).get_tensor("f"), full_f, "TF f")


# -- multi-shard checkpoint ------------------------------------------------------------------

_SHARDED_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    assert len(tf.config.list_logical_devices("CPU")) == 2
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from values import sharded_values

    prefix = sys.argv[1]
    values = sharded_values()
    g = tf.Graph()
    with g.as_default():
        variables = {}
        for i, (name, value) in enumerate(values.items()):
            with tf.device("/cpu:%d" % (i % 2)):
                kwargs = {}
                if name == "dev1/partitioned":
                    kwargs["partitioner"] = tf.compat.v1.fixed_size_partitioner(2)
                init = tf.constant(value, dtype=tf.string if value.dtype == object else None)
                variables[name] = tf.compat.v1.get_variable(name, initializer=init, **kwargs)
        saver = tf.compat.v1.train.Saver(sharded=True)
        with tf.compat.v1.Session(graph=g) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            print(saver.save(sess, prefix))
    """
)

_VALUES_MODULE = textwrap.dedent(
    """
    import numpy as np

    def sharded_values():
        strings = np.empty(3, object)
        strings[:] = [b"", b"x\\x00y", b"z" * 1000]
        return {
            "dev0/kernel": np.arange(12, dtype=np.float32).reshape(3, 4) / 3,
            "dev1/partitioned": np.arange(20, dtype=np.float64).reshape(5, 4) - 0.5,
            "dev0/strings": strings,
            "dev1/step": np.array(42, np.int64),
            "dev0/flags": np.array([True, False]),
            "dev1/half": np.array([1.5, -2.0], np.float16),
        }
    """
)


def test_reads_multi_shard_checkpoint(tf, tmp_path):
    work = tmp_path / "script"
    work.mkdir()
    (work / "values.py").write_text(_VALUES_MODULE)
    (work / "save_sharded.py").write_text(_SHARDED_SCRIPT)
    (tmp_path / "ckpt").mkdir()
    prefix = str(tmp_path / "ckpt" / "model")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, str(work / "save_sharded.py"), prefix],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == prefix
    data_files = sorted(f for f in os.listdir(tmp_path / "ckpt") if ".data-" in f)
    assert data_files == ["model.data-00000-of-00002", "model.data-00001-of-00002"]
    assert all(os.path.getsize(tmp_path / "ckpt" / f) > 0 for f in data_files)

    spec = importlib.util.spec_from_file_location("_tfckpt_sharded_values", work / "values.py")
    values_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(values_module)
    expected = values_module.sharded_values()
    dtypes = {
        n: "string" if v.dtype == object else tf.as_dtype(v.dtype).name for n, v in expected.items()
    }
    _check_reader(tf, prefix, expected, dtypes, sliced={"dev1/partitioned"})
    with tfckpt.load_checkpoint(str(tmp_path / "ckpt")) as reader:
        assert reader.prefix == prefix
        assert sorted(reader.keys()) == sorted(expected)


# -- SavedModel ------------------------------------------------------------------------------


def test_reads_saved_model_directory(tf, tmp_path):
    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
            self.b = tf.Variable(np.array([0.5, -0.5, 2.0], np.float32))
            self.labels = tf.Variable([b"cat", b"dog\x00", b""])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def __call__(self, x):
            return tf.matmul(x, self.w) + self.b

    model = Model()
    directory = str(tmp_path / "saved_model")
    tf.saved_model.save(model, directory)
    variables_prefix = os.path.join(directory, "variables", "variables")
    assert os.path.isfile(variables_prefix + DATA_SUFFIX)
    expected, dtypes = _expected_from_tf(tf, variables_prefix)
    assert_value(expected["w/.ATTRIBUTES/VARIABLE_VALUE"], model.w.numpy())
    assert_value(expected["labels/.ATTRIBUTES/VARIABLE_VALUE"], model.labels.numpy())
    for path in (directory, os.path.join(directory, "variables"), variables_prefix):
        with tfckpt.load_checkpoint(path) as reader:
            assert reader.prefix == variables_prefix
            assert reader.keys() == [n for n, _ in tf.train.list_variables(variables_prefix)]
            for name, value in expected.items():
                assert_value(reader.get_tensor(name), value, f"{path}: {name}")
    _check_reader(tf, variables_prefix, expected, dtypes)


# -- errors on TF-written checkpoints --------------------------------------------------------


def test_errors_on_tf_checkpoint(tf, tmp_path):
    tensors = {"a": np.arange(64, dtype=np.float32), "s": obj_array([b"abc", b"de"])}
    dtypes = {"a": "float32", "s": "string"}
    prefix = tf_save(tf, str(tmp_path / "ckpt"), tensors, dtypes)
    with tfckpt.load_checkpoint(prefix) as reader:
        with pytest.raises(tfckpt.TensorNotFoundError) as info:
            reader.get_tensor("missing")
        assert isinstance(info.value, KeyError)
        assert not reader.has_tensor("missing") and "missing" not in reader
    with pytest.raises(tfckpt.CheckpointNotFoundError) as info:
        tfckpt.load_checkpoint(str(tmp_path / "nothing"))
    assert isinstance(info.value, FileNotFoundError)

    # Flip one bit of the float tensor's data: both TF and tfckpt report data loss.
    with open(prefix + DATA_SUFFIX, "r+b") as f:
        f.seek(10)
        byte = f.read(1)
        f.seek(10)
        f.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(Exception, match="Checksum does not match"):
        tf.train.load_checkpoint(prefix).get_tensor("a")
    with tfckpt.load_checkpoint(prefix) as reader:
        with pytest.raises(tfckpt.DataLossError):
            reader.get_tensor("a")
        with pytest.raises(tfckpt.DataLossError):
            reader.get_tensor("a", copy=False)
        assert_value(reader.get_tensor("s"), tensors["s"], "s still readable")
    with tfckpt.load_checkpoint(prefix, verify_checksums=False) as reader:
        assert reader.get_tensor("a").tobytes() != tensors["a"].tobytes()
