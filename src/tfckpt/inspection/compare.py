"""Comparing the values of two checkpoints (or safetensors / ``.npz`` files).

:func:`diff` names, under checkpoint keys or object paths, the values only in A, only in B,
with a different dtype, with a different shape, with different values (how many elements,
the largest absolute and relative difference) and those that are equal.  ``tfckpt diff``
and :func:`tfckpt.testing.assert_checkpoints_equal` both print its :class:`DiffReport`.

Values are compared as ``numpy.isclose(a, b, rtol, atol, equal_nan=True)`` does (so with the
default tolerances of 0 only equal values pass, NaN equals NaN and -0.0 equals 0.0), except
that integers and booleans are compared exactly when both tolerances are 0; relative
differences are relative to B.  Large tensors are compared in chunks, from memory maps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfckpt.inspection.selection import Naming, Selection
from tfckpt.inspection.sources import NamedTensors, Spec, open_tensors

_CHUNK = 1 << 22  # elements compared at a time
_SUB_BYTE_INTEGERS = {"int4": np.int8, "int2": np.int8, "uint4": np.uint8, "uint2": np.uint8}


@dataclass(frozen=True)
class ValueDifference:
    """How the values of one tensor differ: ``differing`` of ``total`` elements, the largest
    absolute difference and the largest difference relative to B (None for strings and
    booleans)."""

    name: str
    differing: int
    total: int
    max_abs: float | None
    max_rel: float | None

    def describe(self) -> str:
        share = f"{100 * self.differing / self.total:.3g}%" if self.total else "-"
        text = f"{self.differing} of {self.total} elements differ ({share})"
        if self.max_abs is not None:
            text += f", max abs diff {self.max_abs:.6g}"
        if self.max_rel is not None:
            text += f", max rel diff {self.max_rel:.6g}"
        return text


@dataclass
class DiffReport:
    """The differences between checkpoints ``a`` and ``b`` (see :func:`diff`)."""

    a: str
    b: str
    names: str = "keys"
    rtol: float = 0.0
    atol: float = 0.0
    only_in_a: list[tuple[str, Spec]] = field(default_factory=list)
    only_in_b: list[tuple[str, Spec]] = field(default_factory=list)
    dtype_differs: list[tuple[str, Spec, Spec]] = field(default_factory=list)
    shape_differs: list[tuple[str, Spec, Spec]] = field(default_factory=list)
    values_differ: list[ValueDifference] = field(default_factory=list)
    equal: list[str] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)  # bookkeeping left out

    @property
    def same(self) -> bool:
        """True when nothing differs."""
        return not (
            self.only_in_a
            or self.only_in_b
            or self.dtype_differs
            or self.shape_differs
            or self.values_differ
        )

    def summary(self) -> str:
        """One line: ``EQUAL: ...`` or ``DIFFERENT: ...``."""
        tolerance = f"rtol={self.rtol:g}, atol={self.atol:g}"
        if self.same:
            return f"EQUAL: {len(self.equal)} tensors ({tolerance})"
        counts = [
            (len(self.only_in_a), "only in A"),
            (len(self.only_in_b), "only in B"),
            (len(self.dtype_differs), "with another dtype"),
            (len(self.shape_differs), "with another shape"),
            (len(self.values_differ), "with other values"),
            (len(self.equal), "equal"),
        ]
        parts = ", ".join(f"{n} {what}" for n, what in counts if n)
        return f"DIFFERENT: {parts} ({tolerance})"

    def format(self, limit: int | None = None) -> str:
        """The report as text, at most ``limit`` lines per section (None: all)."""
        lines = [f"--- A: {self.a}", f"+++ B: {self.b}"]

        def section(title: str, rows: Sequence[str]) -> None:
            if not rows:
                return
            lines.append(f"{title} ({len(rows)}):")
            shown = rows if limit is None else rows[:limit]
            lines.extend(f"  {row}" for row in shown)
            if len(shown) < len(rows):
                lines.append(f"  ... and {len(rows) - len(shown)} more")

        section("only in A", [f"{n}  {_spec(s)}" for n, s in self.only_in_a])
        section("only in B", [f"{n}  {_spec(s)}" for n, s in self.only_in_b])
        section(
            "dtype differs",
            [f"{n}  A: {_spec(a)}  B: {_spec(b)}" for n, a, b in self.dtype_differs],
        )
        section(
            "shape differs",
            [f"{n}  A: {_spec(a)}  B: {_spec(b)}" for n, a, b in self.shape_differs],
        )
        section("values differ", [f"{d.name}  {d.describe()}" for d in self.values_differ])
        if self.not_compared:
            lines.append(f"not compared (bookkeeping): {', '.join(self.not_compared)}")
        lines.append(self.summary())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""

        def spec(s: Spec) -> dict[str, Any]:
            return {"dtype": s.dtype, "shape": list(s.shape)}

        return {
            "a": self.a,
            "b": self.b,
            "names": self.names,
            "rtol": self.rtol,
            "atol": self.atol,
            "same": self.same,
            "only_in_a": [{"name": n, **spec(s)} for n, s in self.only_in_a],
            "only_in_b": [{"name": n, **spec(s)} for n, s in self.only_in_b],
            "dtype_differs": [
                {"name": n, "a": spec(a), "b": spec(b)} for n, a, b in self.dtype_differs
            ],
            "shape_differs": [
                {"name": n, "a": spec(a), "b": spec(b)} for n, a, b in self.shape_differs
            ],
            "values_differ": [
                {
                    "name": d.name,
                    "differing": d.differing,
                    "total": d.total,
                    "max_abs": _json_float(d.max_abs),
                    "max_rel": _json_float(d.max_rel),
                }
                for d in self.values_differ
            ],
            "equal": list(self.equal),
            "not_compared": list(self.not_compared),
        }


def _spec(spec: Spec) -> str:
    return f"{spec.dtype} {list(spec.shape)}"


def _json_float(value: float | None) -> float | str | None:
    if value is None or np.isfinite(value):
        return value
    return str(value)  # 'nan', 'inf': JSON has no such numbers


def diff(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    names: Naming = "keys",
    optimizer: bool = True,
    bookkeeping: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> DiffReport:
    """Compares the values of ``a`` and ``b`` (checkpoints, ``.safetensors`` or ``.npz``).

    ``names`` matches values by checkpoint key or by object path; ``optimizer=False``
    leaves optimizer state out; the object graph and save counter are compared only with
    ``bookkeeping=True``.  ``include``/``exclude`` are regular expressions on the names.

    Raises:
        CheckpointError: a file cannot be read (missing, corrupt).
        InvalidArgumentError: an invalid pattern or tolerance.

    Example::

        report = diff("before/ckpt-1", "after/ckpt-1", rtol=1e-6)
        print(report.format())
    """
    selection = Selection(
        names=names,
        optimizer=optimizer,
        bookkeeping=True,
        include=tuple(include),
        exclude=tuple(exclude),
    )
    with open_tensors(a, selection) as tensors_a, open_tensors(b, selection) as tensors_b:
        return compare_tensors(
            tensors_a, tensors_b, rtol=rtol, atol=atol, bookkeeping=bookkeeping, progress=progress
        )


def compare_tensors(
    a: NamedTensors,
    b: NamedTensors,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    bookkeeping: bool = False,
    progress: Callable[[int], None] | None = None,
) -> DiffReport:
    """:func:`diff` of two opened :class:`tfckpt.inspection.sources.NamedTensors`."""
    from tfckpt.errors import InvalidArgumentError

    if not (rtol >= 0 and atol >= 0):
        raise InvalidArgumentError(f"tolerances must be >= 0, got rtol={rtol} atol={atol}")
    report = DiffReport(a.path, b.path, a.selection.names, rtol, atol)
    names_b = set(b.names())
    for name in a.names():
        if not bookkeeping and a.origin(name).bookkeeping:
            report.not_compared.append(name)
            names_b.discard(name)
            continue
        spec_a = a.spec(name)
        if name not in names_b:
            report.only_in_a.append((name, spec_a))
            continue
        names_b.discard(name)
        spec_b = b.spec(name)
        if spec_a.dtype != spec_b.dtype:
            report.dtype_differs.append((name, spec_a, spec_b))
        elif spec_a.shape != spec_b.shape:
            report.shape_differs.append((name, spec_a, spec_b))
        else:
            found = compare_values(a.read(name), b.read(name), rtol, atol, spec_a.dtype)
            if found is None:
                report.equal.append(name)
            else:
                differing, max_abs, max_rel = found
                report.values_differ.append(
                    ValueDifference(name, differing, spec_a.size, max_abs, max_rel)
                )
        if progress is not None:
            progress(spec_a.nbytes or 0)
    for name in b.names():
        if name not in names_b:
            continue
        if not bookkeeping and b.origin(name).bookkeeping:
            report.not_compared.append(name)
            continue
        report.only_in_b.append((name, b.spec(name)))
    return report


def compare_values(
    a: np.ndarray, b: np.ndarray, rtol: float, atol: float, dtype: str = ""
) -> tuple[int, float | None, float | None] | None:
    """None when ``a`` and ``b`` (same dtype and shape) are equal within the tolerances, else
    (differing elements, max abs difference, max relative difference)."""
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    if a.dtype == object or a.dtype.fields is not None:  # strings, NumPy records
        differing = int(np.count_nonzero(flat_a != flat_b)) if flat_a.size else 0
        return (differing, None, None) if differing else None
    differing = 0
    max_abs: float | None = None
    max_rel: float | None = None
    exact = rtol == 0 and atol == 0
    for start in range(0, flat_a.size, _CHUNK):
        x = _comparable(flat_a[start : start + _CHUNK], dtype)
        y = _comparable(flat_b[start : start + _CHUNK], dtype)
        if x.dtype == bool:
            differing += int(np.count_nonzero(x != y))
            continue
        if exact and x.dtype.kind in "iu":
            apart = x != y
        else:
            apart = ~np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=True)
        count = int(np.count_nonzero(apart))
        if not count:
            continue
        differing += count
        xs, ys = x[apart], y[apart]
        if x.dtype.kind in "iu":  # exact differences (64-bit ones would overflow)
            gap = np.abs(xs.astype(object) - ys.astype(object)).astype(np.float64)
            xs, ys = xs.astype(np.float64), ys.astype(np.float64)
        else:
            wide = np.complex128 if x.dtype.kind == "c" else np.float64
            xs, ys = xs.astype(wide), ys.astype(wide)
            with np.errstate(invalid="ignore", over="ignore"):
                gap = np.abs(xs - ys)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            reference = np.abs(ys)
            relative = np.where(reference > 0, gap / np.where(reference > 0, reference, 1), np.nan)
        max_abs = _nanmax(max_abs, gap)
        max_rel = _nanmax(max_rel, relative)
    if not differing:
        return None
    if a.dtype == bool:
        return differing, None, None
    return differing, max_abs, max_rel


def _comparable(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` in a dtype NumPy computes with (ml_dtypes' floats as float32, sub-byte
    integers as 8-bit ones)."""
    if values.dtype.kind != "V":
        return values
    integer = _SUB_BYTE_INTEGERS.get(dtype) or _SUB_BYTE_INTEGERS.get(values.dtype.name)
    return values.astype(integer if integer is not None else np.float32)


def _nanmax(current: float | None, values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    if not finite.size:
        return current if current is not None else float("nan")
    found = float(finite.max())
    return found if current is None or np.isnan(current) else max(current, found)
