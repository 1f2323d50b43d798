"""The order in which libstdc++'s ``std::unordered_map<std::string, T>`` iterates its keys.

TensorFlow's V1 reader keeps its tensors in such a map (``TensorSliceReader::tensors_``),
and ``DebugString()`` lists them in its iteration order.  That order is a pure function of
the keys and their insertion order, given libstdc++'s implementation (GCC 5 and later,
64-bit; what TensorFlow's Linux builds link against):

- the hash is ``std::_Hash_bytes(data, size, 0xc70f6907)`` (libsupc++/hash_bytes.cc, a
  64-bit MurmurHash2 variant); a key's bucket is ``hash % bucket_count``;
- nodes form one singly linked list; each bucket points at the node *before* its first
  one; a key whose bucket is empty goes to the front of the list, any other key right
  after its bucket's "before" node (bits/hashtable.h, ``_M_insert_bucket_begin``);
- with max_load_factor 1, the first insert makes 13 buckets and every insert that would
  exceed the bucket count first rehashes to the smallest prime of ``__prime_list`` at
  least twice as large (``_Prime_rehash_policy``); a rehash walks the list in order and
  relinks each node the same way into the new buckets (``_M_rehash_aux``).

Example::

    >>> [keys[i] for i in iteration_order(keys)]   # keys: list of bytes, insertion order
"""

from __future__ import annotations

_SEED = 0xC70F6907
_MUL = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1

# Bucket counts of a default-constructed map growing one insert at a time (computed from
# libstdc++'s __prime_list by its rehash policy).
_BUCKET_COUNTS = (
    13, 29, 59, 127, 257, 541, 1109, 2357, 5087, 10273, 20753, 42043, 85229, 172933,
    351061, 712697, 1447153, 2938679, 5967347, 12117689, 24607243, 49969847, 101473717,
    206062531, 418451333, 849749479, 1725587117, 3504151727, 8589934583,
)  # fmt: skip

_BEFORE_BEGIN = -2  # a bucket whose first node is the list's first node
_END = -1


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def hash_bytes(data: bytes) -> int:
    """``std::hash<std::string>`` of ``data`` on 64-bit libstdc++."""
    size = len(data)
    aligned = size & ~7
    h = (_SEED ^ (size * _MUL)) & _MASK
    for i in range(0, aligned, 8):
        word = int.from_bytes(data[i : i + 8], "little")
        h ^= (_shift_mix((word * _MUL) & _MASK) * _MUL) & _MASK
        h = (h * _MUL) & _MASK
    if size & 7:
        h ^= int.from_bytes(data[aligned:], "little")
        h = (h * _MUL) & _MASK
    h = (_shift_mix(h) * _MUL) & _MASK
    return _shift_mix(h)


def iteration_order(keys: list[bytes]) -> list[int]:
    """Indexes into ``keys`` (in insertion order; repeated keys are not inserted again) in
    the order a libstdc++ ``unordered_map`` holding them iterates.

    Raises:
        OverflowError: more keys than the precomputed bucket counts cover (billions).
    """
    codes: list[int] = []  # per node: its key's hash
    nxt: list[int] = []  # per node: the next node in the list
    origin: list[int] = []  # per node: its index in ``keys``
    first = _END
    buckets: dict[int, int] = {}  # bucket -> the node before its first one
    count = 0
    growth = iter(_BUCKET_COUNTS)
    seen: set[bytes] = set()
    for index, key in enumerate(keys):
        if key in seen:
            continue
        seen.add(key)
        if len(codes) + 1 > count:
            count = next(growth, 0)
            if not count:
                raise OverflowError("more keys than the precomputed bucket counts cover")
            first, buckets = _rehash(first, nxt, codes, count)
        node = len(codes)
        codes.append(hash_bytes(key))
        nxt.append(_END)
        origin.append(index)
        first = _link(node, first, nxt, codes, count, buckets)
    order = []
    node = first
    while node != _END:
        order.append(origin[node])
        node = nxt[node]
    return order


def _link(
    node: int, first: int, nxt: list[int], codes: list[int], count: int, buckets: dict[int, int]
) -> int:
    """Links a new node in (``_M_insert_bucket_begin``); returns the list's first node."""
    bucket = codes[node] % count
    before = buckets.get(bucket)
    if before is None:  # an empty bucket: the node goes to the front of the list
        nxt[node] = first
        if first != _END:
            buckets[codes[first] % count] = node  # the old first node's bucket
        buckets[bucket] = _BEFORE_BEGIN
        return node
    if before == _BEFORE_BEGIN:
        nxt[node] = first
        return node
    nxt[node] = nxt[before]
    nxt[before] = node
    return first


def _rehash(first: int, nxt: list[int], codes: list[int], count: int) -> tuple[int, dict[int, int]]:
    """Relinks every node into ``count`` buckets, walking the list in order
    (``_M_rehash_aux``); returns the new first node and buckets."""
    buckets: dict[int, int] = {}
    node = first
    first = _END
    front_bucket = -1
    while node != _END:
        following = nxt[node]
        bucket = codes[node] % count
        before = buckets.get(bucket)
        if before is None:
            nxt[node] = first
            first = node
            buckets[bucket] = _BEFORE_BEGIN
            if nxt[node] != _END:
                buckets[front_bucket] = node
            front_bucket = bucket
        elif before == _BEFORE_BEGIN:
            nxt[node] = first
            first = node
        else:
            nxt[node] = nxt[before]
            nxt[before] = node
        node = following
    return first, buckets
