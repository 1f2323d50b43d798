"""Checking a whole checkpoint: every checksum and that its structure holds together.

:func:`verify_checkpoint` checks, for a V2 bundle:

* every block of the index (CRC32C, keys in order) and the header;
* that every data shard exists (data files of another shard count are noted);
* every tensor: its entry against its dtype and shape, its bytes inside its data file and
  their CRC32C (variants too: their per-element checksums and the entry's), the slices of a
  partitioned tensor covering it exactly once, strings decodable;
* that no two entries claim the same bytes (bytes no entry uses are noted);
* the object graph, if any: that it parses, its node ids are in range, every checkpoint key
  it names exists, and NumpyState values are arrays saved without pickle (keys the graph
  does not name are noted: ``tf.train.Checkpoint`` would not restore them);

and for a V1 checkpoint every block of every table and every tensor (V1 has no per-tensor
checksums: its blocks carry them).  Problems name the file and the tensor; by default the
check stops at the first one.

What killed saves left (:mod:`tfckpt.storage.commit`) is reported as such: an overwrite
interrupted between its renames, whose old checkpoint is set aside under reserved names
(tfckpt reads it there, TensorFlow sees no checkpoint), is a problem of its own
(:attr:`VerifyReport.interrupted`), and the set-aside checkpoint is verified;
:func:`repair_interrupted_overwrite` puts it back, as the next save of the prefix would.
Leftover temporaries and set-aside files beside a complete checkpoint are notes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfckpt import checksum, paths
from tfckpt.bundle.claim import leftovers, tidy_prefix
from tfckpt.bundle.naming import index_filename
from tfckpt.bundle.reader import BundleReader
from tfckpt.errors import CheckpointError, DataLossError, UnsupportedError
from tfckpt.inspection.inventory import Inventory, take_inventory
from tfckpt.legacy.reader import V1Reader
from tfckpt.objects.keys import OBJECT_GRAPH_KEY
from tfckpt.storage.commit import aside_path
from tfckpt.storage.lock import FileLock
from tfckpt.table.format import decode_varint
from tfckpt.table.reader import TableReader

Progress = Callable[[int], None]
_READ_CHUNK = 16 << 20


@dataclass(frozen=True)
class Problem:
    """Something wrong: the file (``path``) and tensor concerned, and what."""

    message: str
    path: str | None = None
    tensor: str | None = None

    def describe(self) -> str:
        return str(CheckpointError(self.message, path=self.path, tensor=self.tensor))


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_checkpoint`."""

    prefix: str
    format: str
    tensors: int = 0  # in the checkpoint
    tensors_checked: int = 0
    bytes_checked: int = 0
    blocks_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped_early: bool = False
    # An overwrite was interrupted between its renames: the old checkpoint is set aside
    # (these files; see repair_interrupted_overwrite), and what was verified is it.
    interrupted: bool = False
    set_aside: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_tensors(self) -> list[str]:
        """The tensors named by problems, in order, once each."""
        return list(dict.fromkeys(p.tensor for p in self.problems if p.tensor is not None))

    def summary(self) -> str:
        from tfckpt.inspection.units import human_bytes

        checked = (
            f"{self.tensors_checked} of {self.tensors} tensors, "
            f"{human_bytes(self.bytes_checked)}, {self.blocks_checked} table blocks"
        )
        if self.ok:
            return f"OK: {self.prefix} ({self.format}): {checked} verified"
        if self.interrupted:
            rest = len(self.problems) - 1
            found = f"{rest} more problem(s) in it" if rest else "verified"
            return (
                f"INTERRUPTED: {self.prefix} ({self.format}): an overwrite was interrupted and "
                f"the old checkpoint is set aside ({len(self.set_aside)} file(s)); "
                f"{checked}: {found}"
            )
        bad = len(self.bad_tensors)
        stopped = "; stopped at the first (--all goes on)" if self.stopped_early else ""
        return (
            f"BAD: {self.prefix} ({self.format}): {len(self.problems)} problem(s), "
            f"{bad} bad tensor(s); {checked} checked{stopped}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "format": self.format,
            "ok": self.ok,
            "tensors": self.tensors,
            "tensors_checked": self.tensors_checked,
            "bytes_checked": self.bytes_checked,
            "blocks_checked": self.blocks_checked,
            "bad_tensors": self.bad_tensors,
            "problems": [
                {"path": p.path, "tensor": p.tensor, "message": p.message} for p in self.problems
            ],
            "notes": list(self.notes),
            "stopped_early": self.stopped_early,
            "interrupted": self.interrupted,
            "set_aside": list(self.set_aside),
        }


