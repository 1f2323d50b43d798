"""NumpyState's value as StringPieces (tfckpt.objects.numpy_state.serialize_pieces).

The pieces must concatenate to exactly what ``numpy.save`` writes (TensorFlow stores a
NumpyState attribute as that ``.npy`` file), for every layout and header format, and pass a
contiguous array's own memory rather than a copy.
"""

from __future__ import annotations

import io
import warnings

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tfckpt.objects.numpy_state import serialize_pieces


def _npy(value) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # format 3.0's warning
        np.save(buffer, value, allow_pickle=False)
    return buffer.getvalue()


with warnings.catch_warnings():
    warnings.simplefilter("ignore", PendingDeprecationWarning)  # np.matrix: np.save's asanyarray
    _MATRICES = [np.matrix([[1, 2], [3, 4]]), np.matrix([[1, 2], [3, 4]]).T]

NPY_CASES = [
    np.arange(12.0).reshape(3, 4),
    np.arange(12.0).reshape(3, 4).T,  # Fortran-contiguous
    np.arange(24).reshape(4, 6)[::2, 1::2],  # neither
    np.float32(3),
    np.array(5, ">i4"),
    np.zeros((0, 5)),
    np.asfortranarray(np.zeros((3, 0))),
    np.zeros((2, 3), [("a", "<i4"), ("b", ">f8")]),
    np.zeros((2,), "S5"),
    np.array(["ab", "c"]),
    np.ones((2, 2), bool),
    np.arange(4).astype(ml_dtypes.bfloat16),
    np.arange(6, dtype=np.complex128),
    *_MATRICES,
    np.zeros(2, [(f"field_{i}", "<i4") for i in range(5000)]),  # header in format 2.0
    np.zeros(2, [("é€", "<i4")]),  # format 3.0
]


@pytest.mark.parametrize("value", NPY_CASES, ids=lambda v: f"{v.dtype}-{np.shape(v)}"[:40])
@pytest.mark.filterwarnings("ignore:Stored array in format 3.0")
def test_serialize_pieces_equal_numpy_save(value):
    """Every memory layout, dtype kind and .npy header format."""
    pieces = serialize_pieces(value).pieces
    assert b"".join(bytes(memoryview(p)) for p in pieces) == _npy(value)


def test_serialize_pieces_do_not_copy_a_contiguous_array():
    """A C-contiguous array's piece is a view of its own memory."""
    array = np.arange(1000, dtype=np.float64)
    header, data = serialize_pieces(array).pieces
    assert isinstance(header, bytes)
    assert np.shares_memory(data, array)


def test_serialize_pieces_reject_object_arrays():
    """Object arrays would need pickling, which TensorFlow's NumpyState refuses too."""
    with pytest.raises(tfckpt.InvalidArgumentError, match="pickling"):
        serialize_pieces(np.array([object()]), "x")
