"""What counts as a correct outcome of one read, and how values are compared.

An operation either returns a value, summarised by :func:`digest` (a hash of its type,
dtype, shape and bytes, walked iteratively so that a 100k-deep tree or a cyclic one does
not recurse), or raises.  :func:`classify` turns that into an :class:`Outcome`:

* ``value``: compared with the digest of the same operation on the unmutated seed;
* ``error``: a :class:`tfckpt.CheckpointError` that names the file (``path``) and says what
  was wrong, with no MemoryError hidden in its context (a failed giant allocation turned
  into an error is still an allocation the file could not justify);
* ``bad``: anything else: another exception type, an inconsistent value, an error without
  a location.

:func:`judge` applies the expectations of a case to an outcome.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

import tfckpt


class Inconsistent(Exception):
    """An operation returned a value that contradicts what the reader itself reported
    (a shape or dtype other than the listed one); always a bug."""


@dataclass(frozen=True)
class Outcome:
    """``kind`` is "value", "error" or "bad"; ``detail`` is the value's digest, the error's
    class name, or what went wrong."""

    kind: str
    detail: str
    message: str = ""


def digest(value: Any) -> str:
    """A hash of a value's type, dtype, shape and contents (arrays, scalars, bytes, str,
    numbers, None, and dicts/lists/tuples of them, shared or cyclic ones included: a part
    reached again is hashed as a reference to its first place)."""
    h = hashlib.blake2b(digest_size=16)
    seen: dict[int, int] = {}
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Marker):
            h.update(item.tag)
            continue
        if id(item) in seen:  # shared (or cyclic): hashed once, then referred to
            h.update(b"ref%d" % seen[id(item)])
            continue
        if isinstance(item, (bytes, bytearray, memoryview, np.ndarray, dict, list, tuple)):
            seen[id(item)] = len(seen)
        if isinstance(item, (dict, list, tuple)):
            pairs = (
                sorted(item.items(), key=lambda kv: repr(kv[0]))
                if isinstance(item, dict)
                else list(enumerate(item))
            )
            h.update(b"%s%d(" % (type(item).__name__.encode(), len(pairs)))
            stack.append(_Marker(b")"))
            for key, child in reversed(pairs):
                stack.append(child)
                stack.append(_Marker(repr(key).encode("utf-8", "backslashreplace")))
            continue
        h.update(_leaf_bytes(item))
    return h.hexdigest()


class _Marker:
    __slots__ = ("tag",)

    def __init__(self, tag: bytes) -> None:
        self.tag = tag


def _leaf_bytes(item: Any) -> bytes:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return b"bytes%d:" % len(item) + bytes(item)
    if isinstance(item, (np.ndarray, np.generic)):
        array = np.asarray(item)
        head = f"array{array.dtype.str}{array.dtype.descr}{array.shape}:".encode()
        if array.dtype.hasobject:
            return head + b"".join(_leaf_bytes(x) for x in array.reshape(-1).tolist())
        return head + np.ascontiguousarray(array).tobytes()
    return f"{type(item).__name__}:{item!r}".encode("utf-8", "backslashreplace")


def _memory_error_behind(exc: BaseException) -> bool:
    """Whether a MemoryError is in the exception's cause/context chain."""
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError):
            return True
        current = current.__cause__ or current.__context__
    return False


def classify_error(exc: BaseException) -> Outcome:
    """The outcome of an operation that raised ``exc``."""
    name = type(exc).__name__
    text = f"{name}: {exc}"[:500]
    if not isinstance(exc, tfckpt.CheckpointError):
        return Outcome("bad", f"escaped {name}", text)
    if _memory_error_behind(exc):
        return Outcome("bad", "MemoryError behind a CheckpointError", text)
    if exc.path is None:
        return Outcome("bad", f"{name} without the file", text)
    if not exc.message:
        return Outcome("bad", f"{name} without a message", text)
    return Outcome("error", name, text)


def classify_value(value: Any) -> Outcome:
    return Outcome("value", digest(value))


@dataclass(frozen=True)
class Verdict:
    """The judged outcome: ``category`` for the counts (``correct``, an error class name,
    ``unchecked`` for values that may legitimately differ) and ``failure`` (None when
    acceptable)."""

    category: str
    failure: str | None = None


def judge(outcome: Outcome, expected: Outcome | None, *, strict: bool, must_fail: bool) -> Verdict:
    """Applies a case's expectations to one outcome.

    ``expected`` is the same operation's outcome on the unmutated seed (None when the seed
    has no such operation); ``strict``: a value must equal the seed's; ``must_fail``: the
    mutation made what the operation reads invalid, so only an error is acceptable.
    """
    if outcome.kind == "bad":
        return Verdict("other", f"{outcome.detail}: {outcome.message}")
    if outcome.kind == "error":
        return Verdict(outcome.detail)
    if must_fail:
        return Verdict("wrong", "returned a value for an invalid file (expected an error)")
    if not strict or expected is None:
        return Verdict("unchecked")
    if expected.kind == "value" and expected.detail == outcome.detail:
        return Verdict("correct")
    if expected.kind == "value":
        return Verdict("wrong", "returned a value different from the original's")
    return Verdict("wrong", f"returned a value where the original gives {expected.detail}")