class _Stop(Exception):
    """Raised to end the check at the first problem."""


class _Checker:
    def __init__(self, report: VerifyReport, keep_going: bool, progress: Progress | None):
        self.report = report
        self.keep_going = keep_going
        self.progress = progress

    def problem(self, message: str, path: str | None = None, tensor: str | None = None) -> None:
        self.report.problems.append(Problem(message, path, tensor))
        if not self.keep_going:
            self.report.stopped_early = True
            raise _Stop

    def error(self, exc: CheckpointError, tensor: str | None = None) -> None:
        self.problem(exc.message, exc.path, exc.tensor or tensor)

    def done(self, nbytes: int | None) -> None:
        self.report.tensors_checked += 1
        self.report.bytes_checked += nbytes or 0
        if self.progress is not None:
            self.progress(nbytes or 0)


def verify_checkpoint(
    path: str | os.PathLike[str], *, keep_going: bool = False, progress: Progress | None = None
) -> VerifyReport:
    """Checks every checksum and the structure of the checkpoint at ``path``.

    ``keep_going`` goes on after the first problem; ``progress`` is called with the bytes of
    each tensor checked.  Problems are reported, not raised.

    Raises:
        CheckpointNotFoundError: there is no checkpoint at ``path``.

    Example::

        report = verify_checkpoint("model.ckpt-1000", keep_going=True)
        if not report.ok:
            print(report.bad_tensors)
    """
    prefix, fmt = paths.resolve(path)
    report = VerifyReport(prefix, fmt)
    checker = _Checker(report, keep_going, progress)
    try:
        if fmt == paths.V2:
            _verify_bundle(prefix, checker)
        else:
            _verify_v1(prefix, checker)
    except _Stop:
        pass
    return report


def repair_interrupted_overwrite(path: str | os.PathLike[str]) -> bool:
    """Puts back the old checkpoint that an overwrite killed between its renames set aside
    (see :attr:`VerifyReport.interrupted`) and removes the temporaries and set-aside files
    killed saves left at the prefix, as the next tfckpt save of it would.  Returns whether
    a checkpoint was put back.

    Raises:
        CheckpointNotFoundError: there is no checkpoint at ``path``.
        ConcurrentWriteError: a writer holds the prefix (it does the same itself).
        StorageError: a rename or removal failed (what is left still reads).

    Example::

        if verify_checkpoint("model.ckpt-5").interrupted:
            repair_interrupted_overwrite("model.ckpt-5")
    """
    prefix, fmt = paths.resolve(path)
    if fmt != paths.V2:
        return False
    with FileLock.acquire(prefix, what="writer of this checkpoint"):
        index = index_filename(prefix)
        interrupted = not os.path.lexists(index) and os.path.lexists(aside_path(index))
        tidy_prefix(prefix)
    return interrupted


def _leftovers(prefix: str, checker: _Checker) -> str:
    """Reports what killed saves left at ``prefix``; returns the index file to verify (the
    set-aside one while an interrupted overwrite is not undone)."""
    report = checker.report
    index = index_filename(prefix)
    temporaries, set_aside = leftovers(prefix)
    if not os.path.lexists(index) and os.path.lexists(aside_path(index)):
        report.interrupted = True
        report.set_aside = sorted(aside_path(final) for final in set_aside)
        # (Not a stop: the set-aside checkpoint is verified too.)
        report.problems.append(
            Problem(
                "an overwrite of this checkpoint was interrupted (its writer died between "
                f"its renames): the old checkpoint is set aside, in {len(set_aside)} "
                f"'*{aside_path('')}' file(s); tfckpt reads it from them, TensorFlow finds no "
                "checkpoint here until the next tfckpt save of this prefix (or "
                "repair_interrupted_overwrite) puts it back",
                aside_path(index),
            )
        )
        return aside_path(index)
    if set_aside:
        report.notes.append(
            f"{len(set_aside)} set-aside file(s) of a completed overwrite are left "
            f"({aside_path(set_aside[0])!r}, ...): readers ignore them, the next save of this "
            "prefix removes them"
        )
    if temporaries:
        report.notes.append(
            f"{len(temporaries)} temporary file(s) of killed saves are left ({temporaries[0]!r}"
            ", ...): readers ignore them, the next save of this prefix removes them"
        )
    return index


def _check_table(path: str, checker: _Checker) -> bool:
    """Reads every block of one table (checksums, key order); False if it is unreadable."""
    try:
        table = TableReader.open(path)
        for _ in table.items():
            pass
    except CheckpointError as exc:
        checker.error(exc)
        return False
    checker.report.blocks_checked += table.num_blocks + 1  # and the index block
    return True


