"""BundleWriter's one write path: add() is a batch of one, add_many() batches many tensors.

Whatever the batching and the write strategy (small batches staged in the write buffer,
large ones written with os.writev straight from the arrays while the shared pool checksums
them), the files must equal those of add() one by one, errors must leave the writer as add()
would, and what is stored must be what was added.  (Byte identity with TensorFlow's SaveV2
is tests/tf/test_byte_identical.py's job.)
"""

from __future__ import annotations

import os

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfckpt
from tfckpt.bundle import output as output_module
from tfckpt.bundle import write_batch
from tfckpt.bundle.writer import BundleWriter, StringPieces
from tfckpt.errors import InvalidArgumentError
from tfckpt.storage import commit as commit_module

SUFFIXES = (".index", ".data-00000-of-00001")


def _mixed(rng: np.random.Generator, count: int) -> dict[str, object]:
    """Tensors of every kind add() handles, in a deliberately unsorted order."""
    kinds = [
        lambda: rng.standard_normal(int(rng.integers(1, 300))).astype(np.float32),
        lambda: rng.integers(0, 9, (3, 4)).astype(np.int64),
        lambda: np.arange(5).astype(ml_dtypes.bfloat16),
        lambda: np.array([1, -2, 3], ml_dtypes.int4),
        lambda: np.array(2.5),  # 0-d
        lambda: np.zeros((0, 3), np.int16),  # empty
        lambda: np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2],  # not contiguous
        lambda: np.array([b"ab", b"", b"\0c"], object),  # strings
        lambda: [1.0, 2.0],  # converted by to_array
        lambda: np.array([True, False]),
        lambda: rng.standard_normal(300_000).astype(np.float32),  # >= the batch byte limit
        lambda: StringPieces([b"x", np.arange(3, dtype=np.uint8)]),
        lambda: np.array([1 + 2j], np.complex64),
    ]
    out: dict[str, object] = {}
    for i in range(count):
        out[f"t/{(i * 7919) % count:05d}/{i % len(kinds)}"] = kinds[i % len(kinds)]()
    return out


def _one_by_one(prefix, tensors, **options):
    with BundleWriter(prefix, **options) as writer:
        for name, value in tensors.items():
            writer.add(name, value)


def _assert_same_files(a, b):
    for suffix in SUFFIXES:
        with open(f"{a}{suffix}", "rb") as fa, open(f"{b}{suffix}", "rb") as fb:
            assert fa.read() == fb.read(), suffix


def _count_writev(monkeypatch) -> list[int]:
    """Counts os.writev calls (each call appends its number of buffers)."""
    calls: list[int] = []
    real = os.writev

    def counting(fd, buffers):
        calls.append(len(buffers))
        return real(fd, buffers)

    monkeypatch.setattr(os, "writev", counting)
    return calls


# -- add_many equals add one by one -------------------------------------------------------


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("batch_buffers", [1, 3, 512])
def test_add_many_writes_the_files_add_writes(tmp_path, monkeypatch, big_endian, batch_buffers):
    """Every kind of value, in both byte orders, batched by buffer count or not at all."""
    monkeypatch.setattr(write_batch, "BATCH_BUFFERS", batch_buffers)
    tensors = _mixed(np.random.default_rng(batch_buffers), 120)
    _one_by_one(tmp_path / "one", tensors, big_endian=big_endian)
    with BundleWriter(tmp_path / "many", big_endian=big_endian) as writer:
        writer.add_many(tensors.items())
    _assert_same_files(tmp_path / "one", tmp_path / "many")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0, 5000), min_size=1, max_size=60),
    st.sampled_from([1, 2, 7, 512]),
    st.sampled_from([64, 4096, 1 << 20]),
    st.sampled_from([1, 1000, 256 << 10]),
)
def test_batch_boundaries_and_write_strategies(
    tmp_path_factory, sizes, batch_buffers, batch_bytes, large_write
):
    """Offsets, sizes (0 included: the field is omitted) and CRCs across batch limits, with
    batches staged or written directly depending on their size."""
    tmp = tmp_path_factory.mktemp("b")
    rng = np.random.default_rng(len(sizes))
    tensors = {f"w{i}": rng.integers(0, 255, n).astype(np.uint8) for i, n in enumerate(sizes)}
    _one_by_one(tmp / "one", tensors)
    saved = write_batch.BATCH_BUFFERS, write_batch.BATCH_BYTES, output_module.LARGE_WRITE
    try:
        write_batch.BATCH_BUFFERS = batch_buffers
        write_batch.BATCH_BYTES = batch_bytes
        output_module.LARGE_WRITE = large_write
        tfckpt.save_tensors(tmp / "many", tensors)
    finally:
        write_batch.BATCH_BUFFERS, write_batch.BATCH_BYTES, output_module.LARGE_WRITE = saved
    _assert_same_files(tmp / "one", tmp / "many")


