"""Property tests against TensorFlow: random dtypes, shapes, bit patterns, strings, names.

* tfckpt writes ⇒ TensorFlow reads identical names, dtypes, shapes and bits;
* TensorFlow writes (SaveV2) ⇒ tfckpt reads the same, and tfckpt writing the same tensors
  in the same order produces byte-identical files;
* random partitions of a tensor: SaveV2 slices and ``add_slice`` give identical files and
  tfckpt assembles the tensor.

Examples are derandomized (fixed seed) so CI runs are reproducible.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfckpt

from ._util import (
    ALL_DTYPES,
    QUANTIZED,
    SUBBYTE_BITS,
    assert_identical_files,
    assert_value,
    np_dtype,
    obj_array,
    tf_save,
    to_tf,
)

PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # each example writes to its own subdirectory
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

DTYPES = ALL_DTYPES + sorted(QUANTIZED)
_counter = itertools.count()



def _fresh(tmp_path):
    path = tmp_path / f"ex{next(_counter)}"
    path.mkdir()
    return path


# -- strategies ------------------------------------------------------------------------------

shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)

_runs = st.tuples(st.sampled_from([b"\x00", b"\xff", b"a", b"\x80"]), st.integers(0, 300)).map(
    lambda t: t[0] * t[1]
)
byte_strings = st.one_of(
    st.binary(max_size=300),
    _runs,
    st.lists(st.one_of(_runs, st.binary(max_size=20)), max_size=5).map(b"".join),
)

# Any non-empty text (TensorFlow aborts on an empty tensor name); no lone surrogates.
names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@st.composite
def arrays(draw, dtype, shape):
    """An array of TF dtype ``dtype`` (quantized: its plain integer type) and ``shape``."""
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == "string":
        return (
            obj_array(draw(st.lists(byte_strings, min_size=n, max_size=n)), shape)
            if n
            else obj_array([], shape)
        )
    if dtype == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool).reshape(
            shape
        )
    dt = np_dtype(dtype)
    raw = draw(st.binary(min_size=n * dt.itemsize, max_size=n * dt.itemsize))
    data = np.frombuffer(raw, np.uint8).copy()
    if dtype in SUBBYTE_BITS:  # only the low bits of each byte are meaningful
        data &= (1 << SUBBYTE_BITS[dtype]) - 1
    return data.view(dt).reshape(shape)


@st.composite
def tensors(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(shapes)
    return dtype, draw(arrays(dtype, shape))


@st.composite
def checkpoints(draw):
    """An ordered ``{name: (dtype, array)}`` with 1-4 tensors."""
    tensor_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    return {name: draw(tensors()) for name in tensor_names}


def _split(case):
    return {n: a for n, (_, a) in case.items()}, {n: d for n, (d, _) in case.items()}


def _tfckpt_write(prefix, case):
    with tfckpt.BundleWriter(prefix) as writer:
        for name, (dtype, array) in case.items():
            if dtype in QUANTIZED:
                writer.add(name, array, dtype=dtype)
            else:
                writer.add(name, array)
    return prefix


# -- properties ------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(case=checkpoints())
def test_tfckpt_writes_tf_reads(tf, tmp_path, case):
    values, dtypes = _split(case)
    prefix = _tfckpt_write(str(_fresh(tmp_path) / "ckpt"), case)
    reader = tf.train.load_checkpoint(prefix)
    assert reader.get_variable_to_shape_map() == {n: list(a.shape) for n, a in values.items()}
    assert {n: d.name for n, d in reader.get_variable_to_dtype_map().items()} == dtypes
    for name, expected in values.items():
        assert_value(reader.get_tensor(name), expected, repr(name))
    restored = tf.raw_ops.RestoreV2(
        prefix=prefix,
        tensor_names=list(values),
        shape_and_slices=[""] * len(values),
        dtypes=[tf.as_dtype(dtypes[n]) for n in values],
    )
    for (name, expected), tensor in zip(values.items(), restored):
        assert tensor.dtype.name == dtypes[name]
        if expected.dtype == object:
            got = tensor.numpy()
            assert (got if expected.ndim == 0 else got.tolist()) == (
                expected[()] if expected.ndim == 0 else expected.tolist()
            )
        else:
            if dtypes[name] in QUANTIZED:
                tensor = tf.bitcast(tensor, tf.as_dtype(QUANTIZED[dtypes[name]]))
            assert np.asarray(tensor.numpy()).tobytes() == expected.tobytes()


@PROPERTY_SETTINGS
@given(case=checkpoints())
def test_tf_writes_tfckpt_reads_byte_identical(tf, tmp_path, case):
    values, dtypes = _split(case)
    where = _fresh(tmp_path)
    theirs = tf_save(tf, str(where / "tf" / "ckpt"), values, dtypes)
    with tfckpt.load_checkpoint(theirs) as reader:
        assert reader.keys() == sorted(values, key=lambda n: n.encode("utf-8"))
        assert reader.get_variable_to_shape_map() == {n: list(a.shape) for n, a in values.items()}
        assert {n: d.name for n, d in reader.get_variable_to_dtype_map().items()} == dtypes
        for name, expected in values.items():
            assert_value(reader.get_tensor(name), expected, repr(name))
            assert_value(reader.get_tensor(name, copy=False), expected, f"{name!r} copy=False")
    ours = _tfckpt_write(str(where / "ours" / "ckpt"), case)
    assert_identical_files(ours, theirs)


@st.composite
def partitions(draw):
    """A tensor, an axis and cut points splitting that axis into 2-4 non-empty slices."""
    dtype = draw(st.sampled_from([d for d in DTYPES if d not in QUANTIZED]))
    rank = draw(st.integers(1, 3))
    shape = list(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    axis = draw(st.integers(0, rank - 1))
    shape[axis] = draw(st.integers(2, 6))
    cuts = draw(st.lists(st.integers(1, shape[axis] - 1), min_size=1, max_size=3, unique=True))
    bounds = [0, *sorted(cuts), shape[axis]]
    order = draw(st.permutations(range(len(bounds) - 1)))
    full = draw(arrays(dtype, tuple(shape)))
    return dtype, full, axis, [(bounds[i], bounds[i + 1] - bounds[i]) for i in order]


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(case=partitions())
def test_random_partitions_byte_identical(tf, tmp_path, case):
    dtype, full, axis, pieces = case
    where = _fresh(tmp_path)
    specs, parts = [], []
    for start, length in pieces:
        extents = [None] * full.ndim
        extents[axis] = (start, length)
        region = [slice(None)] * full.ndim
        region[axis] = slice(start, start + length)
        specs.append(extents)
        parts.append(np.array(full[tuple(region)], order="C"))
    (where / "tf").mkdir()
    theirs = str(where / "tf" / "ckpt")
    texts = [
        " ".join(str(d) for d in full.shape)
        + " "
        + ":".join("-" if e is None else f"{e[0]},{e[1]}" for e in extents)
        for extents in specs
    ]
    tf.raw_ops.SaveV2(
        prefix=theirs,
        tensor_names=["t"] * len(parts),
        shape_and_slices=texts,
        tensors=[to_tf(tf, part, dtype) for part in parts],
    )
    ours = str(where / "ours" / "ckpt")
    with tfckpt.BundleWriter(ours) as writer:
        for extents, part in zip(specs, parts):
            writer.add_slice("t", full.shape, extents, part)
    assert_identical_files(ours, theirs)
    with tfckpt.load_checkpoint(theirs) as reader:
        assert reader.keys() == ["t"]
        assert reader.get_variable_to_dtype_map()["t"].name == dtype
        assert_value(reader.get_tensor("t"), full, "assembled")
