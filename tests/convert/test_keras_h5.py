"""Keras 3 ``.weights.h5`` layouts from committed TF-written checkpoints, without
TensorFlow or Keras: where each variable goes (Keras's walk order and names), the h5py
file written from them, and the refusals that name what is missing.  Loading into Keras
is proved in tests/tf/test_keras_h5_interop.py."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import tfckpt
from tests.conftest import CORPUS, FIXTURES
from tfckpt.convert import convert
from tfckpt.convert.keras_h5 import keras_layout, to_snake_case
from tfckpt.errors import InvalidArgumentError, UnsupportedError
from tfckpt.inspection.extras import MissingExtraError
from tfckpt.objects.restore import read_object_graph

# tf.train.Checkpoint(model=<Keras 3 Sequential: Dense "hidden", Dense "out">, optimizer=Adam)
KERAS = FIXTURES / "objects" / "keras_checkpoint" / "ckpt-1"
# A Keras 2 (tf_keras) model.save_weights checkpoint: layers as layer_with_weights-N.
KERAS2 = CORPUS / (
    "tensorflow-tfx@86bbd368b2/tfx/examples/iris/iris_native_keras_custom_splits/.temp/7/"
    "iris_tuning/trial_1cbaf13c352c7c7aeb70574ac4e5548b/checkpoints/epoch_0/checkpoint"
)


def _layout(prefix, **options):
    with tfckpt.load_checkpoint(prefix) as reader:
        return keras_layout(read_object_graph(reader), path=str(prefix), **options)


def test_snake_case_is_keras_naming():
    """Class names become group names as keras/src/utils/naming.py makes them."""
    assert to_snake_case("BatchNormalization") == "batch_normalization"
    assert to_snake_case("Conv2D") == "conv2d"
    assert to_snake_case("Conv2DTranspose") == "conv2d_transpose"
    assert to_snake_case("Dense") == "dense"


def test_sequential_with_adam_layout():
    """Layers under layers/<class>, variables in order, then Adam's variables in
    optimizer.variables order; the class of a hand-named layer comes from `classes`."""
    layout = _layout(KERAS, classes={"hidden": "Dense", "out": "Dense"})
    paths = [e.path for e in layout.entries]
    assert paths[:4] == [
        "layers/dense/vars/0",
        "layers/dense/vars/1",
        "layers/dense_1/vars/0",
        "layers/dense_1/vars/1",
    ]
    assert paths[4:] == [f"optimizer/vars/{i}" for i in range(10)]
    assert [e.object_path for e in layout.entries[:2]] == [
        "model/_operations/1/_kernel",
        "model/_operations/1/bias",
    ]
    assert layout.entries[4].key == "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    # Without the mapping, the class is read from the layer's name (Keras's auto names).
    assert _layout(KERAS).entries[0].path == "layers/hidden/vars/0"


def test_exclude_optimizer_is_noted():
    layout = _layout(KERAS, optimizer=False)
    assert all(not e.path.startswith("optimizer/") for e in layout.entries)
    assert layout.left_out == [("model/optimizer", "optimizer state (--exclude-optimizer)")]


def test_written_file_holds_the_checkpoint_values(tmp_path):
    """The .weights.h5 datasets equal the checkpoint's tensors, with their shapes (scalars
    stay scalars) and dtypes."""
    h5py = pytest.importorskip("h5py")
    out = tmp_path / "model.weights.h5"
    result = convert(KERAS, out, keras_classes={"hidden": "Dense", "out": "Dense"})
    assert result.format == "keras" and len(result.names) == 14
    layout = _layout(KERAS, classes={"hidden": "Dense", "out": "Dense"})
    with tfckpt.load_checkpoint(KERAS) as reader, h5py.File(out, "r") as f:
        for entry in layout.entries:
            expected = np.asarray(reader.get_tensor(entry.key))
            found = f[entry.path][()]
            assert np.shape(found) == expected.shape and found.dtype == expected.dtype
            np.testing.assert_array_equal(found, expected)
    assert list(tmp_path.iterdir()) == [out]


def test_keras2_checkpoint_is_refused_by_name():
    """A tf_keras graph (layer_with_weights-N, no class or order Keras 3 can use)."""
    if not KERAS2.with_name(KERAS2.name + ".index").is_file():
        pytest.skip("corpus checkpoint not present")
    with pytest.raises(UnsupportedError, match=r"Keras 2 \(tf_keras\)") as caught:
        _layout(KERAS2)
    assert "layer" in str(caught.value)


def test_inputs_without_an_object_graph_are_refused(tmp_path):
    """A name-based checkpoint has no object graph to lay out: said, nothing written."""
    with pytest.raises(UnsupportedError, match="object graph"):
        convert(FIXTURES / "dtypes" / "ckpt", tmp_path / "m.weights.h5")
    assert list(tmp_path.iterdir()) == []


def test_missing_model_object_is_named():
    """--keras-model naming no object: the children that exist are listed."""
    with pytest.raises(UnsupportedError, match="no object 'net' under the root") as caught:
        _layout(KERAS, model="net")
    assert "'model'" in str(caught.value)


def test_names_and_selections_do_not_apply(tmp_path):
    """Keras decides the layout: include/exclude/rename are usage errors; an output not
    named *.weights.h5 too (Keras's load_weights reads no other name)."""
    with pytest.raises(InvalidArgumentError, match="do not apply"):
        convert(KERAS, tmp_path / "m.weights.h5", include=["kernel"])
    with pytest.raises(InvalidArgumentError, match=r"\*\.weights\.h5"):
        convert(KERAS, tmp_path / "model.h5")
    with pytest.raises(InvalidArgumentError, match=r"\*\.weights\.h5"):
        convert(KERAS, tmp_path / "model.bin", to="keras")
    assert list(tmp_path.iterdir()) == []


def test_missing_h5py_says_what_to_install(tmp_path, monkeypatch):
    """Without h5py the error names the extra; no file is left."""
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` raise ImportError
    with pytest.raises(MissingExtraError, match=r'pip install "tfckpt\[h5\]"'):
        convert(KERAS, tmp_path / "m.weights.h5")
    assert list(tmp_path.iterdir()) == []


def test_class_for_an_unknown_layer_is_a_usage_error():
    """--keras-class naming no layer would silently do nothing: refused."""
    with pytest.raises(InvalidArgumentError, match="'encoder'"):
        _layout(KERAS, classes={"encoder": "Dense"})