def test_small_batches_are_staged_and_large_ones_gathered(tmp_path, monkeypatch):
    """Many small arrays go out in a few os.writev calls of many buffers each; one small
    add() does not call os.writev at all (it is staged); one large add() does."""
    calls = _count_writev(monkeypatch)
    tensors = {f"t{i}": np.full(300, i, np.float32) for i in range(2000)}  # 2.3 MiB
    tfckpt.save_tensors(tmp_path / "many", tensors)
    assert 1 < len(calls) < 10 and max(calls) > 100
    calls.clear()
    with BundleWriter(tmp_path / "one") as writer:
        writer.add("small", np.ones(10, np.float32))
        assert calls == []
        writer.add("large", np.ones(1 << 20, np.float32))
        assert calls == [1]


def test_save_tensors_reads_back_large_model(tmp_path):
    """3,000 tensors (several batches) read back by name with the values added."""
    rng = np.random.default_rng(3)
    tensors = {
        f"layer_{i}/w": rng.standard_normal(i % 97 + 1).astype(np.float32) for i in range(3000)
    }
    tfckpt.save_tensors(tmp_path / "m", tensors)
    got = tfckpt.load_tensors(tmp_path / "m")
    assert list(got) == sorted(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(got[name], value)


@pytest.mark.parametrize("big_endian", [False, True])
def test_stored_as_is_and_converted_arrays_write_the_same_files(tmp_path, big_endian):
    """An array stored from its own memory and the same array through to_array (forced by
    passing its dtype) give the same files, and read back equal."""
    values = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "u8": np.arange(5, dtype=np.uint8),
        "bf16": np.arange(4).astype(ml_dtypes.bfloat16),
        "c64": np.array([1 + 2j], np.complex64),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 4), np.int16),
    }
    with BundleWriter(tmp_path / "as_is", big_endian=big_endian) as writer:
        for name, value in values.items():
            writer.add(name, value)
    with BundleWriter(tmp_path / "converted", big_endian=big_endian) as writer:
        for name, value in values.items():
            writer.add(name, value, dtype=tfckpt.dtypes.from_numpy(value.dtype))
    _assert_same_files(tmp_path / "as_is", tmp_path / "converted")
    reader = tfckpt.load_checkpoint(tmp_path / "as_is")
    for name, value in values.items():
        np.testing.assert_array_equal(reader.get_tensor(name), value)


def test_array_mutated_after_add_keeps_the_added_values(tmp_path):
    """add() has written (or staged a copy of) the array when it returns."""
    array = np.arange(10, dtype=np.float32)
    with BundleWriter(tmp_path / "m") as writer:
        writer.add("a", array)
        array[:] = -1
        writer.add("b", array)
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    np.testing.assert_array_equal(reader.get_tensor("a"), np.arange(10, dtype=np.float32))
    np.testing.assert_array_equal(reader.get_tensor("b"), -np.ones(10, np.float32))


