"""Client code written for ``tf.train`` runs on ``tfckpt.tf_compat`` and gets TensorFlow's
results: values, dtypes, printed output, exceptions, polling.

* TensorFlow's own ``inspect_checkpoint`` module runs twice on every fixture and corpus
  checkpoint, once as shipped and once with its ``py_checkpoint_reader`` and
  ``errors_impl`` replaced by tfckpt's; the printed output must be byte-identical, except
  where TensorFlow cannot read a tensor (tfckpt then prints the values TensorFlow could
  not) and in the wording of error messages.
* A restatement of Hugging Face's ``load_tf_weights_in_bert`` reading pattern
  (``list_variables``, ``load_variable`` per name, optimizer slots and the step skipped)
  gets the same arrays from both.
* ``tfckpt.DType`` answers like ``tf.DType`` for every dtype, and compares equal to it.
* Errors: for each way of failing, tfckpt raises an instance of what TensorFlow raises.
* ``checkpoints_iterator`` yields, sleeps and times out as TensorFlow's on one scripted
  timeline; ``get_checkpoint_state`` and ``latest_checkpoint`` agree on every state file.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import shutil
import types

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tests.conftest import CORPUS, FIXTURES
from tests.legacy.test_v1_reader import V1File
from tfckpt import tf_compat
from tfckpt.checkpoint_state import write_state
from tfckpt.compat import polling, train_v1

ENTRIES = [(FIXTURES, e) for e in json.loads((FIXTURES / "MANIFEST.json").read_text())] + [
    (CORPUS, e) for e in json.loads((CORPUS / "MANIFEST.json").read_text())
]
PATHS = {e["path"]: str(root / e["path"]) for root, e in ENTRIES}
MANIFEST = {e["path"]: e for _, e in ENTRIES}


def _missing_data(entry) -> bool:
    return bool(entry.get("container", {}).get("missing_data_files"))


def _tf_unreadable(entry) -> set[str]:
    """Tensors TensorFlow's reader fails on although their files are all there."""
    if _missing_data(entry):
        return set()
    return {name for name, info in entry["tensors"].items() if "tf_error" in info}


def _equivalent(exc_type: type[BaseException]) -> type[BaseException]:
    """tfckpt.tf_compat's class for a TensorFlow exception class (builtins are shared)."""
    if exc_type.__module__.startswith("tensorflow"):
        return getattr(tf_compat.errors, exc_type.__name__)
    return exc_type


def _same_value(ours, theirs, what) -> None:
    assert type(ours) is type(theirs), what
    if isinstance(theirs, bytes):
        assert ours == theirs, what
        return
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, what
    if theirs.dtype == object:
        assert ours.tolist() == theirs.tolist(), what
    else:
        assert ours.tobytes() == theirs.tobytes(), what  # bit for bit, NaNs included


# -- TensorFlow's inspect_checkpoint, unmodified ----------------------------------------------


def _inspect(module, path: str, **mode) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        module.print_tensors_in_checkpoint_file(
            path,
            mode.get("tensor_name", ""),
            mode.get("all_tensors", False),
            mode.get("all_tensor_names", False),
            count_exclude_pattern=mode.get("count_exclude_pattern", ""),
        )
    return out.getvalue()


def _modes(entry) -> list[dict]:
    first = sorted(entry["tensors"])[0]
    return [
        {},
        {"all_tensors": True},
        {"all_tensor_names": True},
        {"tensor_name": first},
        {"tensor_name": "no/such/tensor"},
        {"all_tensor_names": True, "count_exclude_pattern": "kernel|bias"},
    ]


