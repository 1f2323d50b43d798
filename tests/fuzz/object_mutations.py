"""Structure-aware mutations of object-based checkpoints: the graph and NumpyState bytes.

The object graph (a scalar string tensor) and NumpyState's ``py_state`` values are
rewritten with every checksum valid: graph node ids out of range or negative, cycles,
a 100k-deep chain or 100k children, attributes naming missing keys, an empty or
unparseable graph; ``py_state`` holding a pickle that would create a file if it were ever
unpickled, an object array, an ``.npz``, or ``.npy`` headers with negative, huge or
overflowing shapes, wrong lengths, or descriptors that are not plain dtypes.
"""

from __future__ import annotations

import io
import os
import pickle
import random
import zipfile
from collections.abc import Callable

import numpy as np

from tests.fuzz import wire
from tests.fuzz.editing import BundleEdit, is_scalar_string, string_encoding
from tests.fuzz.mutant import Mutant
from tfckpt.bundle.strings import decode_strings
from tfckpt.objects.keys import LEGACY_NUMPY_ATTRIBUTE, OBJECT_GRAPH_KEY, PY_STATE
from tfckpt.proto import trackable_object_graph_pb2

ObjectGraph = trackable_object_graph_pb2.TrackableObjectGraph
GRAPH_KEY = OBJECT_GRAPH_KEY.encode()
# Where a pickle payload, were it ever executed, makes a directory: the environment
# variable is set by the fuzz worker to a path it checks after every case.
EXECUTED_MARKER_VARIABLE = "TFCKPT_FUZZ_EXECUTED_MARKER"
_GRAPH_OPS = frozenset({"graph", "tree", "restore"})
_LISTING = frozenset({"listing"})


def _scalar_string(edit: BundleEdit, key: bytes) -> bytes | None:
    try:
        entry = edit.entry(key)
    except Exception:  # missing or not a BundleEntryProto
        return None
    data = edit.data_bytes(entry.shard_id)
    if data is None or not is_scalar_string(entry):
        return None
    try:
        (value,), _ = decode_strings(data[entry.offset : entry.offset + entry.size], 1)
    except ValueError:
        return None
    return value


def _replace_string(edit: BundleEdit, key: bytes, value: bytes) -> bool:
    encoding, crc = string_encoding([len(value)], value, edit.header.endianness == 1)
    return edit.point_to(key, encoding, crc)


# -- the object graph ------------------------------------------------------------------------


def _chain(graph: ObjectGraph, depth: int, key: str, shared_key: bool) -> None:
    """``depth`` new nodes in a chain under the root, each holding ``key`` (when
    ``shared_key``) or only the last one."""
    first = len(graph.nodes)
    ref = graph.nodes[0].children.add()
    ref.node_id, ref.local_name = first, "chain"
    for i in range(depth):
        node = graph.nodes.add()
        if i + 1 < depth:
            child = node.children.add()
            child.node_id, child.local_name = first + i + 1, "c"
        if shared_key or i + 1 == depth:
            attribute = node.attributes.add()
            attribute.name, attribute.checkpoint_key = "VARIABLE_VALUE", key


def _wide(graph: ObjectGraph, width: int, key: str) -> None:
    """One new node holding ``key``, referenced ``width`` times by the root."""
    leaf = len(graph.nodes)
    node = graph.nodes.add()
    attribute = node.attributes.add()
    attribute.name, attribute.checkpoint_key = "VARIABLE_VALUE", key
    for i in range(width):
        ref = graph.nodes[0].children.add()
        ref.node_id, ref.local_name = leaf, f"w{i}"


def _utf8(key: bytes) -> bool:
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _some_key(edit: BundleEdit, rng: random.Random) -> str:
    """A float32 tensor's key (graph strings are UTF-8), or the graph's own."""
    numeric = edit.pick(rng, lambda k, e: e.dtype == 1 and not e.slices and _utf8(k))
    return (numeric or GRAPH_KEY).decode("utf-8")


GraphChange = Callable[[random.Random, ObjectGraph, BundleEdit], tuple[str, str]]


def _parses(raw: bytes) -> str:
    """ "changed" when protobuf reads ``raw`` as an object graph, else "fail"."""
    try:
        ObjectGraph.FromString(raw)
    except Exception:  # protobuf's DecodeError
        return "fail"
    return "changed"


def _bad_id(rng: random.Random, graph: ObjectGraph, edit: BundleEdit) -> tuple[str, str]:
    holders = [n for n in graph.nodes if n.children]
    if not holders:
        return "nothing", ""
    ref = rng.choice(rng.choice(holders).children)
    ref.node_id = rng.choice((-1, -(2**31), len(graph.nodes), 2**31 - 1))
    return f"child {ref.local_name!r} -> node {ref.node_id}", "fail"