def test_large_tensors_checksummed_on_the_pool(tmp_path, monkeypatch):
    """With every batch counted as large, arrays and StringPieces are checksummed on the
    shared pool beside the write, and the stored CRCs still verify."""
    monkeypatch.setattr(output_module, "LARGE_WRITE", 1024)
    submitted = []
    real_pool = output_module.shared_pool

    def counting_pool():
        pool = real_pool()
        submitted.append(pool)
        return pool

    monkeypatch.setattr(output_module, "shared_pool", counting_pool)
    value = np.random.default_rng(0).random(10_000)
    pieces = StringPieces([b"head", np.arange(5000, dtype=np.uint8)])
    with BundleWriter(tmp_path / "m") as writer:
        writer.add("x", value)
        writer.add("p", pieces)
    assert len(submitted) == 2
    data = (tmp_path / "m.data-00000-of-00001").read_bytes()
    assert data[: value.nbytes] == value.tobytes()
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    np.testing.assert_array_equal(reader.get_tensor("x"), value)  # CRC checked
    assert reader.get_tensor("p") == b"head" + np.arange(5000, dtype=np.uint8).tobytes()


def test_many_small_tensors_index_entries_decode_as_protobuf(tmp_path):
    """300 entries serialized together read back with their shapes and values."""
    values = {f"model/layer_{i}/w": np.full(i % 7, i, np.float32) for i in range(300)}
    tfckpt.save_tensors(tmp_path / "m", values)
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    assert reader.get_variable_to_shape_map() == {k: list(v.shape) for k, v in values.items()}
    for name, value in values.items():
        np.testing.assert_array_equal(reader.get_tensor(name), value)


# -- string tensors -----------------------------------------------------------------------


def test_string_pieces_equal_a_joined_scalar_string(tmp_path):
    """StringPieces are written without joining, as the joined bytes would be."""
    with BundleWriter(tmp_path / "pieces") as writer:
        writer.add("s", StringPieces([b"ab", np.frombuffer(b"cd", np.uint8), b""]))
    with BundleWriter(tmp_path / "joined") as writer:
        writer.add("s", b"abcd")
    _assert_same_files(tmp_path / "pieces", tmp_path / "joined")


def test_empty_string_pieces_equal_an_empty_string(tmp_path):
    """No pieces at all is the empty scalar string."""
    with BundleWriter(tmp_path / "pieces") as writer:
        writer.add("s", StringPieces([]))
    with BundleWriter(tmp_path / "joined") as writer:
        writer.add("s", b"")
    _assert_same_files(tmp_path / "pieces", tmp_path / "joined")


def test_string_pieces_are_string_tensors_only(tmp_path):
    """StringPieces with a non-string dtype, or with a non-contiguous array, are refused."""
    with BundleWriter(tmp_path / "m") as writer:
        writer.add("ok", StringPieces([b"x"]), dtype="string")
        with pytest.raises(InvalidArgumentError, match="string tensor"):
            writer.add("bad", StringPieces([b"x"]), dtype="float32")
        with pytest.raises(InvalidArgumentError, match="C-contiguous") as info:
            writer.add("strided", StringPieces([np.arange(6, dtype=np.uint8)[::2]]))
        assert info.value.tensor == "strided"


@pytest.mark.parametrize("long", [10, 300])
def test_saved_string_tensors_round_trip(tmp_path, long):
    """Bytes with NULs, non-contiguous and 2-D arrays, str (UTF-8), empty and scalar."""
    base = np.array([b"a\0b", b"", b"\0\0", b"x" * long, b"end\0"] * 3, dtype=object)
    values = {
        "flat": base,
        "strided": base.reshape(3, 5)[:, ::2],  # not contiguous, 2-D
        "text": np.array(["é", "", "z" * long], dtype=object),
        "empty": np.zeros((0, 2), dtype=object),
        "scalar": b"\0" * long,
    }
    tfckpt.save_tensors(tmp_path / "m", values)
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    expected_text = np.array([s.encode() for s in values["text"]], dtype=object)
    for name, value in values.items():
        want = expected_text if name == "text" else np.asarray(value, dtype=object)
        got = reader.get_tensor(name)
        assert np.shape(got) == want.shape
        assert np.asarray(got, dtype=object).tolist() == want.tolist()