@pytest.mark.parametrize("key", sorted(PATHS))
def test_inspect_checkpoint_prints_the_same(tf, monkeypatch, key):
    """TensorFlow's inspect_checkpoint prints byte for byte the same through tfckpt's
    reader (every mode: the debug string, all tensors with values, names, one tensor, a
    missing tensor, an exclusion pattern); where TensorFlow fails on a tensor, tfckpt's
    output is TensorFlow's up to the failure, then continues with the values; where a data
    file is missing, only the error line's wording differs."""
    from tensorflow.python.tools import inspect_checkpoint

    entry, path = MANIFEST[key], PATHS[key]
    for mode in _modes(entry):
        theirs = _inspect(inspect_checkpoint, path, **mode)
        with monkeypatch.context() as patch:
            patch.setattr(inspect_checkpoint, "py_checkpoint_reader", train_v1)
            patch.setattr(inspect_checkpoint, "errors_impl", tf_compat.errors)
            ours = _inspect(inspect_checkpoint, path, **mode)
        read = set(entry["tensors"]) if mode.get("all_tensors") else set()
        read |= {mode.get("tensor_name")} & set(entry["tensors"])
        if read & (_tf_unreadable(entry) - {"tensor_list"}):  # (the variant prints the same)
            error_line = next(
                line for line in theirs.splitlines() if "not supported" in line
            )  # TensorFlow printed its error and stopped
            before = theirs[: theirs.index(error_line)]
            assert ours.startswith(before), (key, mode)
            assert "not supported" not in ours, (key, mode)
        elif read and _missing_data(entry):
            their_lines, our_lines = theirs.splitlines(), ours.splitlines()
            assert len(their_lines) == len(our_lines), (key, mode)
            for mine, its in zip(our_lines, their_lines):
                if "No such file or directory" in its:
                    assert "the data file does not exist" in mine, (key, mode)
                else:
                    assert mine == its, (key, mode)
        else:
            assert ours == theirs, (key, mode)


# -- Hugging Face's reading pattern -----------------------------------------------------------

SKIPPED_PARTS = {"adam_v", "adam_m", "AdamWeightDecayOptimizer", "AdamWeightDecayOptimizer_1"}
SKIPPED_PARTS |= {"global_step"}


def bert_style_load(tf_module, path: str) -> dict:
    """What ``load_tf_weights_in_bert`` reads before it touches PyTorch, restated: every
    variable listed, each loaded by name, then optimizer slots and the step counter
    dropped by path component."""
    names, arrays = [], []
    for name, _shape in tf_module.train.list_variables(path):
        names.append(name)
        arrays.append(tf_module.train.load_variable(path, name))
    return {
        name: array
        for name, array in zip(names, arrays)
        if not any(part in SKIPPED_PARTS for part in name.split("/"))
    }


@pytest.mark.parametrize("key", sorted(PATHS))
def test_hugging_face_loader_pattern_gets_the_same_arrays(tf, key):
    """The list_variables + load_variable-per-name loop returns the same names and the same
    arrays (type, dtype, shape, bits) through tf_compat as through TensorFlow; where
    TensorFlow fails, tfckpt raises the same kind of error (missing data files) or reads
    what TensorFlow cannot (partitioned strings, V1 dtypes and slices)."""
    entry, path = MANIFEST[key], PATHS[key]
    try:
        theirs = bert_style_load(tf, path)
    except Exception as exc:
        unreadable = _tf_unreadable(entry)
        if _missing_data(entry) or unreadable == {"tensor_list"}:  # both fail
            with pytest.raises(_equivalent(type(exc))) as info:  # OpError, InternalError
                bert_style_load(tf_compat, path)
            assert isinstance(info.value, tfckpt.CheckpointError)
            return
        assert unreadable, (key, exc)
        ours = bert_style_load(tf_compat, path)
        for name in _tf_unreadable(entry) - {"tensor_list"}:
            assert name in ours or any(p in SKIPPED_PARTS for p in name.split("/"))
        return
    ours = bert_style_load(tf_compat, path)
    assert list(ours) == list(theirs)
    for name in theirs:
        _same_value(ours[name], theirs[name], (key, name))


def test_hugging_face_loader_skips_the_optimizer_and_step(tf, tmp_path):
    """On a BERT-style checkpoint with Adam slots and a global step, both keep exactly the
    model weights."""
    tensors = {
        "bert/pooler/dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
        "bert/pooler/dense/kernel/adam_m": np.zeros((2, 3), np.float32),
        "bert/pooler/dense/kernel/adam_v": np.ones((2, 3), np.float32),
        "global_step": np.array(7, np.int64),
        "cls/predictions/output_bias": np.arange(3, dtype=np.float32),
    }
    prefix = tfckpt.save_tensors(tmp_path / "bert_model.ckpt", tensors)
    theirs, ours = bert_style_load(tf, prefix), bert_style_load(tf_compat, prefix)
    assert list(ours) == list(theirs) == ["bert/pooler/dense/kernel", "cls/predictions/output_bias"]
    for name in theirs:
        _same_value(ours[name], theirs[name], name)


# -- dtypes -----------------------------------------------------------------------------------

