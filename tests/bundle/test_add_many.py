"""BundleWriter.add_many (what save_tensors uses): small native arrays are checksummed and
written in batches with gathered writes and their entries serialized together; the files
must equal those of add() one by one, and errors must leave the writer as add() would."""

from __future__ import annotations

import os

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfckpt
from tfckpt.bundle import writer as writer_module
from tfckpt.bundle.writer import BundleWriter, StringPieces
from tfckpt.errors import InvalidArgumentError

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


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("batch_count", [1, 3, 512])
def test_add_many_writes_the_files_add_writes(tmp_path, monkeypatch, big_endian, batch_count):
    monkeypatch.setattr(writer_module, "_BATCH_COUNT", batch_count)
    tensors = _mixed(np.random.default_rng(batch_count), 120)
    _one_by_one(tmp_path / "one", tensors, big_endian=big_endian)
    with BundleWriter(tmp_path / "many", big_endian=big_endian) as writer:
        writer.add_many(tensors.items())
    _assert_same_files(tmp_path / "one", tmp_path / "many")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0, 5000), min_size=1, max_size=60),
    st.sampled_from([1, 2, 7, 512]),
    st.sampled_from([64, 4096, 1 << 20]),
)
def test_batch_boundaries_by_count_and_bytes(tmp_path_factory, sizes, batch_count, batch_bytes):
    """Offsets, sizes (0 included: the field is omitted) and CRCs across batch limits."""
    tmp = tmp_path_factory.mktemp("b")
    rng = np.random.default_rng(len(sizes))
    tensors = {f"w{i}": rng.integers(0, 255, n).astype(np.uint8) for i, n in enumerate(sizes)}
    _one_by_one(tmp / "one", tensors)
    saved = writer_module._BATCH_COUNT, writer_module._BATCH_BYTES
    try:
        writer_module._BATCH_COUNT, writer_module._BATCH_BYTES = batch_count, batch_bytes
        tfckpt.save_tensors(tmp / "many", tensors)
    finally:
        writer_module._BATCH_COUNT, writer_module._BATCH_BYTES = saved
    _assert_same_files(tmp / "one", tmp / "many")


def test_save_tensors_reads_back_large_model(tmp_path):
    rng = np.random.default_rng(3)
    tensors = {
        f"layer_{i}/w": rng.standard_normal(i % 97 + 1).astype(np.float32) for i in range(3000)
    }
    tfckpt.save_tensors(tmp_path / "m", tensors)
    got = tfckpt.load_tensors(tmp_path / "m")
    assert list(got) == sorted(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(got[name], value)


def test_duplicate_name_inside_a_pending_batch(tmp_path):
    """The tensors before the duplicate are added, as with add() one by one."""
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


def test_bad_value_and_bad_name_keep_what_came_before(tmp_path):
    a = np.arange(3, dtype=np.float32)
    with BundleWriter(tmp_path / "m") as writer:
        with pytest.raises(InvalidArgumentError) as caught:
            writer.add_many([("a", a), ("b", a), ("bad", object())])
        assert caught.value.tensor == "bad"
        with pytest.raises(InvalidArgumentError):
            writer.add_many([("c", a), ("", a)])
    assert sorted(tfckpt.load_tensors(tmp_path / "m")) == ["a", "b", "c"]


def test_failing_iterable_keeps_what_came_before(tmp_path):
    def tensors():
        yield "a", np.ones(2, np.float32)
        yield "b", np.ones(3, np.float32)
        raise RuntimeError("producer failed")

    with BundleWriter(tmp_path / "m") as writer, pytest.raises(RuntimeError):
        writer.add_many(tensors())
    assert sorted(tfckpt.load_tensors(tmp_path / "m")) == ["a", "b"]


def test_failed_write_frees_the_names_and_aborts_cleanly(tmp_path, monkeypatch):
    def broken(fd, buffers):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "writev", broken)
    prefix = tmp_path / "m"
    writer = BundleWriter(prefix)
    writer.add("first", np.arange(2, dtype=np.float32))  # buffered: not through writev
    with pytest.raises(OSError, match="No space"):
        writer.add_many([("a", np.ones(2, np.float32)), ("b", np.ones(2, np.float32))])
    assert set(writer._entries) == {b"first"}
    writer.abort()
    assert not any(p.name.startswith("m") for p in tmp_path.iterdir())


@pytest.mark.parametrize("short_by", [1, 4, 13, 1000])
def test_short_gathered_write_is_completed(tmp_path, monkeypatch, short_by):
    real = os.writev

    def short(fd, buffers):
        data = b"".join(np.asarray(b).reshape(-1).view(np.uint8).tobytes() for b in buffers)
        return real(fd, [data[: max(0, len(data) - short_by)]])

    tensors = {f"t{i}": np.arange(i + 1, dtype=np.int32) for i in range(40)}
    tensors["bf"] = np.arange(6).astype(ml_dtypes.bfloat16)
    _one_by_one(tmp_path / "one", tensors)
    monkeypatch.setattr(os, "writev", short)
    tfckpt.save_tensors(tmp_path / "many", tensors)
    _assert_same_files(tmp_path / "one", tmp_path / "many")


def test_without_writev_everything_goes_through_add(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_module, "_HAS_WRITEV", False)
    monkeypatch.setattr(os, "writev", None, raising=False)
    tensors = {f"t{i}": np.arange(i, dtype=np.float32) for i in range(30)}
    _one_by_one(tmp_path / "one", tensors)
    tfckpt.save_tensors(tmp_path / "many", tensors)
    _assert_same_files(tmp_path / "one", tmp_path / "many")