def test_string_tensor_larger_than_one_gathered_write(tmp_path, monkeypatch):
    """A string tensor of more pieces than one os.writev takes is written in groups."""
    monkeypatch.setattr(write_batch, "BATCH_BUFFERS", 4)
    monkeypatch.setattr(output_module, "LARGE_WRITE", 1)
    strings = np.array([bytes([i % 251]) * (i % 50) for i in range(40_000)], object)
    tfckpt.save_tensors(tmp_path / "m", {"s": strings})
    assert tfckpt.load_checkpoint(tmp_path / "m").get_tensor("s").tolist() == strings.tolist()


def test_string_tensor_of_other_values_is_rejected_by_name(tmp_path):
    """An int among the bytes is an error that names the tensor."""
    with (
        BundleWriter(tmp_path / "m") as writer,
        pytest.raises(InvalidArgumentError, match="'bad'"),
    ):
        writer.add("bad", np.array([b"a", 3], dtype=object))


# -- errors -------------------------------------------------------------------------------


def test_duplicate_name_inside_a_pending_batch(tmp_path):
    """A name repeated within one add_many batch is refused; the tensors before it are
    added, as with add() one by one."""
    a = np.arange(3, dtype=np.float32)
    with BundleWriter(tmp_path / "m") as writer:
        with pytest.raises(InvalidArgumentError, match="added twice") as caught:
            writer.add_many([("a", a), ("b", a * 2), ("a", a * 3)])
        assert caught.value.tensor == "a"
        writer.add("c", a * 4)
    got = tfckpt.load_tensors(tmp_path / "m")
    assert sorted(got) == ["a", "b", "c"]
    np.testing.assert_array_equal(got["a"], a)
    np.testing.assert_array_equal(got["c"], a * 4)


def test_duplicate_and_invalid_names_and_a_finished_writer(tmp_path):
    """Names are checked in add() whatever the value; a finished writer refuses more."""
    with BundleWriter(tmp_path / "m") as writer:
        writer.add("t", np.zeros(3, np.float32))
        with pytest.raises(InvalidArgumentError, match="added twice"):
            writer.add("t", np.zeros(3, np.float32))
        for bad in ("", 5):
            with pytest.raises(InvalidArgumentError, match="non-empty strings"):
                writer.add(bad, np.zeros(3, np.float32))
    with pytest.raises(InvalidArgumentError, match="finished"):
        writer.add("u", np.zeros(3, np.float32))


def test_bad_value_and_bad_name_keep_what_came_before(tmp_path):
    """add_many stops at a bad value or name; the tensors before it are added."""
    a = np.arange(3, dtype=np.float32)
    with BundleWriter(tmp_path / "m") as writer:
        with pytest.raises(InvalidArgumentError) as caught:
            writer.add_many([("a", a), ("b", a), ("bad", object())])
        assert caught.value.tensor == "bad"
        with pytest.raises(InvalidArgumentError):
            writer.add_many([("c", a), ("", a)])
    assert sorted(tfckpt.load_tensors(tmp_path / "m")) == ["a", "b", "c"]


def test_failing_iterable_keeps_what_came_before(tmp_path):
    """An exception from the caller's iterable propagates; what it yielded is added."""

    def tensors():
        yield "a", np.ones(2, np.float32)
        yield "b", np.ones(3, np.float32)
        raise RuntimeError("producer failed")

    with BundleWriter(tmp_path / "m") as writer, pytest.raises(RuntimeError):
        writer.add_many(tensors())
    assert sorted(tfckpt.load_tensors(tmp_path / "m")) == ["a", "b"]