ENUMS = range(1, 34)
PROPERTIES = [
    "name",
    "as_datatype_enum",
    "is_floating",
    "is_integer",
    "is_unsigned",
    "is_complex",
    "is_quantized",
    "is_bool",
    "is_numeric",
    "is_numpy_compatible",
    "size",
]


def _attempt(fn):
    try:
        return ("ok", fn())
    except TypeError:
        return ("TypeError", None)


@pytest.mark.parametrize("enum", ENUMS)
def test_dtype_answers_like_tf_dtype(tf, enum):
    """Every property client code reads (kinds, size, name, enum, min/max with their types,
    real_dtype, as_numpy_dtype, str, hash) is TensorFlow's, and the two compare equal both
    ways."""
    theirs, ours = tf.as_dtype(enum), tfckpt.as_dtype(enum)
    for prop in PROPERTIES:
        assert getattr(ours, prop) == getattr(theirs, prop), (theirs.name, prop)
    for prop in ("min", "max"):
        mine, its = (
            _attempt(lambda p=prop: getattr(ours, p)),
            _attempt(lambda p=prop: getattr(theirs, p)),
        )
        assert mine[0] == its[0], (theirs.name, prop)
        if its[0] == "ok":
            assert type(mine[1]) is type(its[1]) and mine[1] == its[1], (theirs.name, prop)
    assert ours.real_dtype == theirs.real_dtype
    assert ours.base_dtype == theirs.base_dtype
    assert str(ours) == str(theirs)
    assert hash(ours) == hash(theirs)
    assert ours == theirs and theirs == ours
    assert (ours != theirs) is False and (theirs != ours) is False
    if theirs.is_numpy_compatible:  # (TensorFlow has no NumPy type for resource/variant)
        assert np.dtype(ours.as_numpy_dtype) == np.dtype(theirs.as_numpy_dtype)


CONVERTIBLE = [
    np.float32, np.float64, np.float16, np.int8, np.uint64, np.bool_, np.complex64,
    np.longlong, np.intc, np.uint, np.bytes_, np.str_, np.object_,
    np.dtype("<f4"), np.dtype(">f4"), np.dtype(">i8"), np.dtype("U3"), np.dtype("S2"),
    np.dtype([("qint8", "i1")]), np.dtype([("quint16", "<u2")]),
    ml_dtypes.bfloat16, ml_dtypes.int4, ml_dtypes.float8_e5m2,
    float, bool, object, int, complex, None,
    "float32", "float", "half", "double", "bfloat16", "qint8", "string", "f4", "int", "nope",
    1, 14, 33, 0, 99, 1000,
    np.zeros(2), np.zeros(2, np.int8), np.array([b"a"]),
]  # fmt: skip


@pytest.mark.parametrize("value", CONVERTIBLE, ids=repr)
def test_as_dtype_and_equality_follow_tf(tf, value):
    """as_dtype converts what tf.as_dtype converts, to the same type, and refuses (TypeError)
    what it refuses; every dtype compares equal to exactly the values TensorFlow's does."""
    theirs = _attempt(lambda: tf.as_dtype(value))
    ours = _attempt(lambda: tfckpt.as_dtype(value))
    assert ours[0] == theirs[0]
    if theirs[0] == "ok":
        assert ours[1].as_datatype_enum == theirs[1].as_datatype_enum
    for enum in ENUMS:
        assert (tfckpt.as_dtype(enum) == value) == (tf.as_dtype(enum) == value), enum
        assert (tfckpt.as_dtype(enum) != value) == (tf.as_dtype(enum) != value), enum


@pytest.mark.parametrize("key", sorted(PATHS))
def test_dtype_maps_compare_equal_to_tf(tf, key):
    """get_variable_to_dtype_map() of every checkpoint gives dtypes equal to TensorFlow's
    (both ways), with its names and enums, usable as keys of the same dicts."""
    theirs = tf.compat.v1.train.NewCheckpointReader(PATHS[key]).get_variable_to_dtype_map()
    ours = tf_compat.compat.v1.train.NewCheckpointReader(PATHS[key]).get_variable_to_dtype_map()
    assert sorted(ours) == sorted(theirs)
    for name, dtype in theirs.items():
        assert ours[name] == dtype and dtype == ours[name], name
        assert (ours[name].name, ours[name].as_datatype_enum) == (
            dtype.name,
            dtype.as_datatype_enum,
        )
        assert {dtype: 1}[ours[name]] == 1  # same hash, equal: interchangeable as keys


