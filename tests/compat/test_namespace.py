"""``from tfckpt import tf_compat as tf``: the tf.train / tf.compat.v1.train / tf.errors /
tf.dtypes surface (src/tfckpt/tf_compat.py, src/tfckpt/compat/)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tfckpt
from tests.conftest import CORPUS, FIXTURES, REPO
from tfckpt import tf_compat as tf

T2T = CORPUS / "tensorflow-tensor2tensor/tensor2tensor/test_data/transformer_test_ckpt/model.ckpt-1"


def test_namespace_never_imports_tensorflow():
    """Importing and using tf_compat loads no TensorFlow module."""
    script = f"""
import sys
from tfckpt import tf_compat as tf
path = {str(T2T)!r}
names = [n for n, _ in tf.train.list_variables(path)]
tf.train.load_variable(path, names[1])
tf.compat.v1.train.NewCheckpointReader(path).debug_string()
assert tf.float32 == tf.dtypes.float32 and tf.errors.NOT_FOUND == 5
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
assert not bad, bad
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_names_client_code_uses():
    """tf.train, tf.compat.v1.train, tf.errors, tf.dtypes and the top-level dtype names are
    there, pointing at tfckpt's implementations."""
    assert tf.train.load_checkpoint is tfckpt.load_checkpoint
    assert tf.train.list_variables is tfckpt.list_variables
    assert tf.train.load_variable is tfckpt.load_variable
    assert tf.train.latest_checkpoint is tfckpt.latest_checkpoint
    assert tf.train.checkpoints_iterator is tfckpt.checkpoints_iterator
    assert tf.train.Checkpoint is tfckpt.Checkpoint
    assert tf.train.CheckpointManager is tfckpt.CheckpointManager
    assert tf.compat.v1.train.load_variable is tfckpt.load_variable
    assert tf.compat.v2 is tf
    assert tf.DType is tfckpt.DType and tf.as_dtype is tfckpt.as_dtype
    assert tf.float32 is tf.dtypes.float32 is tf.compat.v1.float32 is tfckpt.dtypes.float32
    assert tf.bool.name == "bool" and tf.half is tf.float16 and tf.double is tf.float64
    assert tf.dtypes.experimental.float8_e4m3fn.size == 1
    assert {tf.qint8, tf.quint8, tf.qint16, tf.quint16, tf.qint32} == tf.dtypes.QUANTIZED_DTYPES
    step = tf.train.load_checkpoint(T2T).get_variable_to_dtype_map()["global_step"]
    assert isinstance(step, tf.DType)
    for space in (tf, tf.dtypes, tf.compat.v1):
        with pytest.raises(AttributeError):
            space.no_such_thing  # noqa: B018


def test_new_checkpoint_reader_takes_str_and_bytes():
    """NewCheckpointReader opens a prefix given as str or bytes (TensorFlow encodes to
    bytes itself), and raises NotFoundError for a missing one."""
    for path in (str(T2T), str(T2T).encode()):
        reader = tf.compat.v1.train.NewCheckpointReader(path)
        assert reader.has_tensor("global_step")
    with pytest.raises(tf.errors.NotFoundError):
        tf.compat.v1.train.NewCheckpointReader(str(T2T) + "-nope")


def test_checkpoint_exists():
    """checkpoint_exists is True for V2 and V1 prefixes and False for anything else."""
    assert tf.compat.v1.train.checkpoint_exists(T2T)
    assert tf.compat.v1.train.checkpoint_exists(FIXTURES / "v1_format" / "model.ckpt")
    assert not tf.compat.v1.train.checkpoint_exists(FIXTURES / "v1_format" / "nope")


def test_get_checkpoint_state_is_the_proto(tmp_path):
    """get_checkpoint_state returns the CheckpointState proto (relative paths joined to the
    directory, timestamps kept), None without a state file, DataLossError for a corrupt
    one."""
    manager = tfckpt.CheckpointManager(tfckpt.Checkpoint(w={"a": np.zeros(1)}), tmp_path / "m")
    first, second = manager.save(), manager.save()
    state = tf.train.get_checkpoint_state(tmp_path / "m")
    assert state.model_checkpoint_path == second
    assert list(state.all_model_checkpoint_paths) == [first, second]
    assert len(state.all_model_checkpoint_timestamps) == 2
    assert str(state).startswith(f'model_checkpoint_path: "{second}"\n')
    assert tf.train.get_checkpoint_state(tmp_path) is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint").write_text("}{")
    with pytest.raises(tf.errors.DataLossError):
        tf.train.get_checkpoint_state(tmp_path / "bad")


def test_checkpoint_options(tmp_path):
    """CheckpointOptions takes TensorFlow's arguments; the ones tfckpt satisfies
    (io device, async) are accepted and saving with them works; the ones it would drop
    silently raise UnimplementedError."""
    options = tf.train.CheckpointOptions(experimental_io_device="/job:localhost", enable_async=True)
    assert options.enable_async and options.experimental_enable_async_checkpoint
    assert tf.train.CheckpointOptions(experimental_enable_async_checkpoint=True).enable_async
    checkpoint = tf.train.Checkpoint(w={"a": np.arange(3.0)})
    path = checkpoint.save(str(tmp_path / "ckpt"), options=options)
    # As with TensorFlow, an asynchronous save returns before its files exist; sync() waits.
    checkpoint.sync()
    assert tf.train.load_variable(path, "w/a/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [0, 1, 2]
    for unsupported in (
        {"experimental_write_callbacks": [lambda path: None]},
        {"experimental_sharding_callback": object()},
        {"experimental_skip_slot_variables": True},
    ):
        with pytest.raises(tf.errors.UnimplementedError):
            tf.train.CheckpointOptions(**unsupported)


def test_hugging_face_pattern_without_tensorflow():
    """list_variables + load_variable per name (Hugging Face's loop) reads every tensor as
    load_tensors does, as owned arrays."""
    everything = tfckpt.load_tensors(T2T)
    loaded = {name: tf.train.load_variable(T2T, name) for name, _ in tf.train.list_variables(T2T)}
    assert list(loaded) == sorted(everything)
    for name, value in loaded.items():
        assert np.array_equal(value, everything[name]), name
        if isinstance(value, np.ndarray):
            assert value.flags.writeable  # owned, not a read-only view of a memory map
    assert tf.train.load_variable(T2T, "global_step:0") == everything["global_step"]
