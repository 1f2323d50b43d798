"""Sharded saving: the planners of tfckpt.bundle.sharding, and BundleWriter / save_tensors /
write_objects with ``max_shard_size`` or ``num_shards``.

The reference is the committed TensorFlow-written fixture ``fixtures/max_shard_size/ckpt``
(tf.train.Checkpoint.write with MaxShardSizePolicy(10000)): saving its tensors in its order
must reproduce its index and every data file byte for byte.  Live comparisons with
TensorFlow, and TensorFlow reading tfckpt's layouts, are in tests/tf/test_sharding_interop.py.
"""

from __future__ import annotations

import os

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tests.conftest import FIXTURES
from tfckpt.bundle import MaxShardSizePolicy
from tfckpt.bundle.naming import data_filename
from tfckpt.bundle.sharding import (
    OBJECT_GRAPH_KEY,
    Piece,
    TensorInfo,
    plan_max_shard_size,
    plan_num_shards,
)
from tfckpt.bundle.writer import BundleWriter, StringPieces
from tfckpt.errors import InvalidArgumentError, StorageError
from tfckpt.objects.checkpoint import write_objects
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table import TableReader

FIXTURE = str(FIXTURES / "max_shard_size" / "ckpt")
# The fixture's tensors in the order tf.train.Checkpoint saved them (tools/fixturegen
# writers/trackables.py write_max_shard_size: the module's variables, then the graph).
FIXTURE_ORDER = [
    *(f"model/{n}/.ATTRIBUTES/VARIABLE_VALUE" for n in ("big", "big3", "counts", "small")),
    *(f"model/{n}/.ATTRIBUTES/VARIABLE_VALUE" for n in ("words", "step")),
    OBJECT_GRAPH_KEY,
]


def _info(name, dtype, shape, itemsize, nbytes=None, **kw):
    shape = tuple(shape)
    if nbytes is None:
        nbytes = int(np.prod(shape, dtype=np.int64)) * itemsize
    return TensorInfo(name, dtype, shape, nbytes, itemsize, **kw)


def _layout(plan, infos):
    return [[(infos[p.tensor].name, p.offset, p.shape) for p in shard] for shard in plan]


def _files(prefix):
    directory, base = os.path.split(prefix)
    return sorted(f for f in os.listdir(directory) if f.startswith(base))


def _entries(prefix):
    out = {}
    for key, value in TableReader.open(prefix + ".index").items():
        proto = tensor_bundle_pb2.BundleHeaderProto() if key == b"" else None
        proto = proto or tensor_bundle_pb2.BundleEntryProto()
        proto.ParseFromString(value)
        out[key] = proto
    return out


def _assert_same_values(prefix, expected):
    reader = tfckpt.load_checkpoint(prefix)
    assert sorted(reader.keys()) == sorted(expected)
    for name, want in expected.items():
        got = reader.get_tensor(name)
        want = np.asarray(want)
        if want.dtype == object:
            assert np.asarray(got, object).tolist() == want.tolist(), name
        else:
            assert np.asarray(got).shape == want.shape, name
            assert np.asarray(got).tobytes() == want.tobytes(), name


# -- the committed TensorFlow fixture ---------------------------------------------------


def test_fixture_is_reproduced_byte_for_byte(tmp_path):
    """save_tensors(max_shard_size=10000) of the fixture's tensors in TF's order writes
    exactly TensorFlow's 7 data files and index (slices, shard ids, merged full entries)."""
    reader = tfckpt.load_checkpoint(FIXTURE)
    tensors = {name: reader.get_tensor(name) for name in FIXTURE_ORDER}
    ours = str(tmp_path / "ckpt")
    assert tfckpt.save_tensors(ours, tensors, max_shard_size=10000) == ours
    theirs = _files(FIXTURE)
    assert _files(ours) == theirs  # no temporaries or lock left either
    for name in theirs:
        with open(tmp_path / name, "rb") as a, open(FIXTURES / "max_shard_size" / name, "rb") as b:
            assert a.read() == b.read(), name
    _assert_same_values(ours, tensors)  # the string slices read back too