# -- debug_string -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(PATHS))
def test_debug_string_is_tfs(tf, key):
    """CheckpointReader.debug_string() is TensorFlow's bytes exactly (V2: key order, slice
    entries under their binary keys; V1: TensorFlow's hash-map order)."""
    theirs = tf.compat.v1.train.NewCheckpointReader(PATHS[key]).debug_string()
    assert tfckpt.load_checkpoint(PATHS[key]).debug_string() == theirs


@pytest.mark.parametrize("count", [1, 13, 14, 60, 300, 1500])
def test_debug_string_order_of_large_v1_checkpoints(tf, tmp_path, count):
    """V1 checkpoints of up to 1500 tensors over two files, some partitioned (rehashes at
    13, 29, 59, 127, 257, 541 and 1109 entries) list in TensorFlow's order."""
    rng = np.random.default_rng(count)
    shards = [V1File(), V1File()]
    for i in range(count):
        name = f"layer_{rng.integers(10**6)}/w{i}"
        if i % 7 == 3:  # partitioned across both files
            shards[0].add(name, 1, (4,), [(0, 2)], "float_val", [1.0, 2.0])
            shards[1].add(name, 1, (4,), [(2, 2)], "float_val", [3.0, 4.0])
        else:
            shards[i % 2].add(name, 3, (2,), [None], "int_val", [i, -i])
    for k, shard in enumerate(shards):
        shard.write(tmp_path / f"model.ckpt-{k:05d}-of-00002")
    prefix = str(tmp_path / "model.ckpt-?????-of-00002")  # as the TF1 Saver records it
    theirs = tf.compat.v1.train.NewCheckpointReader(prefix).debug_string()
    assert theirs.count(b"\n") == count
    assert tfckpt.load_checkpoint(prefix).debug_string() == theirs


# -- errors -----------------------------------------------------------------------------------


@pytest.fixture
def broken(tmp_path):
    """A directory of checkpoints broken in the ways a user meets."""
    good = tfckpt.save_tensors(tmp_path / "good" / "m", {"x": np.arange(4, dtype=np.float32)})
    (tmp_path / "empty").mkdir()
    (tmp_path / "dangling").mkdir()
    (tmp_path / "dangling" / "checkpoint").write_text('model_checkpoint_path: "gone"\n')
    shutil.copytree(tmp_path / "good", tmp_path / "nodata")
    os.remove(tmp_path / "nodata" / "m.data-00000-of-00001")
    shutil.copytree(tmp_path / "good", tmp_path / "truncated")
    with open(tmp_path / "truncated" / "m.index", "r+b") as f:
        f.truncate(30)
    shutil.copytree(tmp_path / "good", tmp_path / "flipped")
    with open(tmp_path / "flipped" / "m.data-00000-of-00001", "r+b") as f:
        f.write(b"\x01")
    (tmp_path / "notckpt").write_bytes(b"hello world" * 10)
    return types.SimpleNamespace(root=tmp_path, good=good)


