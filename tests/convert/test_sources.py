"""Reading checkpoints, safetensors and .npz files through one interface
(tfckpt.inspection.sources)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from tests.conftest import FIXTURES
from tfckpt.errors import DataLossError, TensorNotFoundError, UnsupportedError
from tfckpt.inspection.selection import Selection
from tfckpt.inspection.sources import NamedTensors, file_format, npy_spec, open_source, open_tensors

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def test_safetensors_float8_and_scalars(tmp_path):
    """float8 and bfloat16 tensors (which safetensors' NumPy path cannot make) and 0-d
    tensors read exactly, with their shapes."""
    values = {
        "f8": np.linspace(-2, 2, 12).astype(ml_dtypes.float8_e4m3fn).reshape(3, 4),
        "f8b": np.linspace(-2, 2, 5).astype(ml_dtypes.float8_e5m2),
        "bf": np.arange(4).astype(ml_dtypes.bfloat16),
        "scalar": np.array(2.5, np.float32),
    }
    path = tmp_path / "x.safetensors"
    safetensors_numpy.save_file(values, str(path))
    source = open_source(path)
    assert source.format == "safetensors"
    for name, value in values.items():
        read = source.read(name)
        assert read.dtype == value.dtype and read.shape == value.shape
        assert read.tobytes() == value.tobytes()
        assert source.spec(name).shape == value.shape
    assert source.spec("f8").dtype == "float8_e4m3fn"
    np.testing.assert_array_equal(source.read_region("f8", (slice(1, 2),)), values["f8"][1:2])
    source.close()


def test_not_a_safetensors_file(tmp_path):
    """A corrupt .safetensors file is a DataLossError naming it."""
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{nope")
    with pytest.raises(DataLossError, match="not a safetensors file"):
        open_source(path)


def test_npz_strings_objects_and_void(tmp_path):
    """In .npz: S and U arrays are string tensors (U as UTF-8), object arrays are refused
    (they need pickle), and bfloat16 written by numpy.save reads back as raw void bytes."""
    path = tmp_path / "x.npz"
    np.savez(
        path,
        s=np.array([b"a", b"bc"]),
        u=np.array(["é"]),
        o=np.array([{"a": 1}], dtype=object),
        v=np.arange(2).astype(ml_dtypes.bfloat16),
    )
    source = open_source(path)
    assert source.spec("s").dtype == "string" and source.read("s").tolist() == [b"a", b"bc"]
    assert source.read("u").tolist() == ["é".encode()]
    with pytest.raises(UnsupportedError, match="without pickle"):
        source.read("o")
    assert source.spec("v").dtype.startswith("numpy:")
    with pytest.raises(TensorNotFoundError):
        source.read("missing")
    source.close()


def test_format_from_content(tmp_path):
    """Files are recognised by content when their names do not say."""
    st = tmp_path / "weights.bin"
    safetensors_numpy.save_file({"a": np.zeros(2, np.float32)}, str(st))
    archive = tmp_path / "arrays.bin"
    with open(archive, "wb") as f:
        np.savez(f, a=np.zeros(2))
    assert file_format(st) == "safetensors" and file_format(archive) == "npz"
    assert file_format(FIXTURES / "dtypes" / "ckpt") is None
    assert file_format(FIXTURES / "dtypes" / "ckpt.index") is None


def test_named_tensors_decode_numpy_state():
    """By object path, NumpyState values read as their arrays; by key, as their bytes."""
    prefix = FIXTURES / "numpy_state" / "ckpt-1"
    with open_tensors(prefix, Selection(names="paths")) as tensors:
        assert tensors.spec("numpy_arrays/x").shape == (3, 4)
        assert tensors.read("numpy_arrays/x")[1, 2] == 4
        big = tensors.read("numpy_arrays/big_endian")
        assert big.dtype == np.dtype("=i4") and big.tolist() == [-2, -1, 0, 1, 2]
        assert tensors.origin("numpy_arrays/x").key == "numpy_arrays/x/.ATTRIBUTES/py_state"
    with NamedTensors(open_source(prefix)) as tensors:
        raw = tensors.read("numpy_arrays/x/.ATTRIBUTES/py_state")
        assert raw.dtype == object and raw[()].startswith(b"\x93NUMPY")


def test_npy_spec_reads_only_the_header():
    """npy_spec gives dtype and shape from the header alone (and None for other bytes)."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 3), np.int16))
    header = buffer.getvalue()[:128]
    assert npy_spec(header) == (np.dtype("<i2"), (2, 3))
    assert npy_spec(b"not numpy") is None
