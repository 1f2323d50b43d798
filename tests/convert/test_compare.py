"""How values are compared (tfckpt.inspection.compare): tolerances, NaN, integers, narrow floats,
strings, chunks; and the report's text."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tfckpt.errors import InvalidArgumentError
from tfckpt.inspection.compare import compare_values, diff


def test_exact_by_default_nan_equals_nan_and_zeros_equal():
    """With no tolerance only equal values pass; NaN == NaN and -0.0 == 0.0, as
    numpy.isclose(equal_nan=True) says."""
    a = np.array([np.nan, -0.0, np.inf, 1.0])
    assert compare_values(a, np.array([np.nan, 0.0, np.inf, 1.0]), 0, 0) is None
    count, max_abs, _ = compare_values(a, np.array([np.nan, 0.0, -np.inf, 1.0]), 0, 0)
    assert count == 1 and max_abs == np.inf
    count, max_abs, _ = compare_values(a, np.array([1.0, 0.0, np.inf, 1.0]), 0, 0)
    assert count == 1 and np.isnan(max_abs)  # NaN against a number: no magnitude to give


def test_tolerances_and_relative_to_b():
    """atol and rtol as numpy.isclose; the relative difference is relative to B."""
    a, b = np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.5, 5.0])
    assert compare_values(a, b, 0, 0) == (2, 1.0, 0.2)
    assert compare_values(a, b, 0, 1.0) is None
    assert compare_values(a, b, 0.2, 0) is None
    assert compare_values(a, b, 0.19, 0.03) == (1, 1.0, 0.2)  # 1 > 0.03 + 0.19 * 5


def test_integers_exact_even_beyond_float_precision():
    """Integers are compared exactly with no tolerance (2**62 and 2**62 + 1 differ)."""
    assert compare_values(np.array([2**62]), np.array([2**62 + 1]), 0, 0) == (1, 1.0, 1 / 2**62)
    assert compare_values(np.array([1, 2], np.uint8), np.array([1, 2], np.uint8), 0, 0) is None


def test_narrow_floats_bools_strings_complex_records():
    """bfloat16 and float8 compare as float32; booleans and strings count differing
    elements without magnitudes; complex numbers by modulus; NumPy records by element."""
    a = np.array([1, 2, 3], ml_dtypes.bfloat16)
    assert compare_values(a, np.array([1, 2, 4], ml_dtypes.bfloat16), 0, 0, "bfloat16") == (
        1,
        1.0,
        0.25,
    )
    assert compare_values(np.array([True, False]), np.array([True, True]), 0, 0) == (1, None, None)
    words = np.array([b"a", b"b"], dtype=object)
    assert compare_values(words, np.array([b"a", b"c"], dtype=object), 0, 0) == (1, None, None)
    z = compare_values(np.array([1 + 1j]), np.array([1 + 2j]), 0, 0)
    assert z is not None and z[1] == 1.0
    records = np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])
    assert compare_values(records, records.copy(), 0, 0) is None
    int4 = np.array([-8, 7], ml_dtypes.int4)
    assert compare_values(int4, np.array([-8, 6], ml_dtypes.int4), 0, 0, "int4") == (1, 1.0, 1 / 6)


def test_large_tensors_are_compared_in_chunks():
    """Differences in different chunks are all counted, the maxima taken over all."""
    a = np.zeros(9_000_000, np.float32)
    b = a.copy()
    b[[5, 4_200_000, 8_999_999]] = [1.0, 3.0, 2.0]
    assert compare_values(a, b, 0, 0) == (3, 3.0, 1.0)


def test_report_text_limits_sections(tmp_path):
    """format(limit=N) shows N lines per section and says how many more."""
    a = tfckpt.save_tensors(tmp_path / "a", {f"t{i}": np.zeros(1) for i in range(5)})
    b = tfckpt.save_tensors(tmp_path / "b", {"other": np.zeros(1)})
    report = diff(a, b)
    text = report.format(limit=2)
    assert "only in A (5):\n  t0  float64 [1]\n  t1  float64 [1]\n  ... and 3 more" in text
    assert not report.same and report.summary().startswith("DIFFERENT: 5 only in A, 1 only in B")


def test_negative_tolerance_is_refused(tmp_path):
    """Tolerances must be >= 0."""
    a = tfckpt.save_tensors(tmp_path / "a", {"x": np.zeros(1)})
    with pytest.raises(InvalidArgumentError):
        diff(a, a, rtol=-1)
