"""The checkpoints that the fuzzer mutates: fixtures, the corpus, and synthetic ones.

A :class:`Seed` is a checkpoint held in memory as a flat set of files (the prefix's files
and, where there is one, the directory's ``checkpoint`` state file with the checkpoints it
names), so that a case is written into an empty directory in a few system calls.
Synthetic seeds cover what the real ones lack: every dtype, long strings (multi-byte
length varints), partitioned numeric and string tensors, a big-endian bundle, NumpyState
arrays of every layout, Snappy-compressed index blocks of a few entries each, a managed
directory with timestamps.  They are written by tfckpt into a temporary directory once per
process, deterministically (the same bytes every run, so a case number names one case).
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import ml_dtypes
import numpy as np

import tfckpt
from tests.conftest import CORPUS, FIXTURES
from tests.fuzz import tables
from tfckpt import paths
from tfckpt.checkpoint_state import STATE_FILENAME, read_state, write_state
from tfckpt.objects.keys import OBJECT_GRAPH_KEY
from tfckpt.table.format import SNAPPY_COMPRESSION

DEFAULT_MAX_BYTES = 256 << 10


@dataclass(frozen=True, eq=False)  # (hashed by identity: all_seeds makes each once)
class Seed:
    """One checkpoint: ``files`` (name -> bytes, all in one directory), the ``prefix``
    (a file name stem in that directory), its ``kind`` ("bundle", "v1" or "objects") and
    ``own``, the names of the prefix's own files (the others are the state file and the
    other checkpoints it names)."""

    name: str
    kind: str
    prefix: str
    files: Mapping[str, bytes]
    own: frozenset[str]

    @property
    def size(self) -> int:
        return sum(map(len, self.files.values()))

    @property
    def has_state_file(self) -> bool:
        return STATE_FILENAME in self.files

    def index_file(self) -> str | None:
        """The name of the bundle index, or None for a V1 checkpoint."""
        name = f"{self.prefix}.index"
        return name if name in self.files else None

    def write(self, directory: Path, replaced: Mapping[str, bytes | None] = {}) -> Path:
        """Writes the files into ``directory`` (``replaced`` overrides some; None deletes)
        and returns the checkpoint prefix there."""
        for name, data in {**self.files, **replaced}.items():
            if data is not None:
                (directory / name).write_bytes(data)
        return directory / self.prefix


def _checkpoint_files(prefix: Path) -> list[Path]:
    """The files of the checkpoint at ``prefix`` (V2 index and data files, or V1 files)."""
    fmt = paths.checkpoint_format(str(prefix))
    if fmt == paths.V2:
        data = sorted(prefix.parent.glob(f"{prefix.name}.data-?????-of-?????"))
        return [Path(f"{prefix}.index"), *data]
    if fmt == paths.V1:
        return [Path(p) for p in tfckpt.legacy.naming.v1_files(str(prefix))]
    return []


def _directory_files(prefix: Path) -> list[Path]:
    """The prefix's files plus the state file and the checkpoints it names that live in
    the same directory (so that a managed directory is mutated whole)."""
    files = _checkpoint_files(prefix)
    state = prefix.parent / STATE_FILENAME
    if state.is_file():
        files.append(state)
        try:
            parsed = read_state(prefix.parent)
        except tfckpt.CheckpointError:
            parsed = None
        named = [] if parsed is None else parsed.all_model_checkpoint_paths
        for other in named:
            other_path = Path(other)
            if other_path.parent == prefix.parent and other_path != prefix:
                files.extend(_checkpoint_files(other_path))
    return sorted(set(files))


def _kind(prefix: Path) -> str:
    with tfckpt.load_checkpoint(prefix) as reader:
        if reader.format == paths.V1:
            return "v1"
        return "objects" if OBJECT_GRAPH_KEY in reader else "bundle"


def seed_from_prefix(name: str, prefix: Path) -> Seed:
    files = {p.name: p.read_bytes() for p in _directory_files(prefix)}
    own = frozenset(p.name for p in _checkpoint_files(prefix))
    return Seed(name=name, kind=_kind(prefix), prefix=prefix.name, files=files, own=own)


def _fixture_prefixes() -> Iterable[tuple[str, Path]]:
    for index in sorted(FIXTURES.rglob("*.index")):
        if CORPUS in index.parents:
            continue
        prefix = index.with_suffix("")
        yield f"fixtures/{prefix.relative_to(FIXTURES)}", prefix
    for v1 in ("v1_format/model.ckpt", "v1_sharded/model.ckpt"):
        yield f"fixtures/{v1}", FIXTURES / v1


def _corpus_prefixes() -> Iterable[tuple[str, Path]]:
    manifest = json.loads((CORPUS / "MANIFEST.json").read_text(encoding="utf-8"))
    for entry in manifest:
        yield f"corpus/{entry['path']}", CORPUS / entry["path"]


# -- synthetic seeds -----------------------------------------------------------------------

_NUMERIC = [
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "complex64",
    "complex128",
    "float8_e5m2",
    "float8_e4m3fn",
    "int4",
    "uint4",
]


def _numeric_values() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(_NUMERIC):
        dtype = np.dtype(getattr(ml_dtypes, name, None) or name)
        shape = [(), (3,), (2, 3), (0,), (2, 0, 3)][i % 5]
        raw = rng.integers(0, 256, size=int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8)
        if dtype.kind == "b" or name in ("int4", "uint4"):
            raw = raw % 2
        out[f"num/{name}"] = raw.view(dtype).reshape(shape)
    return out


def _string_values() -> dict[str, object]:
    return {
        "str/scalar": b"hello, world",
        "str/empty_scalar": b"",
        "str/vector": np.array([b"a", b"", b"\x00\xff", b"x" * 200], object),
        "str/long": np.array([b"y" * 20000, b"z"], object),
        "str/matrix": np.array([[b"ab", b"c"], [b"", b"def"]], object),
        "str/none": np.empty((0, 2), object),
        "caf\u00e9/\u00fcnicode": np.arange(3, dtype=np.int16),
    }


def _write_mixed(prefix: str, big_endian: bool) -> None:
    with tfckpt.BundleWriter(prefix, big_endian=big_endian) as writer:
        for name, value in {**_numeric_values(), **_string_values()}.items():
            writer.add(name, value)
        full = np.arange(24, dtype=np.float32).reshape(6, 4)
        for spec, rows in (("0,2:-", full[0:2]), ("2,3:-", full[2:5]), ("5,1:-", full[5:6])):
            writer.add_slice("part/rows", [6, 4], spec, rows)
        for spec, cols in (("-:0,1", full[:, 0:1]), ("-:1,3", full[:, 1:4])):
            writer.add_slice("part/cols", [6, 4], spec, cols)
        words = np.array([b"one", b"two", b"three", b"", b"five"], object)
        writer.add_slice("part/strings", [5], "0,2", words[0:2])
        writer.add_slice("part/strings", [5], "2,3", words[2:5])


def _write_objects(directory: str) -> None:
    state = tfckpt.NumpyState()
    state.matrix = np.arange(12, dtype=np.float64).reshape(3, 4)
    state.fortran = np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))
    state.scalar = np.float32(2.5)
    state.big = np.arange(3, dtype=">i4")
    state.empty = np.zeros((0, 3), np.uint8)
    state.structured = np.array([(1, 2.0)], dtype=[("id", "<i4"), ("x", "<f8")])
    checkpoint = tfckpt.Checkpoint(
        numpy_arrays=state,
        weights={"w": np.ones((2, 3), np.float32), "b": np.zeros(3, np.float64)},
        layers=[np.arange(4, dtype=np.int64), {"deep": np.array([1 + 2j], np.complex64)}],
        names=np.array([b"alpha", b"", b"\x00\xff"], object),
    )
    checkpoint.save(os.path.join(directory, "ckpt"))


def _write_manager(directory: str) -> None:
    checkpoint = tfckpt.Checkpoint(v=np.arange(3, dtype=np.float32))
    for _ in range(2):
        checkpoint.save(os.path.join(directory, "ckpt"))  # ckpt-1, ckpt-2
    # The state file a CheckpointManager writes, with fixed timestamps (deterministic).
    write_state(directory, "ckpt-2", ["ckpt-1", "ckpt-2"], [1.5e9, 1.5e9 + 60], 1.5e9 - 1)


def _reencoded_index(seed: Seed, layout: tables.Layout, name: str) -> Seed:
    index = seed.index_file()
    assert index is not None
    entries = tables.decode_table(seed.files[index])
    files = {**seed.files, index: tables.encode_table(entries, layout)}
    return Seed(name=name, kind=seed.kind, prefix=seed.prefix, files=files, own=seed.own)


def _synthetic_seeds() -> list[Seed]:
    seeds = []
    with tempfile.TemporaryDirectory(prefix="tfckpt-fuzz-seeds-") as scratch:
        root = Path(scratch)
        for sub, write in (
            ("mixed", lambda d: _write_mixed(str(d / "ckpt"), big_endian=False)),
            ("big_endian", lambda d: _write_mixed(str(d / "ckpt"), big_endian=True)),
            ("objects", lambda d: _write_objects(str(d))),
            ("manager", lambda d: _write_manager(str(d))),
        ):
            directory = root / sub
            directory.mkdir()
            write(directory)
            prefix = paths.latest_checkpoint(directory) or str(directory / "ckpt")
            seeds.append(seed_from_prefix(f"synthetic/{sub}", Path(prefix)))
    mixed = seeds[0]
    layout = tables.Layout(block_entries=3, restart_interval=2, compression=SNAPPY_COMPRESSION)
    seeds.append(_reencoded_index(mixed, layout, "synthetic/snappy_small_blocks"))
    return seeds


LARGE_TENSOR = "large/whole"
SMALL_TENSORS = 640  # of 32 KiB each: 20 MiB of small tensors, several read chunks


@functools.cache
def large_seed() -> Seed:
    """A 56 MiB bundle: one 36 MiB tensor (read in parallel pieces, its checksum combined
    from theirs) and 640 tensors of 32 KiB (read into one arena, chunk by chunk, checked
    by a second thread): the read paths only large reads take."""
    with tempfile.TemporaryDirectory(prefix="tfckpt-fuzz-large-") as scratch:
        prefix = Path(scratch) / "ckpt"
        with tfckpt.BundleWriter(prefix) as writer:
            writer.add(LARGE_TENSOR, np.arange(9 << 20, dtype=np.float32))
            for i in range(SMALL_TENSORS):
                writer.add(f"large/small{i:03d}", np.full(8192, i, np.float32))
        return seed_from_prefix("synthetic/large", prefix)


@functools.cache
def all_seeds(max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Seed, ...]:
    """Every seed of at most ``max_bytes``, sorted by name (the order cases refer to)."""
    found = [seed_from_prefix(name, prefix) for name, prefix in _fixture_prefixes()]
    found += [
        seed_from_prefix(name, prefix)
        for name, prefix in _corpus_prefixes()
        if sum(p.stat().st_size for p in _directory_files(prefix)) <= max_bytes
    ]
    found += _synthetic_seeds()
    return tuple(sorted((s for s in found if s.size <= max_bytes), key=lambda s: s.name))
