"""Branches of the string save path: lengths taken as bytes (and the uint64 fallback for a
length of 256 or more), varints of such lengths, the fallbacks for str and rejected elements;
and the BundleWriter checks around it."""

from __future__ import annotations

import numpy as np
import pytest

import tfckpt
from tfckpt.bundle.strings import (
    decode_strings,
    encode_string_chunks,
    encode_strings,
    encode_varints,
    string_lengths,
)
from tfckpt.bundle.writer import BundleWriter
from tfckpt.table.format import encode_varint  # checked against the byte loop elsewhere


def _reference_encoding(strings: list[bytes]) -> bytes:
    pieces, _ = encode_strings(strings)
    return b"".join(pieces)


@pytest.mark.parametrize(
    ("sizes", "dtype"),
    [([], np.uint8), ([0, 1, 127], np.uint8), ([128, 255], np.uint8), ([255, 256], np.uint64),
     ([300, 0, 70_000], np.uint64)],
)  # fmt: skip
def test_string_lengths_narrow_and_wide(sizes, dtype):
    lengths = string_lengths([b"\0" * n for n in sizes])
    assert lengths.dtype == dtype
    assert lengths.tolist() == sizes


def test_string_lengths_reject_elements_without_len():
    with pytest.raises(TypeError):
        string_lengths([b"a", 5])


def test_varints_of_uint8_lengths_of_two_bytes():
    lengths = np.array([0, 127, 128, 200, 255], np.uint8)
    assert encode_varints(lengths) == b"".join(encode_varint(int(n)) for n in lengths)


@pytest.mark.parametrize("count", [1, 5000])
@pytest.mark.parametrize("long", [0, 128, 255, 256, 300, 70_000])
def test_string_chunks_with_a_long_string(count, long):
    strings = [bytes([i % 3]) * (i % 9) for i in range(count)]  # NUL bytes included
    strings[count // 2] = b"\0x" * (long // 2) + b"\0" * (long % 2)
    chunks, crc = encode_string_chunks(strings)
    data = b"".join(chunks)
    assert data == _reference_encoding(strings)
    assert decode_strings(data, count) == (strings, crc)


@pytest.mark.parametrize("long", [10, 300])
def test_saved_string_tensors_round_trip(tmp_path, long):
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


def test_string_tensor_of_other_values_is_rejected_by_name(tmp_path):
    with (
        BundleWriter(tmp_path / "m") as writer,
        pytest.raises(tfckpt.InvalidArgumentError, match="'bad'"),
    ):
        writer.add("bad", np.array([b"a", 3], dtype=object))


def test_duplicate_and_invalid_names_still_rejected(tmp_path):
    with BundleWriter(tmp_path / "m") as writer:
        writer.add("t", np.zeros(3, np.float32))
        with pytest.raises(tfckpt.InvalidArgumentError, match="added twice"):
            writer.add("t", np.zeros(3, np.float32))
        for bad in ("", 5):
            with pytest.raises(tfckpt.InvalidArgumentError, match="non-empty strings"):
                writer.add(bad, np.zeros(3, np.float32))
    with pytest.raises(tfckpt.InvalidArgumentError, match="finished"):
        writer.add("u", np.zeros(3, np.float32))


def test_non_contiguous_native_array_takes_the_converting_path(tmp_path):
    value = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    tfckpt.save_tensors(tmp_path / "m", {"v": value})
    np.testing.assert_array_equal(tfckpt.load_checkpoint(tmp_path / "m").get_tensor("v"), value)