def _verify_bundle(prefix: str, checker: _Checker) -> None:
    report = checker.report
    if not _check_table(_leftovers(prefix, checker), checker):
        return
    try:
        inventory = take_inventory(prefix)
        bundle = BundleReader(prefix)
    except CheckpointError as exc:
        checker.error(exc)
        return
    report.tensors = len(inventory.tensors)
    with bundle:
        missing = _check_files(inventory, bundle, checker)
        extents: list[tuple[int, int, int, str]] = []  # shard, offset, size, tensor
        for info in inventory.tensors:
            name = info.name
            try:
                layout = bundle.entries.layout(name)
            except UnsupportedError:  # variants (and resources): checked as raw bytes
                _check_raw(bundle, name, checker, extents, missing)
                continue
            except CheckpointError as exc:
                checker.error(exc, name)
                continue
            extents.extend((e.shard, e.offset, e.size, name) for e in layout.extents)
            absent = sorted({e.shard for e in layout.extents} & missing)
            if absent:
                checker.problem(
                    f"its data file is missing: {bundle.data_path(absent[0])!r}",
                    prefix,
                    name,
                )
                continue
            try:
                bundle.read(name, copy=False)
            except CheckpointError as exc:
                checker.error(exc, name)
                continue
            checker.done(info.nbytes)
        _check_extents(bundle, extents, missing, checker)
        _check_unlisted_slices(bundle, extents, checker)
    _check_object_graph(prefix, checker)


def _check_files(inventory: Inventory, bundle: BundleReader, checker: _Checker) -> set[int]:
    missing = set()
    for shard in range(bundle.num_shards):
        path = bundle.data_path(shard)  # (the set-aside file of an interrupted overwrite)
        if not os.path.isfile(path):
            missing.add(shard)
            checker.problem("the data file is missing", path)
    for stray in inventory.stray_files:
        checker.report.notes.append(
            f"{stray!r} belongs to no checkpoint of {inventory.num_shards} shard(s) (left over?)"
        )
    return missing


def _check_raw(
    bundle: BundleReader,
    name: str,
    checker: _Checker,
    extents: list[tuple[int, int, int, str]],
    missing: set[int],
) -> None:
    """A tensor tfckpt cannot decode (variant): its bytes' checksums, as TensorFlow wrote
    them (WriteVariantTensor in tensor_bundle.cc)."""
    entry = bundle.entry(name)
    path = bundle.data_path(entry.shard_id)
    extents.append((entry.shard_id, entry.offset, entry.size, name))
    if entry.shard_id in missing:
        checker.problem(f"its data file is missing: {path!r}", bundle.prefix, name)
        return
    try:
        with open(path, "rb") as f:
            f.seek(entry.offset)
            data = f.read(entry.size)
    except OSError as exc:
        checker.problem(f"cannot read its data: {exc.strerror}", path, name)
        return
    if len(data) != entry.size:
        checker.problem(
            f"the entry says {entry.size} bytes at offset {entry.offset} but the file ends "
            "first (truncated?)",
            path,
            name,
        )
        return
    expected = checksum.unmask(entry.crc32c)
    dtype = bundle.dtype(name).name
    if dtype == "variant":
        count = 1
        for dim in bundle.shape(name):
            count *= dim
        try:
            actual = _variant_checksum(data, count, path, name)
        except DataLossError as exc:
            checker.error(exc, name)
            return
    else:
        actual = checksum.crc32c(data)
    if actual != expected:
        checker.problem(
            f"checksum mismatch: the entry says crc32c {expected:#010x}, the {entry.size} "
            f"bytes at offset {entry.offset} give {actual:#010x}",
            path,
            name,
        )
        return
    checker.report.notes.append(
        f"tensor {name!r}: {dtype}, checksums verified (its values need TensorFlow to decode)"
    )
    checker.done(entry.size)


def _variant_checksum(data: bytes, count: int, path: str, name: str) -> int:
    """The CRC32C TensorFlow computes over a variant tensor: per element the length as a
    little-endian uint64, the serialized VariantTensorDataProto and its stored 4-byte masked
    running checksum (which is checked too)."""
    crc = 0
    pos = 0
    for i in range(count):
        length, pos = decode_varint(data, pos, path, f"length of variant element {i}")
        if pos + length + 4 > len(data):
            raise DataLossError(f"variant element {i} runs past the entry", path=path, tensor=name)
        crc = checksum.crc32c(struct.pack("<Q", length), crc)
        crc = checksum.crc32c(data[pos : pos + length], crc)
        pos += length
        (stored,) = struct.unpack_from("<I", data, pos)
        if stored != checksum.mask(crc):
            raise DataLossError(
                f"variant element {i}: its checksum does not match its bytes",
                path=path,
                tensor=name,
            )
        crc = checksum.crc32c(data[pos : pos + 4], crc)
        pos += 4
    if pos != len(data):
        raise DataLossError(
            f"{len(data) - pos} bytes after the last variant element", path=path, tensor=name
        )
    return crc


