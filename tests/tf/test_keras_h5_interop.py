"""Checkpoints of Keras 3 models (``tf.train.Checkpoint(model=model)``) converted to Keras's
``.weights.h5`` and loaded with ``keras.Model.load_weights`` into a fresh model of the same
architecture: every weight (and the optimizer's variables, which ``load_weights`` restores
into a built optimizer) compared; the file also matches what ``model.save_weights`` writes.
Where the checkpoint does not say where a value goes, the conversion refuses by name.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli.run import one_line_error
from tests.cli.run import tfckpt as run
from tfckpt.convert import convert
from tfckpt.errors import InvalidArgumentError, UnsupportedError

h5py = pytest.importorskip("h5py")


@pytest.fixture
def keras(tf):
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3."):
        pytest.skip(f"Keras 3 needed, found {keras.__version__}")
    return keras


def _sequential(keras):
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(2, use_bias=False),
        ]
    )


def _functional(keras):
    # Layers created in another order than the graph uses them: Keras numbers file groups
    # by model.layers order, not by layer name.
    late = keras.layers.Dense(2)
    image = keras.Input((6, 6, 3))
    tokens = keras.Input((5,), dtype="int32")
    x = keras.layers.Conv2D(4, 3)(image)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(6)(x)
    e = keras.layers.Embedding(10, 6)(tokens)
    e = keras.layers.LayerNormalization()(e)
    e = keras.layers.GlobalAveragePooling1D()(e)
    inner = keras.Sequential([keras.Input((12,)), keras.layers.Dense(3)])  # a nested model
    y = inner(keras.layers.Concatenate()([x, e]))
    return keras.Model([image, tokens], late(y))


def _functional_inputs(keras):
    rng = np.random.default_rng(0)
    return [
        rng.random((8, 6, 6, 3), dtype=np.float32),
        rng.integers(0, 10, (8, 5)).astype("int32"),
    ]


def _subclassed(keras):
    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.d1 = keras.layers.Dense(4)
            self.norm = keras.layers.LayerNormalization()

        def build(self, shape):
            # A non-trainable variable made before a trainable one: Keras's file order is
            # trainable first.
            self.count = self.add_weight(shape=(), initializer="zeros", trainable=False)
            self.scale = self.add_weight(shape=(4,), initializer="ones")

        def call(self, x):
            return self.norm(self.d1(x)) * self.scale + self.count

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.head = keras.layers.Dense(2)

        def call(self, x):
            return self.head(self.block(x))

    model = Net()
    model(np.zeros((1, 3), np.float32))
    return model


def _train(keras, model, inputs, outputs):
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(inputs, outputs, epochs=2, batch_size=4, verbose=0)


def _randomize(model, seed=1):
    """Distinct values everywhere (BatchNorm's moving statistics included)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.standard_normal(variable.shape).astype(variable.dtype))


def _assert_same_weights(a, b):
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=x.path)