def test_fixture_plan_is_tensorflows_layout():
    """The planner alone, over (name, dtype, shape, bytes), makes the fixture's slices: cuts
    along axis 0 and along an inner axis, string sizes counted by length, the graph as 0."""
    infos = [
        _info("big", "float32", (64, 100), 4),
        _info("big3", "float64", (2, 3, 500), 8),
        _info("counts", "int64", (1000,), 8),
        _info("small", "float32", (3,), 4),
        _info("words", "string", (1200,), 9, nbytes=10800),
        _info("step", "int64", (), 8),
        _info(OBJECT_GRAPH_KEY, "string", (), 533, nbytes=533),
    ]
    expected = [
        [("big", (0, 0), (22, 100)), ("big", (22, 0), (3, 100))],
        [("big", (25, 0), (20, 100)), ("big", (45, 0), (5, 100))],
        [("big", (50, 0), (14, 100)), ("big3", (0, 0, 0), (2, 3, 84))],
        [("big3", (0, 0, 91), (1, 3, 409)), ("big3", (1, 0, 91), (1, 3, 7))],
        [("big3", (1, 0, 98), (1, 3, 402)), ("counts", (0,), (44,))],
        [("counts", (44,), (956,)), ("small", (0,), (3,)), ("words", (0,), (240,))],
        [("words", (260,), (940,)), ("step", (), ()), (OBJECT_GRAPH_KEY, (), ())],
    ]
    expected[2].append(("big3", (0, 0, 84), (2, 3, 7)))  # (lines kept short)
    expected[5].append(("words", (240,), (20,)))
    assert _layout(plan_max_shard_size(infos, 10000), infos) == expected
    assert MaxShardSizePolicy(10000)(infos) == plan_max_shard_size(infos, 10000)


# -- the max_shard_size planner -----------------------------------------------------------


def test_everything_fitting_is_one_shard_in_order():
    infos = [_info("b", "float32", (10,), 4), _info("a", "int8", (3, 3), 1)]
    assert plan_max_shard_size(infos, 1000) == [[Piece(0, (0,), (10,)), Piece(1, (0, 0), (3, 3))]]


def test_scalar_that_does_not_fit_starts_a_shard_and_oversized_scalars_go_last():
    """TF: a scalar larger than the room left opens a new shard; one larger than the limit
    becomes a shard of its own after all the others."""
    infos = [
        _info("v", "float32", (3,), 4),  # 12 bytes
        _info("huge", "string", (), 50, nbytes=50),
        _info("s", "float64", (), 8),  # 8 > 16 - 12 left
        _info("t", "float32", (), 4),
    ]
    assert _layout(plan_max_shard_size(infos, 16), infos) == [
        [("v", (0,), (3,))],
        [("s", (), ()), ("t", (), ())],
        [("huge", (), ())],
    ]


def test_full_shard_opens_the_next_one_and_trailing_empty_shards_are_dropped():
    """Filling a shard exactly starts a new one (TF); with nothing after it that shard is
    empty and is not written (TF always has its object graph to put there)."""
    infos = [_info("a", "float32", (5,), 4), _info("b", "float32", (10,), 4)]
    assert _layout(plan_max_shard_size(infos, 20), infos) == [
        [("a", (0,), (5,))],
        [("b", (0,), (5,))],
        [("b", (5,), (5,))],
    ]


def test_strings_count_lengths_and_cut_by_the_longest_element():
    """A string tensor counts the sum of its lengths; once cut, TF counts each remaining
    element as long as the longest."""
    infos = [_info("w", "string", (6,), 10, nbytes=25)]  # lengths e.g. 10, 3, 3, 3, 3, 3
    assert _layout(plan_max_shard_size(infos, 20), infos) == [
        [("w", (0,), (2,))],
        [("w", (2,), (2,))],
        [("w", (4,), (2,))],
    ]


def test_object_graph_counts_as_zero_bytes():
    infos = [_info("a", "float32", (4,), 4), _info(OBJECT_GRAPH_KEY, "string", (), 999, 999)]
    assert len(plan_max_shard_size(infos, 16)) == 1


def test_empty_tensors_are_kept_whole():
    """TF 2.21's policy silently leaves tensors without elements out of the checkpoint;
    tfckpt keeps them, whole, in the current shard."""
    infos = [_info("a", "float32", (3,), 4), _info("e", "float32", (0, 4), 4)]
    assert _layout(plan_max_shard_size(infos, 8), infos) == [
        [("a", (0,), (2,))],
        [("a", (2,), (1,)), ("e", (0, 0), (0, 4))],
    ]


def test_given_slices_are_cut_within_their_box():
    """A slice of a partitioned tensor is cut further with offsets in the full tensor."""
    infos = [_info("p", "float32", (4, 2), 4, full_shape=(10, 2), offset=(6, 0))]
    assert _layout(plan_max_shard_size(infos, 16), infos) == [
        [("p", (6, 0), (2, 2))],
        [("p", (8, 0), (2, 2))],
    ]


@pytest.mark.parametrize(
    "info",
    [
        _info("f64", "float64", (2,), 8),  # one element (8 bytes) > 4
        _info("words", "string", (2,), 50, nbytes=51),  # an element longer than the limit
    ],
)
def test_tensor_whose_smallest_slice_exceeds_the_limit_is_refused(info):
    """TensorFlow 2.21 loops forever on these; tfckpt raises instead."""
    limit = 4 if info.dtype == "float64" else 20
    with pytest.raises(InvalidArgumentError, match="max_shard_size"):
        plan_max_shard_size([info], limit)