ERROR_CASES = {
    "a prefix with no files": lambda m, b: m.train.load_checkpoint(str(b.root / "nope" / "m")),
    "a directory without a checkpoint": lambda m, b: m.train.load_checkpoint(str(b.root / "empty")),
    "a state file naming a missing checkpoint": lambda m, b: m.train.load_checkpoint(
        str(b.root / "dangling")
    ),
    "a tensor that is not there": lambda m, b: m.train.load_variable(b.good, "y"),
    "get_tensor of a missing name": lambda m, b: m.compat.v1.train.NewCheckpointReader(
        b.good
    ).get_tensor("y"),
    "a missing data file": lambda m, b: m.train.load_variable(str(b.root / "nodata" / "m"), "x"),
    "a truncated index": lambda m, b: m.train.load_checkpoint(str(b.root / "truncated" / "m")),
    "a checksum mismatch": lambda m, b: m.train.load_variable(str(b.root / "flipped" / "m"), "x"),
    "a file that is not a checkpoint": lambda m, b: m.train.load_checkpoint(
        str(b.root / "notckpt")
    ),
    "a variant tensor": lambda m, b: m.train.load_variable(PATHS["variant/ckpt"], "tensor_list"),
    "NewCheckpointReader of a missing prefix": lambda m, b: m.compat.v1.train.NewCheckpointReader(
        str(b.root / "nope")
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_errors_are_what_tf_code_catches(tf, broken, case):
    """For every failure TensorFlow reports, tfckpt raises an instance of the same class
    (its tf_compat twin for tf.errors classes; ValueError where TensorFlow raises
    ValueError), so client ``except`` clauses keep working."""
    call = ERROR_CASES[case]
    with pytest.raises(Exception) as theirs:
        call(tf, broken)
    with pytest.raises(_equivalent(type(theirs.value))) as ours:
        call(tf_compat, broken)
    assert isinstance(ours.value, tfckpt.CheckpointError)
    assert isinstance(ours.value, tf_compat.errors.OpError)


def test_deliberate_error_differences(tf, broken):
    """Where tfckpt differs on purpose (README, "Drop-in for tf.train"): a corrupt state file
    is DataLossError, not "no checkpoint"; a SavedModel directory and partitioned string
    variables are read; a ``.index`` path is refused instead of read as an empty V1 table."""
    corrupt = broken.root / "corrupt"
    corrupt.mkdir()
    (corrupt / "checkpoint").write_text("garbage {{{\n")
    assert tf.train.latest_checkpoint(str(corrupt)) is None
    with pytest.raises(tf_compat.errors.DataLossError):
        tf_compat.train.latest_checkpoint(str(corrupt))
    with pytest.raises(ValueError):
        tf.train.load_checkpoint(str(FIXTURES / "saved_model"))
    assert tf_compat.train.load_checkpoint(str(FIXTURES / "saved_model")).keys()
    with pytest.raises(ValueError, match="Dtype string not supported"):
        tf.train.load_variable(PATHS["partitioned/ckpt"], "model/vocab")
    assert tf_compat.train.load_variable(PATHS["partitioned/ckpt"], "model/vocab").shape == (7,)
    assert tf.train.load_checkpoint(broken.good + ".index").get_variable_to_shape_map() == {}
    with pytest.raises(tf_compat.errors.NotFoundError):
        tf_compat.train.load_checkpoint(broken.good + ".index")


def test_errors_namespace_is_tfs(tf):
    """tf_compat.errors has TensorFlow's classes (same names, codes, constructor and
    attributes) and constants."""
    for name in tf_compat.errors.__all__:
        theirs = getattr(tf.errors, name, None) or getattr(tf.compat.v1.errors, name)
        ours = getattr(tf_compat.errors, name)
        if isinstance(theirs, int):
            assert ours == theirs, name
        elif isinstance(theirs, type):
            public = [c.__name__ for c in ours.__mro__ if not c.__name__.startswith("_")]
            assert public == [c.__name__ for c in theirs.__mro__], name
            if name != "OpError":
                mine, its = ours(None, None, "m"), theirs(None, None, "m")
                assert (mine.error_code, str(mine), mine.message) == (
                    its.error_code,
                    str(its),
                    its.message,
                )
                assert (mine.op, mine.node_def, mine.experimental_payloads) == (None, None, {})


# -- the tf.train namespace -------------------------------------------------------------------


def test_namespace_names_exist_in_tf(tf):
    """Every name tf_compat offers exists at the same place in TensorFlow, with compatible
    parameters for the functions (TensorFlow's parameter names, in order)."""
    spaces = [
        (tf_compat.train, tf.train),
        (tf_compat.compat.v1.train, tf.compat.v1.train),
        (tf_compat.errors, tf.errors),
        (tf_compat.dtypes, tf.dtypes),
    ]
    for ours, theirs in spaces:
        for name in ours.__all__:
            assert hasattr(theirs, name) or hasattr(tf.compat.v1.errors, name), name
            mine, its = getattr(ours, name), getattr(theirs, name, None)
            if inspect.isfunction(mine) and inspect.isfunction(its):
                our_params = list(inspect.signature(mine).parameters)
                their_params = list(inspect.signature(its).parameters)
                assert our_params[: len(their_params)] == their_params, name
    for name in ("float32", "bool", "string", "half", "bfloat16", "qint8", "resource"):
        assert getattr(tf_compat, name) == getattr(tf, name)
    for name in vars(tf_compat.dtypes.experimental):
        assert getattr(tf_compat.dtypes.experimental, name) == getattr(tf.dtypes.experimental, name)
    unreferenced = {d for d in tf.dtypes.QUANTIZED_DTYPES if not d.name.endswith("_ref")}
    assert unreferenced == tf_compat.dtypes.QUANTIZED_DTYPES  # (tfckpt has no _ref types)
    assert list(inspect.signature(tf_compat.train.CheckpointOptions).parameters) == list(
        inspect.signature(tf.train.CheckpointOptions).parameters
    )


def _state_dirs() -> list[str]:
    dirs = {os.path.dirname(p) for p in PATHS.values()}
    return sorted(d for d in dirs if os.path.isfile(os.path.join(d, "checkpoint")))


def test_state_file_functions_agree_with_tf(tf, tmp_path):
    """get_checkpoint_state (printed as the proto), latest_checkpoint and checkpoint_exists
    agree with TensorFlow's on every fixture and corpus directory with a state file, on a
    CheckpointManager-written one (timestamps) and on one without a state file."""
    manager = tfckpt.CheckpointManager(tfckpt.Checkpoint(w={"a": np.zeros(2)}), tmp_path / "m")
    manager.save()
    manager.save()
    (tmp_path / "none").mkdir()
    for directory in [*_state_dirs(), str(tmp_path / "m"), str(tmp_path / "none")]:
        theirs = tf.train.get_checkpoint_state(directory)
        ours = tf_compat.train.get_checkpoint_state(directory)
        assert str(ours) == str(theirs), directory
        latest = tf.train.latest_checkpoint(directory)
        assert tf_compat.train.latest_checkpoint(directory) == latest, directory
        if latest is not None:
            assert tf_compat.compat.v1.train.checkpoint_exists(latest)
            assert tf.compat.v1.train.checkpoint_exists(latest)


# -- checkpoints_iterator ---------------------------------------------------------------------


class Timeline:
    """A fake clock on which checkpoints appear at scripted times while the iterator sleeps."""

    def __init__(self, directory, appearances: dict[float, str]) -> None:
        self.now = 1000.0
        self.directory = directory
        self.pending = sorted(appearances.items())
        self.log: list[tuple] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.log.append(("sleep", round(seconds, 6)))
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while self.pending and self.pending[0][0] <= self.now - 1000.0:
            _, name = self.pending.pop(0)
            tfckpt.save_tensors(os.path.join(self.directory, name), {"v": np.zeros(1)})
            write_state(self.directory, name, [name])

    def run(self, iterator_fn, **kwargs) -> list[tuple]:
        calls = []

        def timeout_fn():
            calls.append(round(self.now - 1000.0, 6))
            self.log.append(("timeout_fn", calls[-1]))
            return len(calls) >= 3

        for path in iterator_fn(self.directory, timeout_fn=timeout_fn, **kwargs):
            self.log.append(("yield", os.path.basename(path), round(self.now - 1000.0, 6)))
            self.advance(1.5)  # the caller's evaluation takes a while
        return self.log


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": 4}, {"timeout": 4, "min_interval_secs": 3}, {"timeout": 1.5}, {"timeout": 0.5}],
)
def test_checkpoints_iterator_follows_tfs_timeline(tf, tmp_path, monkeypatch, kwargs):
    """On one scripted timeline (checkpoints appearing at fixed times, a slow consumer, a
    timeout_fn that gives up on its third call) TensorFlow's and tfckpt's iterators yield
    the same checkpoints at the same times, sleep the same amounts and call timeout_fn at
    the same moments (TensorFlow calls it after every yield too)."""
    from tensorflow.python.training import checkpoint_utils

    appearances = {0.5: "ckpt-1", 2.2: "ckpt-2", 2.7: "ckpt-3", 11.0: "ckpt-4"}
    logs = []
    for name, setup in (("tf", "tf"), ("ours", "ours")):
        directory = tmp_path / name
        directory.mkdir()
        timeline = Timeline(str(directory), appearances)
        with monkeypatch.context() as patch:
            if setup == "tf":
                fake_time = types.SimpleNamespace(time=timeline.time, sleep=timeline.sleep)
                patch.setattr(checkpoint_utils, "time", fake_time)
                logs.append(timeline.run(tf.train.checkpoints_iterator, **kwargs))
            else:
                patch.setattr(polling, "_now", timeline.time)
                patch.setattr(polling, "_sleep", timeline.sleep)
                logs.append(timeline.run(tf_compat.train.checkpoints_iterator, **kwargs))
    assert logs[1] == logs[0]
    # (With a timeout under the 1 s poll interval neither ever sleeps, so nothing appears.)
    assert any(event[0] == "yield" for event in logs[0]) == (kwargs["timeout"] >= 1)
