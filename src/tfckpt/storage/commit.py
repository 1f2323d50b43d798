"""Publishing a checkpoint's files so that readers only ever see complete checkpoints.

Every file is written under a temporary name and moved to its final name only once all of
them are complete, in order: the data shards first and the index last, so whoever finds the
index finds the data it points to.  (TensorFlow's BundleWriter::Finish in
tensorflow/core/util/tensor_bundle/tensor_bundle.cc writes ``<file>.tempstate<random>`` and
renames it, the data file before the index is even written; MergeBundles writes the merged
index straight under its final name.  tfckpt renames every file, the index last.)

Overwriting.  Replacing a checkpoint takes several renames, and only one rename is atomic:
renaming the new data over the old and then the new index over the old leaves, between the
two, new data beside the old index (TensorFlow does exactly this).  So when the commit point
(the last file, the index) exists already, :meth:`LocalCommit.publish` first moves the old
files aside under reserved names, the index first, then renames the new files in, the index
last, then removes what it set aside::

    <index>                      -> <index>.tempstate-tfckpt-old        the old set, aside
    <data>                       -> <data>.tempstate-tfckpt-old
    <data>.tempstate-tfckpt-<t>  -> <data>                              the new set, in
    <index>.tempstate-tfckpt-<t> -> <index>                             (the commit point)
    remove <index>.tempstate-tfckpt-old, then <data>.tempstate-tfckpt-old

At every moment either the final index exists, and the final data files are its own, or it
does not and the old checkpoint is the aside index with, for each of its data files, the
aside file where there is one and the final file where there is not (that one was not
replaced yet).  A process killed anywhere in between therefore leaves the whole old
checkpoint or the whole new one: readers, which never write, read the aside set when the
final index is missing (:func:`set_aside_source`), and the next writer of the prefix puts
it back (:func:`restore_set_aside`) before it writes.  A publish that fails (rather than
dies) puts everything back itself.  A reader that opens a prefix while another process is
replacing it may still find the files changing under it; checksums make that an error,
never a mixture.

Durability.  With ``durable=True`` every file is fsynced before the renames and its
directory after them (before the aside files are removed), so a published checkpoint
survives a power loss (TensorFlow does not fsync); on file systems that journal metadata in
order (ext4, xfs, btrfs) a power loss during the renames leaves one of the states above.

Reserved names.  Everything tfckpt puts beside a checkpoint that is not one of its files
carries the marker ``.tempstate-tfckpt-`` (:data:`TEMP_MARK`): temporaries
``<final>.tempstate-tfckpt-<16 hex digits>``, set-aside files ``<final>.tempstate-tfckpt-
old`` and lock files (:mod:`tfckpt.storage.lock`).  Readers ignore them; the next writer of
the same prefix removes those a killed writer left, and never touches other names
(TensorFlow's own temporaries, ``.tempstate<decimal>``, included).

Errors.  A failing write, fsync, rename or removal raises :class:`~tfckpt.errors.
StorageError` (an ``OSError`` keeping ``errno``) naming the file, after the temporaries are
removed and anything set aside is put back: a failed save leaves the previous checkpoint.

:class:`Commit` is the protocol; :class:`LocalCommit` implements it on the local file
system.  A remote writer (an object store) implements the same methods: uploads staged by
``create``, completed in order by ``publish``, cancelled by ``abort``.  :func:`write_buffers`
writes many buffers to a created file at once, straight from their memory.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO, NamedTuple, Protocol

import numpy as np

from tfckpt.errors import StorageError

_HAS_WRITEV = hasattr(os, "writev")


def _iov_max() -> int:
    """The most buffers one os.writev takes (IOV_MAX; POSIX guarantees 16)."""
    try:
        return max(16, min(1024, os.sysconf("SC_IOV_MAX")))
    except (AttributeError, ValueError, OSError):
        return 16


_IOV_MAX = _iov_max()

TEMP_MARK = ".tempstate-tfckpt-"
ASIDE_SUFFIX = TEMP_MARK + "old"
_TEMPORARY = re.compile(re.escape(TEMP_MARK) + "[0-9a-f]{16}")


def temporary_path(final: str, tag: str) -> str:
    """The temporary that becomes ``final``, for the commit tagged ``tag`` (16 hex digits)."""
    return f"{final}{TEMP_MARK}{tag}"


def aside_path(final: str) -> str:
    """Where an overwrite keeps the old ``final`` until the new set is committed."""
    return final + ASIDE_SUFFIX


def reserved_final(name: str) -> tuple[str, str] | None:
    """``(final name, "temporary" | "aside")`` when ``name`` is one of tfckpt's temporary
    or set-aside names, else None."""
    if name.endswith(ASIDE_SUFFIX):
        return name[: -len(ASIDE_SUFFIX)], "aside"
    cut = name.rfind(TEMP_MARK)
    if cut > 0 and _TEMPORARY.fullmatch(name, cut):
        return name[:cut], "temporary"
    return None


def set_aside_source(final: str) -> str:
    """The file that holds ``final``'s old contents while an overwrite is interrupted: its
    aside file where there is one, else ``final`` itself (not replaced yet).  Reads only."""
    aside = aside_path(final)
    return aside if os.path.lexists(aside) else final


def restore_set_aside(commit_point: str, members: Iterable[str]) -> bool:
    """Undoes what an interrupted publish left: when ``commit_point`` is missing but its
    aside file exists, moves the aside files of ``members`` (the other files of the set)
    and then the commit point back to their final names; otherwise removes their aside
    files, which a publish killed after its commit point left.  Returns whether it put a
    set back.  Only for the holder of the set's lock.

    Raises:
        StorageError: a rename or removal failed (what is left is still readable).
    """
    members = [m for m in members if m != commit_point]
    if os.path.lexists(aside_path(commit_point)) and not os.path.lexists(commit_point):
        for final in members:
            if os.path.lexists(aside_path(final)):
                _rename(aside_path(final), final)
        _rename(aside_path(commit_point), commit_point)
        return True
    for final in (commit_point, *members):
        _remove(aside_path(final))
    return False


class Commit(Protocol):
    """Files that appear under their final names together, in the order they were added."""

    def create(self, final_path: str, *, buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> BinaryIO:
        """A new empty file to write, which :meth:`publish` moves to ``final_path``.

        The caller writes to it (its ``fileno()``, where there is one, may be written
        directly after a ``flush()``) but does not close it: publish and abort do.
        """
        ...

    def adopt(self, path: str, final_path: str) -> None:
        """Adds the complete existing file ``path``, which :meth:`publish` moves as it is to
        ``final_path`` in its turn (and :meth:`abort` leaves where it is)."""
        ...

    def publish(self) -> None:
        """Completes every file and moves each to its final path, in the order they were
        created or adopted: the last one is the commit point.  Files it replaces are
        replaced all or none (see the module docstring).

        Raises:
            StorageError: writing or moving failed; the temporaries are removed and the
                files that were there before are back under their names.
        """
        ...

    def abort(self) -> None:
        """Discards every temporary; nothing more appears under the final names.  Doing it
        twice, or after :meth:`publish`, does nothing."""
        ...


class _Pending(NamedTuple):
    source: str  # a temporary, or an adopted file
    final: str
    file: BinaryIO | None  # open while the temporary is written; None if adopted


class LocalCommit:
    """:class:`Commit` on the local file system: ``os.replace`` of temporaries written beside
    their final paths (in the same directory, so that the rename is atomic)."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self._tag = secrets.token_hex(8)
        self._pending: list[_Pending] = []

    def create(self, final_path: str, *, buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> BinaryIO:
        """See :meth:`Commit.create`; the parent directory is made when missing.

        Raises:
            ValueError: ``final_path`` was added already.
            StorageError: the temporary cannot be created.
        """
        final = self._new_final(final_path)
        temp = temporary_path(final, self._tag)
        try:
            file: BinaryIO = io.BufferedWriter(io.FileIO(temp, "wb"), buffer_size)
        except OSError as exc:
            raise storage_error(exc, "creating the file failed", final, temp) from None
        self._pending.append(_Pending(temp, final, file))
        return file

    def adopt(self, path: str, final_path: str) -> None:
        """See :meth:`Commit.adopt`; the parent directory is made when missing.

        Raises:
            ValueError: ``final_path`` was added already.
        """
        self._pending.append(_Pending(os.fspath(path), self._new_final(final_path), None))

    def temporary_of(self, final_path: str) -> str | None:
        """The temporary (or adopted file) that becomes ``final_path``, if it was added."""
        return next((p.source for p in self._pending if p.final == final_path), None)

    def publish(self) -> None:
        """See :meth:`Commit.publish`."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            for item in pending:
                if item.file is not None:
                    self._complete(item)
            set_aside = self._swap(pending)
        except BaseException:
            _discard(pending)
            raise
        if self.durable:
            for directory in dict.fromkeys(os.path.dirname(p.final) for p in pending):
                fsync_directory(directory or ".")
        for final in set_aside:  # the commit point's first: the old set is gone as a whole
            with contextlib.suppress(OSError):  # garbage the next writer removes
                os.remove(aside_path(final))

    def abort(self) -> None:
        """See :meth:`Commit.abort`."""
        pending, self._pending = self._pending, []
        _discard(pending)

    def _new_final(self, final_path: str) -> str:
        final = os.fspath(final_path)
        if any(item.final == final for item in self._pending):
            raise ValueError(f"{final!r} is already part of this commit")
        directory = os.path.dirname(final)
        if directory:
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                raise storage_error(exc, "creating its directory failed", final) from None
        return final

    def _complete(self, item: _Pending) -> None:
        file = item.file
        assert file is not None
        try:
            file.flush()
            if self.durable:
                os.fsync(file.fileno())
            file.close()
        except OSError as exc:
            raise storage_error(exc, "writing the file failed", item.final, item.source) from None

    def _swap(self, pending: list[_Pending]) -> list[str]:
        """Renames the files into place, first setting aside what they replace when the
        commit point exists (the module docstring says why); returns what was set aside.
        On failure everything is put back as it was."""
        commit_point = pending[-1].final
        set_aside: list[str] = []
        renamed: list[_Pending] = []
        try:
            if os.path.lexists(commit_point):
                for final in (commit_point, *(p.final for p in pending[:-1])):
                    if os.path.lexists(final):
                        _rename(final, aside_path(final))
                        set_aside.append(final)
            for item in pending:
                _rename(item.source, item.final)
                renamed.append(item)
        except BaseException:
            _put_back(renamed, set_aside)
            raise
        return set_aside


def storage_error(
    exc: OSError, doing: str, final: str, temporary: str | None = None
) -> StorageError:
    """The StorageError for ``exc``, raised while ``doing`` to ``final`` (or its
    ``temporary``): it names the file and keeps ``errno``."""
    where = f" (in its temporary {temporary!r})" if temporary and temporary != final else ""
    return StorageError(
        f"{doing}{where}: {exc.strerror or exc}; nothing was published, what was there "
        "before is unchanged",
        path=final,
        errno=exc.errno,
    )


def write_buffers(file: BinaryIO, buffers: Sequence[Any], nbytes: int) -> None:
    """Writes ``nbytes`` from ``buffers`` (bytes-like objects, C-contiguous arrays) one after
    the other, straight from their memory: with gathered writes (os.writev) where ``file``
    is a local file, else through ``file.write``."""
    fd = _gather_fd(file)
    if fd is None:
        for buffer in buffers:
            file.write(buffer)
        return
    file.flush()  # what it holds goes first
    if len(buffers) <= _IOV_MAX:
        _write_gathered(fd, file, buffers, nbytes)
        return
    for start in range(0, len(buffers), _IOV_MAX):
        group = buffers[start : start + _IOV_MAX]
        _write_gathered(fd, file, group, sum(map(_byte_size, group)))


def _gather_fd(file: BinaryIO) -> int | None:
    if not _HAS_WRITEV:
        return None
    try:
        return file.fileno()
    except (OSError, ValueError):  # not a file (io.UnsupportedOperation is both)
        return None


def _write_gathered(fd: int, file: BinaryIO, buffers: Sequence[Any], nbytes: int) -> None:
    written = os.writev(fd, buffers)
    if written == nbytes:
        return
    # A short write (rare for files: a signal, a full disk): the rest through ``file``,
    # which raises a persisting error.
    for buffer in buffers:
        view = _byte_view(buffer)
        if written >= len(view):
            written -= len(view)
            continue
        file.write(view[written:])
        written = 0
    file.flush()


def _byte_view(buffer: Any) -> memoryview:
    if isinstance(buffer, np.ndarray):  # (memoryview cannot take ml_dtypes' arrays)
        return buffer.reshape(-1).view(np.uint8).data
    return memoryview(buffer).cast("B")


def _byte_size(buffer: Any) -> int:
    return int(buffer.nbytes) if isinstance(buffer, np.ndarray) else memoryview(buffer).nbytes


def _discard(pending: list[_Pending]) -> None:
    """Closes and removes the temporaries (those already moved are gone: nothing to do)."""
    for item in pending:
        if item.file is None:
            continue
        with contextlib.suppress(Exception):  # a failing disk must not hide the first error
            item.file.close()
        with contextlib.suppress(OSError):
            os.remove(item.source)


def _put_back(renamed: list[_Pending], set_aside: list[str]) -> None:
    """Undoes a swap that failed before its commit point: the new files back to their
    sources, then the old ones back from aside.  Best effort: whatever fails here leaves
    a state that readers and the next writer recover from."""
    with contextlib.suppress(OSError):
        for item in reversed(renamed):
            os.replace(item.final, item.source)
        for final in reversed(set_aside):
            os.replace(aside_path(final), final)


def _rename(source: str, target: str) -> None:
    try:
        os.replace(source, target)
    except OSError as exc:
        raise storage_error(exc, f"renaming {source!r} to it failed", target) from None


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError(
            f"removing a leftover file failed: {exc.strerror or exc}", path=path, errno=exc.errno
        ) from None


# fsync errors that mean "directories cannot be synced here", not "the data is lost".
_FSYNC_UNSUPPORTED = {errno.EINVAL, errno.EBADF, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EACCES}


def fsync_directory(directory: str) -> None:
    """Makes the renames in ``directory`` durable, where the system allows it.

    Raises:
        StorageError: the directory could not be synced (an I/O error): the files are in
            place but may not survive a power loss.
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _FSYNC_UNSUPPORTED:
            raise StorageError(
                f"syncing the directory failed: {exc.strerror or exc}; the files were "
                "renamed into place but may not survive a power loss",
                path=directory,
                errno=exc.errno,
            ) from None
    finally:
        os.close(fd)