def _check_extents(
    bundle: BundleReader,
    extents: list[tuple[int, int, int, str]],
    missing: set[int],
    checker: _Checker,
) -> None:
    """No two entries may claim the same bytes; bytes no entry claims are noted."""
    by_shard: dict[int, list[tuple[int, int, str]]] = {}
    for shard, offset, size, name in extents:
        by_shard.setdefault(shard, []).append((offset, size, name))
    for shard in range(bundle.num_shards):
        if shard in missing:
            continue
        path = bundle.data_path(shard)
        claimed = sorted(by_shard.get(shard, []))
        end = 0
        previous = ""
        unused = 0
        for offset, size, name in claimed:
            if size == 0:
                continue
            if offset < end:
                checker.problem(
                    f"its bytes {offset}..{offset + size} overlap those of {previous!r}",
                    path,
                    name,
                )
            else:
                unused += offset - end
            if offset + size > end:
                end, previous = offset + size, name
        try:
            unused += max(0, os.path.getsize(path) - end)
        except OSError:
            continue
        if unused:
            checker.report.notes.append(f"{path!r}: {unused} bytes belong to no tensor")


def _check_unlisted_slices(
    bundle: BundleReader, extents: list[tuple[int, int, int, str]], checker: _Checker
) -> None:
    visible = set(bundle.names())
    unlisted = [k for k in bundle.entries.keys if k not in visible and k.startswith("\x00")]
    if not unlisted:
        return
    used = {(shard, offset) for shard, offset, _, _ in extents}
    orphans = 0
    for key in unlisted:
        try:
            entry = bundle.entry(key)
        except CheckpointError as exc:
            checker.error(exc)
            continue
        if (entry.shard_id, entry.offset) not in used:
            orphans += 1
    if orphans:
        checker.report.notes.append(
            f"{orphans} slice entries belong to no partitioned tensor's list of slices"
        )


def _check_object_graph(prefix: str, checker: _Checker) -> None:
    from tfckpt.objects.keys import PY_STATE
    from tfckpt.objects.numpy_state import deserialize_array
    from tfckpt.objects.restore import read_object_graph
    from tfckpt.reader import load_checkpoint

    with load_checkpoint(prefix) as reader:
        if OBJECT_GRAPH_KEY not in reader:
            return
        try:
            graph = read_object_graph(reader)
        except CheckpointError as exc:
            checker.error(exc, OBJECT_GRAPH_KEY)
            return
        named: set[str] = set()
        for node_id, node in enumerate(graph.nodes):
            for attribute in node.attributes:
                key = attribute.checkpoint_key
                named.add(key)
                if key not in reader:
                    checker.problem(
                        f"object graph node {node_id}: attribute {attribute.name!r} names "
                        f"checkpoint key {key!r}, which the checkpoint does not hold",
                        prefix,
                        OBJECT_GRAPH_KEY,
                    )
                    continue
                if attribute.name != PY_STATE or reader.get_dtype(key).name != "string":
                    continue
                try:
                    data = reader.get_bytes_view(key)
                    if bytes(data[:6]) == b"\x93NUMPY":
                        deserialize_array(data, key, prefix)
                except CheckpointError as exc:
                    checker.error(exc, key)
        unnamed = [k for k in reader if k not in named and k != OBJECT_GRAPH_KEY]
        if unnamed:
            shown = ", ".join(repr(k) for k in unnamed[:3]) + (", ..." if len(unnamed) > 3 else "")
            checker.report.notes.append(
                f"{len(unnamed)} key(s) the object graph does not name (tf.train.Checkpoint "
                f"would not restore them): {shown}"
            )


def _verify_v1(prefix: str, checker: _Checker) -> None:
    report = checker.report
    try:
        tables = V1Reader(prefix)
    except CheckpointError as exc:
        checker.error(exc)
        return
    with tables:
        for file in tables.files:
            _check_table(file, checker)
        report.tensors = len(tables.names())
        report.notes.append("V1 has no per-tensor checksums: its table blocks carry them")
        for name in tables.names():
            try:
                value = tables.read(name)
            except CheckpointError as exc:
                checker.error(exc, name)
                continue
            checker.done(int(value.nbytes) if value.dtype != object else 0)