def _bad_slot(rng: random.Random, graph: ObjectGraph, edit: BundleEdit) -> tuple[str, str]:
    slot = graph.nodes[0].slot_variables.add()
    slot.slot_name = "m"
    slot.original_variable_node_id = rng.choice((-1, 0, len(graph.nodes)))
    slot.slot_variable_node_id = rng.choice((-1, len(graph.nodes) + 5))
    return (f"slot ids {slot.original_variable_node_id}, {slot.slot_variable_node_id}", "fail")


def _cycle(rng: random.Random, graph: ObjectGraph, edit: BundleEdit) -> tuple[str, str]:
    node_id = rng.randrange(len(graph.nodes))
    ref = graph.nodes[node_id].children.add()
    ref.node_id = rng.choice((node_id, 0, rng.randrange(len(graph.nodes))))
    ref.local_name = "loop"
    return f"node {node_id} -> node {ref.node_id} (a cycle or a shared object)", "changed"


def _deep(rng: random.Random, graph: ObjectGraph, edit: BundleEdit) -> tuple[str, str]:
    depth = rng.choice((100, 1000, 1000, 10000, 100000))  # (the deep ones rarer: slower)
    shared = rng.random() < 0.5
    _chain(graph, depth, _some_key(edit, rng), shared)
    return f"a chain {depth} deep" + (", every node holding one key" if shared else ""), "changed"


def _wide_graph(rng: random.Random, graph: ObjectGraph, edit: BundleEdit) -> tuple[str, str]:
    width = rng.choice((100, 1000, 1000, 100000))
    _wide(graph, width, _some_key(edit, rng))
    return f"{width} children of the root", "changed"


def _missing_key(rng: random.Random, graph: ObjectGraph, edit: BundleEdit) -> tuple[str, str]:
    holders = [n for n in graph.nodes if n.attributes]
    if not holders:
        return "nothing", ""
    attribute = rng.choice(rng.choice(holders).attributes)
    attribute.checkpoint_key = "no/such/key"
    return f"attribute {attribute.name!r} -> a missing key", "fail_tree"


def _other_key(rng: random.Random, graph: ObjectGraph, edit: BundleEdit) -> tuple[str, str]:
    holders = [n for n in graph.nodes if n.attributes]
    if not holders:
        return "nothing", ""
    attribute = rng.choice(rng.choice(holders).attributes)
    attribute.checkpoint_key = rng.choice(
        [OBJECT_GRAPH_KEY, *[k.decode("utf-8") for k in edit.key_list() if _utf8(k)]]
    )
    return f"attribute {attribute.name!r} -> key {attribute.checkpoint_key!r}", "changed"


def _names(rng: random.Random, graph: ObjectGraph, edit: BundleEdit) -> tuple[str, str]:
    holders = [n for n in graph.nodes if n.children]
    if not holders:
        return "nothing", ""
    ref = rng.choice(rng.choice(holders).children)
    ref.local_name = rng.choice(("", "/", "..", ".ATTRIBUTES", "\x00", "x" * 100000))
    return f"a child named {ref.local_name[:12]!r}", "changed"


def _empty(rng: random.Random, graph: ObjectGraph, edit: BundleEdit) -> tuple[str, str]:
    del graph.nodes[:]
    return "no nodes", "fail"


GRAPH_CHANGES: tuple[GraphChange, ...] = (
    _bad_id,
    _bad_id,
    _bad_slot,
    _cycle,
    _cycle,
    _deep,
    _wide_graph,
    _missing_key,
    _other_key,
    _names,
    _empty,
)