@pytest.mark.parametrize("bad", [0, -1, 10.5, "10000", True, None])
def test_invalid_max_shard_size(bad, tmp_path):
    """Not a positive int: InvalidArgumentError before anything is claimed or written."""
    with pytest.raises(InvalidArgumentError, match="max_shard_size"):
        MaxShardSizePolicy(bad)
    if bad is None:
        return
    with pytest.raises(InvalidArgumentError, match="max_shard_size"):
        tfckpt.save_tensors(str(tmp_path / "c"), {"a": np.ones(3)}, max_shard_size=bad)
    assert os.listdir(tmp_path) == []


def test_policy_attributes():
    policy = MaxShardSizePolicy(np.int64(4096))
    assert policy.max_shard_size == 4096 and type(policy.max_shard_size) is int
    assert policy == MaxShardSizePolicy(4096) and "max shard size" in policy.description


@pytest.mark.parametrize("bad", [0, -3, 2.0, False])
def test_invalid_num_shards_and_both_options(bad, tmp_path):
    with pytest.raises(InvalidArgumentError, match="num_shards"):
        BundleWriter(str(tmp_path / "c"), num_shards=bad)
    with pytest.raises(InvalidArgumentError, match="not both"):
        BundleWriter(str(tmp_path / "c"), num_shards=2, max_shard_size=100)
    assert os.listdir(tmp_path) == []


# -- the num_shards planner ---------------------------------------------------------------


def test_num_shards_is_greedy_by_size_and_keeps_order_within_a_shard():
    """Largest first (ties in order), each to the emptiest shard (ties: the lowest)."""
    sizes = [10, 50, 30, 30, 5, 20]
    infos = [_info(f"t{i}", "uint8", (n,), 1) for i, n in enumerate(sizes)]
    plan = plan_num_shards(infos, 3)
    # 50 -> s0; 30 (t2) -> s1; 30 (t3) -> s2; 20 -> s1 (30 < 50, s1 before s2); 10 -> s2;
    # 5 -> s2 (40 < 50 = s0 = s1).
    assert [[p.tensor for p in shard] for shard in plan] == [[1], [2, 5], [0, 3, 4]]
    assert plan_num_shards(infos[:1], 3)[1:] == [[], []]  # exactly 3 shards


# -- the writer ---------------------------------------------------------------------------


def _mixed():
    rng = np.random.default_rng(5)
    return {
        "dense": rng.standard_normal((40, 30)).astype(np.float32),
        "cube": np.arange(2 * 5 * 60, dtype=np.float64).reshape(2, 5, 60),
        "ints": np.arange(700, dtype=np.int64),
        "bf16": np.arange(300).astype(ml_dtypes.bfloat16),
        "flags": np.arange(90) % 3 == 0,
        "step": np.array(4, np.int64),
        "scalar_str": b"x" * 3000,
        "words": np.array([f"w\u00e9{i}".encode() * (i % 7 + 1) for i in range(500)], object),
        "grid": np.array([[b"a" * i, b"b"] for i in range(40)], object),  # rank 2 strings
        "empty": np.zeros((0, 3), np.int32),
        "cplx": (np.arange(64) * (1 + 2j)).astype(np.complex64).reshape(8, 8),
    }


@pytest.mark.parametrize("limit", [700, 2500, 9000, 1 << 30])
def test_max_shard_size_round_trip(tmp_path, limit):
    """Every dtype, rank and string kind reads back equal; shards hold what the plan says
    (numeric shards stay within the limit) and the header counts the data files."""
    tensors = _mixed()
    prefix = str(tmp_path / "ckpt")
    tfckpt.save_tensors(prefix, tensors, max_shard_size=limit)
    _assert_same_values(prefix, tensors)
    entries = _entries(prefix)
    files = [f for f in _files(prefix) if ".data-" in f]
    assert entries[b""].num_shards == len(files)
    assert files == [
        os.path.basename(data_filename(prefix, k, len(files))) for k in range(len(files))
    ]
    if limit == 1 << 30:
        assert len(files) == 1  # and equal to an unsharded save
        plain = str(tmp_path / "plain")
        tfckpt.save_tensors(plain, tensors)
        for suffix in (".index", ".data-00000-of-00001"):
            with open(prefix + suffix, "rb") as x, open(plain + suffix, "rb") as y:
                assert x.read() == y.read()


def test_sliced_full_entry_lists_slices_in_shard_order_with_first_shard_id(tmp_path):
    prefix = str(tmp_path / "ckpt")
    tfckpt.save_tensors(
        prefix, {"a": np.ones(3, np.float32), "m": np.ones((10, 4))}, max_shard_size=100
    )
    full = _entries(prefix)[b"m"]
    assert [s.extent[0].start for s in full.slices] == sorted(
        s.extent[0].start for s in full.slices
    )
    assert full.shard_id == 0 and len(full.slices) >= 3 and full.size == 0