def _datasets(path):
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: (
                found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return found


def _assert_same_file(converted, saved):
    """The converted file holds the datasets ``model.save_weights`` writes, equal."""
    ours, keras_own = _datasets(converted), _datasets(saved)
    assert sorted(ours) == sorted(keras_own)
    for name, value in keras_own.items():
        assert (np.shape(ours[name]), ours[name].dtype) == (np.shape(value), value.dtype), name
        np.testing.assert_array_equal(ours[name], value, err_msg=name)


def test_sequential_dense_batchnorm_with_optimizer(keras, tf, tmp_path):
    """A trained Sequential model (Dense, BatchNormalization, Dropout, Dense without bias)
    loads into a fresh one with every weight and every Adam variable equal."""
    model = _sequential(keras)
    rng = np.random.default_rng(0)
    _train(keras, model, rng.random((8, 4), dtype=np.float32), rng.random((8, 2)))
    _randomize(model)
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    model.save_weights(tmp_path / "keras_own.weights.h5")

    out = tmp_path / "model.weights.h5"
    result = convert(prefix, out)
    assert result.format == "keras"
    _assert_same_file(out, tmp_path / "keras_own.weights.h5")

    fresh = _sequential(keras)
    fresh.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(out)
    _assert_same_weights(model, fresh)
    assert len(fresh.optimizer.variables) == len(model.optimizer.variables) > 2
    for x, y in zip(model.optimizer.variables, fresh.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=x.path)
    assert int(fresh.optimizer.iterations.numpy()) == 4


def test_exclude_optimizer_writes_the_layers_only(keras, tf, tmp_path):
    """--exclude-optimizer: no optimizer group; the layers still load."""
    model = _sequential(keras)
    rng = np.random.default_rng(0)
    _train(keras, model, rng.random((8, 4), dtype=np.float32), rng.random((8, 2)))
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    out = tmp_path / "model.weights.h5"
    result = convert(prefix, out, exclude_optimizer=True)
    assert not any(name.startswith("optimizer/") for name in result.names)
    assert [reason for _, reason in result.left_out] == ["optimizer state (--exclude-optimizer)"]
    fresh = _sequential(keras)
    fresh.load_weights(out)
    _assert_same_weights(model, fresh)


def test_functional_conv_embedding_layernorm_nested(keras, tf, tmp_path):
    """A functional model with two inputs, Conv2D, Embedding, LayerNormalization, layers
    created out of order and a nested Sequential: same weights, same predictions."""
    model = _functional(keras)
    _randomize(model, seed=2)
    inputs = _functional_inputs(keras)
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    model.save_weights(tmp_path / "keras_own.weights.h5")
    out = tmp_path / "model.weights.h5"
    convert(prefix, out)
    _assert_same_file(out, tmp_path / "keras_own.weights.h5")

    fresh = _functional(keras)
    fresh.load_weights(out)
    _assert_same_weights(model, fresh)
    np.testing.assert_array_equal(
        np.asarray(model(inputs, training=False)), np.asarray(fresh(inputs, training=False))
    )


def test_subclassed_model_with_sublayers_as_attributes(keras, tf, tmp_path):
    """A subclassed model whose layers are attributes (a custom layer holding a Dense, a
    LayerNormalization and its own variables, non-trainable first): with its optimizer in
    the checkpoint the variables go trainable first, as Keras writes them."""
    model = _subclassed(keras)
    rng = np.random.default_rng(0)
    _train(keras, model, rng.random((8, 3), dtype=np.float32), rng.random((8, 2)))
    _randomize(model, seed=3)
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    model.save_weights(tmp_path / "keras_own.weights.h5")
    out = tmp_path / "model.weights.h5"
    convert(prefix, out)
    _assert_same_file(out, tmp_path / "keras_own.weights.h5")

    fresh = _subclassed(keras)
    fresh.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(out)
    _assert_same_weights(model, fresh)
    for x, y in zip(model.optimizer.variables, fresh.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=x.path)


def test_layers_in_python_lists_are_refused_by_name(keras, tf, tmp_path):
    """Keras 3 under TensorFlow leaves layers kept in a Python list out of the object
    graph; with the optimizer listing their variables, the conversion says so and writes
    nothing."""

    class Stack(keras.Model):
        def __init__(self):
            super().__init__()
            self.blocks = [keras.layers.Dense(3), keras.layers.Dense(3)]
            self.head = keras.layers.Dense(1)

        def call(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    model = Stack()
    rng = np.random.default_rng(0)
    _train(keras, model, rng.random((8, 3), dtype=np.float32), rng.random((8, 1)))
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    out = tmp_path / "model.weights.h5"
    with pytest.raises(UnsupportedError, match="Python lists") as caught:
        convert(prefix, out)
    assert "4 variable(s)" in str(caught.value)
    assert not out.exists() and list(tmp_path.glob(".model.weights.h5*")) == []


def test_hand_named_layers_need_their_class(keras, tf, tmp_path):
    """A layer named by hand gets its class from --keras-class; without it, Keras's own
    load refuses the file (its group is not where Keras looks)."""

    def build():
        return keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(2, name="encoder"), keras.layers.Dense(1)]
        )

    model = build()
    _randomize(model, seed=4)
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    guessed = tmp_path / "guessed.weights.h5"
    convert(prefix, guessed)
    with pytest.raises(ValueError):
        build().load_weights(guessed)
    named = tmp_path / "named.weights.h5"
    convert(prefix, named, keras_classes={"encoder": "Dense"})
    fresh = build()
    fresh.load_weights(named)
    _assert_same_weights(model, fresh)


def test_checkpoint_without_a_keras_model_is_refused(tf, tmp_path):
    """A checkpoint without a child 'model' asks which object is the model; an object
    without variables is refused; a Keras output not named *.weights.h5 is refused."""
    module = tf.Module()
    module.v = tf.Variable([1.0, 2.0])
    prefix = tf.train.Checkpoint(net=module, other=tf.Module()).write(str(tmp_path / "ckpt"))
    with pytest.raises(UnsupportedError, match="which object is the Keras model") as caught:
        convert(prefix, tmp_path / "m.weights.h5")
    assert "'net'" in str(caught.value) and "--keras-model" in str(caught.value)
    with pytest.raises(UnsupportedError, match="no layer variables"):
        convert(prefix, tmp_path / "m.weights.h5", keras_model="other")
    with pytest.raises(InvalidArgumentError, match=r"\*\.weights\.h5"):
        convert(prefix, tmp_path / "m.h5")


def test_console_script_converts_and_keras_loads(keras, tf, tmp_path):
    """`tfckpt convert CKPT out.weights.h5` through the installed console script; the
    output loads; a second run without --force is refused (exit 2) and leaves it alone."""
    model = _functional(keras)
    _randomize(model, seed=5)
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    out = tmp_path / "model.weights.h5"
    done = run("convert", prefix, out, "--no-progress", script=True)
    assert done.returncode == 0, done.stderr
    assert "(keras)" in done.stdout and "datasets" in done.stdout
    fresh = _functional(keras)
    fresh.load_weights(out)
    _assert_same_weights(model, fresh)
    before = out.read_bytes()
    line = one_line_error(run("convert", prefix, out, script=True), 2)
    assert "--force" in line
    assert out.read_bytes() == before
    line = one_line_error(run("convert", prefix, tmp_path / "m.h5", script=True), 2)
    assert ".weights.h5" in line