def test_failed_write_frees_the_names_and_aborts_cleanly(tmp_path, monkeypatch):
    """A batch whose gathered write fails records no entry; abort removes every file."""

    def broken(fd, buffers):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "writev", broken)
    prefix = tmp_path / "m"
    writer = BundleWriter(prefix)
    writer.add("first", np.arange(2, dtype=np.float32))  # staged: not through writev
    large = np.ones(200_000, np.float32)
    with pytest.raises(OSError, match="No space"):
        writer.add_many([("a", large), ("b", large)])
    assert set(writer._entries) == {b"first"}
    writer.abort()
    assert not any(p.name.startswith("m") for p in tmp_path.iterdir())


@pytest.mark.parametrize("short_by", [1, 4, 13, 1000])
def test_short_gathered_write_is_completed(tmp_path, monkeypatch, short_by):
    """What a short os.writev leaves is written through the buffered stream, in order."""
    real = os.writev
    calls = []

    def short(fd, buffers):
        calls.append(len(buffers))
        data = b"".join(np.asarray(b).reshape(-1).view(np.uint8).tobytes() for b in buffers)
        return real(fd, [data[: max(0, len(data) - short_by)]])

    tensors = {f"t{i}": np.arange(i + 1, dtype=np.int32) for i in range(40)}
    tensors["bf"] = np.arange(6).astype(ml_dtypes.bfloat16)
    tensors["s"] = np.array([b"abc", b"", b"defg"] * 50, object)
    _one_by_one(tmp_path / "one", tensors)
    monkeypatch.setattr(output_module, "LARGE_WRITE", 1)
    monkeypatch.setattr(os, "writev", short)
    tfckpt.save_tensors(tmp_path / "many", tensors)
    assert calls
    _assert_same_files(tmp_path / "one", tmp_path / "many")


def test_without_writev_everything_is_staged_or_passed_through(tmp_path, monkeypatch):
    """Where os.writev does not exist, small and large tensors alike go through the
    buffered stream, with the same files."""
    monkeypatch.setattr(commit_module, "_HAS_WRITEV", False)
    monkeypatch.setattr(os, "writev", None, raising=False)
    tensors = {f"t{i}": np.arange(i, dtype=np.float32) for i in range(30)}
    tensors["large"] = np.arange(1 << 20, dtype=np.float32)
    _one_by_one(tmp_path / "one", tensors)
    tfckpt.save_tensors(tmp_path / "many", tensors)
    _assert_same_files(tmp_path / "one", tmp_path / "many")


def test_non_contiguous_native_array_takes_the_converting_path(tmp_path):
    """A strided view of a native dtype is copied to C order and stored."""
    value = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    tfckpt.save_tensors(tmp_path / "m", {"v": value})
    np.testing.assert_array_equal(tfckpt.load_checkpoint(tmp_path / "m").get_tensor("v"), value)


def test_slice_after_whole_tensor_is_rejected(tmp_path):
    """A name added whole cannot take slices later."""
    with BundleWriter(tmp_path / "m") as writer:
        writer.add("t", np.zeros(4, np.float32))
        with pytest.raises(InvalidArgumentError, match="already added whole"):
            writer.add_slice("t", [8], "0,4", np.zeros(4, np.float32))


def test_slices_that_disagree_or_repeat_are_rejected(tmp_path):
    """A second slice must share the dtype and full shape and not repeat an extent; the
    slices accepted are all listed and readable."""
    with BundleWriter(tmp_path / "m") as writer:
        writer.add_slice("p", [4], "0,2", np.zeros(2, np.float32))
        with pytest.raises(InvalidArgumentError, match="disagree"):
            writer.add_slice("p", [4], "2,2", np.zeros(2, np.int32))
        with pytest.raises(InvalidArgumentError, match="disagree"):
            writer.add_slice("p", [5], "2,2", np.zeros(2, np.float32))
        with pytest.raises(InvalidArgumentError, match="added twice"):
            writer.add_slice("p", [4], "0,2", np.zeros(2, np.float32))
        writer.add_slice("p", [4], "2,2", np.ones(2, np.float32))
    np.testing.assert_array_equal(
        tfckpt.load_checkpoint(tmp_path / "m").get_tensor("p"), [0, 0, 1, 1]
    )
