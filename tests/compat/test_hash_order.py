"""The iteration order of libstdc++'s unordered_map (src/tfckpt/compat/hash_order.py).

The hash is checked against libstdc++ itself where it can be loaded; the order against a
plain re-statement of libstdc++'s insertion and rehash rules on Python lists (quadratic,
but obviously the rules).  tests/tf/test_compat_interop.py checks the order against
TensorFlow's own V1 reader.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import random

import pytest

from tfckpt.compat.hash_order import _BUCKET_COUNTS, hash_bytes, iteration_order


def _libstdcxx_hash():
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("stdc++") or "libstdc++.so.6")
        fn = lib._ZSt11_Hash_bytesPKvmm
    except (OSError, AttributeError):
        pytest.skip("libstdc++ is not loadable here")
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t]
    return lambda data: fn(data, len(data), 0xC70F6907)


KEYS = [
    b"",
    b"a",
    b"abcdefg",
    b"abcdefgh",
    b"abcdefghi",
    b"model/layer_0001/kernel",
    b"\x00\xff" * 9,
]


def test_hash_is_libstdcxx_std_hash():
    """hash_bytes equals std::_Hash_bytes(data, size, 0xc70f6907) for short, aligned,
    unaligned, long and binary keys."""
    reference = _libstdcxx_hash()
    rng = random.Random(0)
    keys = KEYS + [rng.randbytes(rng.randint(0, 80)) for _ in range(200)]
    for key in keys:
        assert hash_bytes(key) == reference(key), key


def _reference_order(keys: list[bytes]) -> list[bytes]:
    """libstdc++'s rules on Python lists: ``before[b]`` is the key after which bucket b's
    keys go (None: the list's front)."""
    order: list[bytes] = []
    before: dict[int, bytes | None] = {}
    count = 0
    growth = iter(_BUCKET_COUNTS)
    for key in dict.fromkeys(keys):
        if len(order) + 1 > count:  # rehash: relink every key, in list order
            count = next(growth)
            old, order, before = order, [], {}
            for k in old:
                b = hash_bytes(k) % count
                if b not in before:
                    if order:
                        before[hash_bytes(order[0]) % count] = k
                    order.insert(0, k)
                    before[b] = None
                else:
                    at = 0 if before[b] is None else order.index(before[b]) + 1
                    order.insert(at, k)
        b = hash_bytes(key) % count
        if b not in before:
            if order:
                before[hash_bytes(order[0]) % count] = key
            order.insert(0, key)
            before[b] = None
        else:
            at = 0 if before[b] is None else order.index(before[b]) + 1
            order.insert(at, key)
    return order


@pytest.mark.parametrize("count", [0, 1, 2, 12, 13, 14, 29, 30, 59, 60, 200, 600, 2000])
def test_order_follows_libstdcxx_rules(count):
    """For maps just below, at and above each rehash point, the order is the rules'."""
    rng = random.Random(count)
    keys = [f"scope_{rng.randint(0, 99)}/var_{i}".encode() for i in range(count)]
    got = [keys[i] for i in iteration_order(keys)]
    assert got == _reference_order(keys)
    assert sorted(got) == sorted(set(keys))


def test_repeated_keys_keep_their_first_insertion():
    """A key inserted again is not inserted twice (std::unordered_map::insert), and the
    index returned is its first occurrence."""
    keys = [b"a", b"b", b"a", b"c", b"b"]
    order = iteration_order(keys)
    assert sorted(order) == [0, 1, 3]
    assert [keys[i] for i in order] == _reference_order(keys)


def test_bucket_counts_double_through_primes():
    """The precomputed growth is libstdc++'s: 13 first, then the first listed prime at least
    twice as large each time."""
    assert _BUCKET_COUNTS[0] == 13
    for small, large in itertools.pairwise(_BUCKET_COUNTS):
        assert 2 * small <= large < 2.5 * small
        assert all(large % p for p in range(2, 10_000) if p * p <= large)  # no small factor