@pytest.mark.parametrize("count", [1, 2, 3, 12])
def test_num_shards_round_trip(tmp_path, count):
    """num_shards=N writes exactly N data files (more than the pool has threads too), whole
    tensors, values equal; N=1 is the unsharded save."""
    tensors = _mixed()
    prefix = str(tmp_path / "ckpt")
    tfckpt.save_tensors(prefix, tensors, num_shards=count)
    _assert_same_values(prefix, tensors)
    files = [f for f in _files(prefix) if ".data-" in f]
    assert len(files) == count and _entries(prefix)[b""].num_shards == count
    assert not any(e.slices for k, e in _entries(prefix).items() if k)


def test_sharded_writer_takes_slices_string_pieces_and_big_endian(tmp_path):
    """add_slice parts are cut further within the full tensor; StringPieces and a
    big-endian bundle work sharded."""
    prefix = str(tmp_path / "ckpt")
    full = np.arange(60, dtype=np.float32).reshape(12, 5)
    blob = np.arange(100, dtype=np.uint8)
    with BundleWriter(prefix, big_endian=True, max_shard_size=64) as writer:
        writer.add_slice("part", (12, 5), "0,8:-", full[:8])
        writer.add("pieces", StringPieces([b"head", blob]))
        writer.add_slice("part", (12, 5), [(8, 4), None], full[8:])
        writer.add("x", np.arange(6, dtype=np.int32))
    _assert_same_values(
        prefix,
        {"part": full, "pieces": b"head" + blob.tobytes(), "x": np.arange(6, dtype=np.int32)},
    )
    assert _entries(prefix)[b""].endianness == tensor_bundle_pb2.BundleHeaderProto.BIG


def test_errors_while_adding_are_raised_at_add(tmp_path):
    """A sharded writer checks each value when it is added, as an unsharded one does: the
    failing tensor is not held, the others are written by finish; abort leaves nothing."""
    prefix = str(tmp_path / "ckpt")
    writer = BundleWriter(prefix, max_shard_size=16)
    writer.add("a", np.ones(3))
    with pytest.raises(InvalidArgumentError, match="added twice"):
        writer.add("a", np.ones(3))
    with pytest.raises(InvalidArgumentError, match="max_shard_size"):
        writer.add("too_wide", np.array([b"x" * 40, b"y"], object))
    with pytest.raises(InvalidArgumentError):
        writer.add_many([("b", np.ones(2, np.float32)), ("bad", np.array([object()]))])
    writer.finish()
    _assert_same_values(prefix, {"a": np.ones(3), "b": np.ones(2, np.float32)})
    aborted = BundleWriter(str(tmp_path / "gone"), num_shards=3)
    aborted.add("a", np.ones(3))
    aborted.abort()
    assert not [f for f in os.listdir(tmp_path) if f.startswith("gone")]


def test_failure_in_one_shard_publishes_nothing(tmp_path):
    """A shard whose file cannot be put in place (a directory holds its name) fails the
    whole save: no index, no data file under a final name, no temporary left."""
    prefix = str(tmp_path / "ckpt")
    blocker = tmp_path / "ckpt.data-00002-of-00004"
    blocker.mkdir()
    (blocker / "keep").write_bytes(b"")
    tensors = {f"t{i}": np.full(10, i, np.float32) for i in range(4)}  # 4 shards of 40
    with pytest.raises(StorageError):
        tfckpt.save_tensors(prefix, tensors, max_shard_size=40)
    assert _files(prefix) == [blocker.name]
    os.remove(blocker / "keep")
    blocker.rmdir()
    tfckpt.save_tensors(prefix, tensors, max_shard_size=40)  # the prefix is free again
    _assert_same_values(prefix, tensors)


def test_write_objects_sharded(tmp_path):
    """write_objects(max_shard_size=...) shards an object graph; the graph goes last."""
    values = {"w": np.arange(500, dtype=np.float32), "b": np.ones(3)}
    prefix = str(tmp_path / "ckpt")
    write_objects(tfckpt.Checkpoint(**values), prefix, max_shard_size=1000)
    entries = _entries(prefix)
    last = entries[b""].num_shards - 1
    assert last > 0 and entries[OBJECT_GRAPH_KEY.encode()].shard_id == last
    restored = {k: np.zeros_like(v) for k, v in values.items()}
    tfckpt.Checkpoint(**restored).read(prefix).assert_consumed()
    for key, value in values.items():
        assert np.array_equal(restored[key], value)
    write_objects(tfckpt.Checkpoint(**values), str(tmp_path / "n"), num_shards=2)
    assert entries and _entries(str(tmp_path / "n"))[b""].num_shards == 2