def graph(rng: random.Random, edit: BundleEdit, change: int | None = None) -> Mutant | None:
    """The object graph changed (the ``change``-th of GRAPH_CHANGES, or garbage bytes, at
    random unless given) and written back, checksums valid."""
    value = _scalar_string(edit, GRAPH_KEY)
    if value is None:
        return None
    proto = ObjectGraph.FromString(value)
    if change is None and rng.random() < 0.1:
        raw = rng.choice((b"\x0a\xff\xff\xff\x0f", value[: len(value) // 2], b"\xff" * 9))
        what, verdict = "graph bytes garbage", "fail"
    elif change is None and rng.random() < 0.1:
        raw = value + wire.nested_groups(9, rng.choice((10, 100, 100000)))
        what, verdict = "graph with nested unknown groups", _parses(raw)
    else:
        chosen = GRAPH_CHANGES[change] if change is not None else rng.choice(GRAPH_CHANGES)
        what, verdict = chosen(rng, proto, edit)
        if what == "nothing":
            return None
        raw = proto.SerializeToString()
    if not _replace_string(edit, GRAPH_KEY, raw):
        return None
    description = f"object graph: {what}"
    changed = _GRAPH_OPS | _LISTING | {OBJECT_GRAPH_KEY}
    if verdict == "fail":
        return Mutant(description, edit.files(), must_fail=_GRAPH_OPS, changed=changed)
    if verdict == "fail_tree":
        return Mutant(description, edit.files(), must_fail=frozenset({"tree"}), changed=changed)
    return Mutant(description, edit.files(), changed=changed)


# -- NumpyState bytes ------------------------------------------------------------------------


class _Executed:
    """Pickles as ``os.makedirs(os.path.expandvars("$<marker variable>"))``: unpickling it
    makes the directory the worker checks for."""

    def __reduce__(self) -> tuple[object, ...]:
        return (os.makedirs, (_Expand(),))


class _Expand:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.path.expandvars, (f"${EXECUTED_MARKER_VARIABLE}",))


def _npy(header: dict[str, object] | str, payload: bytes = b"", version: int = 1) -> bytes:
    """``.npy`` bytes with any header dict (or text) and payload."""
    text = header if isinstance(header, str) else repr(header)
    text += " " * ((64 - (len(text) + 11) % 64) % 64) + "\n"
    encoded = text.encode("utf-8" if version == 3 else "latin1")
    size = len(encoded).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes((version, 0)) + size + encoded + payload


def _npy_header(shape: object, descr: object = "<i4", fortran: object = False) -> dict[str, object]:
    return {"descr": descr, "fortran_order": fortran, "shape": shape}


def hostile_blobs() -> dict[str, tuple[bytes, bool]]:
    """Named ``py_state`` values and whether restoring them must fail."""
    saved = io.BytesIO()
    np.save(saved, np.arange(6, dtype=np.int32).reshape(2, 3), allow_pickle=False)
    objects = io.BytesIO()
    np.save(objects, np.array([_Executed(), "x"], dtype=object), allow_pickle=True)
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as archive:
        archive.writestr("x.npy", saved.getvalue())
    data = np.arange(4, dtype=np.int32).tobytes()
    return {
        "a pickle": (pickle.dumps(_Executed(), protocol=2), True),
        "an object array (pickled)": (objects.getvalue(), True),
        "an .npz archive": (npz.getvalue(), True),
        "shape (-1,)": (_npy(_npy_header((-1,)), data), True),
        "shape (-4,)": (_npy(_npy_header((-4,)), data), True),
        "shape (2, -2)": (_npy(_npy_header((2, -2))), True),
        "shape (-2, -2)": (_npy(_npy_header((-2, -2)), data * 4), True),
        "shape (10**13,)": (_npy(_npy_header((10**13,)), data), True),
        "shape (2**32, 2**32, 16)": (_npy(_npy_header((2**32, 2**32, 16)), data), True),
        "shape (0, 2**62, 2**62)": (_npy(_npy_header((0, 2**62, 2**62))), True),
        "shape of 70 dims": (_npy(_npy_header((1,) * 70), data[:4]), True),
        "shape 1.5": (_npy(_npy_header((1.5,)), data), True),
        "too little data": (_npy(_npy_header((5,)), data), True),
        "descr '|O'": (_npy(_npy_header((1,), "|O"), bytes(8)), True),
        "descr with an object field": (_npy(_npy_header((1,), [("a", "|O")]), bytes(8)), True),
        "descr of a 10**9-element subarray": (
            _npy(_npy_header((1,), [("a", "<f8", (10**9,))]), data),
            True,
        ),
        "descr 'zz'": (_npy(_npy_header((1,), "zz"), data), True),
        "fortran_order 'yes'": (_npy(_npy_header((4,), fortran="yes"), data), True),
        "an extra header key": (_npy({**_npy_header((4,)), "x": 1}, data), True),
        "a header that is a list": (_npy("[1, 2]", data), True),
        "a header that is a call": (_npy("__import__('os').getcwd()", data), True),
        "a header longer than the data": (saved.getvalue()[:8] + b"\xff\x7f{'descr", True),
        "the valid array": (saved.getvalue(), False),
        "the valid array, fortran order": (_npy(_npy_header((2, 2), fortran=True), data), False),
        "the valid array, version 3 header": (_npy(_npy_header((4,)), data, version=3), False),
        "the valid array and trailing bytes": (saved.getvalue() + b"trailing", False),
    }


def py_state(rng: random.Random, edit: BundleEdit, blob: str | None = None) -> Mutant | None:
    """A NumpyState ``py_state`` value replaced by a hostile blob (the one named ``blob``
    of :func:`hostile_blobs`, or a random one)."""
    suffixes = tuple(f"/.ATTRIBUTES/{a}".encode() for a in (PY_STATE, LEGACY_NUMPY_ATTRIBUTE))
    key = edit.pick(rng, lambda k, e: k.endswith(suffixes) and is_scalar_string(e))
    if key is None:
        return None
    blobs = hostile_blobs()
    name = blob or rng.choice(sorted(blobs))
    data, invalid = blobs[name]
    if not _replace_string(edit, key, data):
        return None
    owner = key.decode("utf-8", "surrogateescape")
    changed = frozenset({owner, "graph", "tree", "restore"}) | _LISTING
    must_fail = frozenset({"restore"}) if invalid else frozenset()
    return Mutant(f"{owner} holds {name}", edit.files(), must_fail=must_fail, changed=changed)


MUTATIONS = ((graph, 6), (py_state, 4))
