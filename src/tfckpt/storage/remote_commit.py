"""Publishing a checkpoint's files on an object store (or another fsspec filesystem).

:class:`RemoteCommit` is the :class:`~tfckpt.storage.commit.Commit` of remote writes.
Object stores have no rename, so the files are not written under temporary names: each is
uploaded under its final name, and the upload is left *unfinished* until :meth:`publish`:

- a file is staged in memory until it reaches ``block_size`` bytes (16 MiB unless given);
  a file that stays smaller is sent by :meth:`~RemoteCommit.publish` in one request (a PUT);
- a larger one streams: a multipart upload on S3 (``CreateMultipartUpload``, one
  ``UploadPart`` per block), a resumable upload on GCS (one chunk per block), through the
  fsspec file objects of s3fs and gcsfs opened with ``autocommit=False``; at most about
  three blocks of a file are in memory at once, however large the file;
- a file already on the same store (:meth:`~RemoteCommit.adopt_object`: a part of a
  multi-host save that :func:`~tfckpt.bundle.merge.merge_bundles` gathers) is copied by
  the store itself when publish reaches it (``CopyObject`` on S3, ``rewrite`` on GCS, one
  dict entry on ``memory://``): no byte goes through the writer, and the copy appears
  whole, as an upload does;
- :meth:`~RemoteCommit.publish` first sends every file's last block (the uploads stay
  unfinished, so nothing is visible yet), then, when the set replaces a checkpoint (its
  commit point, the last file, exists), **deletes the old commit point** (the index), and
  then finishes the uploads in order (``CompleteMultipartUpload``, GCS's final chunk, the
  single PUTs): the data shards, then the index, whose appearance is the commit point; the
  ``checkpoint`` state file is a commit of its own, made after this one;
- :meth:`~RemoteCommit.abort` (and a publish that fails) cancels the unfinished uploads
  (``AbortMultipartUpload``, a DELETE of the resumable session) and deletes what this
  commit had already finished.

Filesystems whose files cannot stay unfinished (``memory://``, SFTP, WebDAV...) stream a
large file to a temporary object ``<final>.tempstate-tfckpt-<16 hex digits>`` that
publish moves (``fs.mv``: a rename where the filesystem has one, else a copy and a
delete); readers ignore those names.

What is atomic where
====================

============  ===========================================================================
S3            One object: a PUT or CompleteMultipartUpload makes it appear (or replaces
              it) whole, and every reader sees it at once (strong read-after-write
              consistency).  Nothing across objects.  Parts of an unfinished upload are
              never visible, but a writer that is killed leaves them (billed) until a
              lifecycle rule ``AbortIncompleteMultipartUpload`` removes them.
GCS           One object: the final chunk of a resumable upload (or a single upload)
              makes it appear whole, a new generation; strongly consistent.  Nothing
              across objects.  An abandoned resumable session expires after a week.
memory://     One object: published by one dict assignment (a small file) or a move.
              In-process only.
file://       Not through this class: local paths, ``file://`` URLs and fsspec's local
              filesystem get :class:`~tfckpt.storage.commit.LocalCommit` (renames, the old
              set aside, fsync when durable).
http(s)://    Read-only: writing raises StorageError.
============  ===========================================================================

Readers therefore only ever find an index whose data shards are complete: the shards are
finished before the index appears.  Overwriting a prefix is where object stores differ
from a local disk: the index is deleted before the new shards replace the old ones, so no
reader that looks the checkpoint up finds the new data beside the old index; a reader that
looked it up before keeps reading, and its reads fail with DataLossError instead of mixing
versions (they are pinned to the version they opened, and every tensor is checksummed:
:mod:`tfckpt.storage.remote`).  Between that delete and the new index -- the few requests
that finish the uploads -- the prefix holds no checkpoint, and a writer killed or failing
there leaves none at that prefix (there is nowhere to set the old one aside without copying
it).  Write new prefixes (``ckpt-<step>``, as CheckpointManager does) where that matters.  A
commit of a single file (the ``checkpoint`` state file) replaces it with one request, never
deleting first: readers see the old file or the new one.

Writers.  A local writer holds a lock file on its prefix; object stores have no locks, so
**one writer per prefix (and per directory's state file) is the caller's job** there: two
writers of the same prefix may leave a mixture of their shards.

Errors.  Every failure of the filesystem (network, permission, missing bucket, a server
error after the backend's own retries) raises :class:`~tfckpt.errors.StorageError` naming
the URL, with ``errno`` (``EACCES`` for a 401/403, ``ENOENT`` for a missing bucket, else
``EIO``) and the backend's exception as its cause.
"""

from __future__ import annotations

import contextlib
import errno
import io
import secrets
import time
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, cast

from tfckpt.errors import InvalidArgumentError, StorageError
from tfckpt.storage import remote
from tfckpt.storage.commit import temporary_path

BLOCK_BYTES = 16 << 20  # the upload block (multipart part, resumable chunk)
# S3 parts (but the last) are at least 5 MiB; GCS chunks (but the last) multiples of 256 KiB.
MIN_BLOCK_BYTES = 5 << 20
_BLOCK_MULTIPLE = 256 << 10
# Filesystems whose files, opened with autocommit=False, upload in blocks and appear only
# on commit() (fsspec AbstractBufferedFile subclasses that honour autocommit).
_UNFINISHED_UPLOADS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})
_READ_ONLY = frozenset({"http", "https"})
_COPY_BYTES = 8 << 20  # the pieces an adopted local file is read in


class RemoteCommit:
    """:class:`~tfckpt.storage.commit.Commit` on an fsspec filesystem (see the module).

    Paths are the caller's (URLs stay URLs): ``storage`` maps them to the filesystem's.

    Raises:
        StorageError: the filesystem is read-only (HTTP).
        InvalidArgumentError: ``block_size`` is below 5 MiB or not a multiple of 256 KiB.

    Example::

        storage, prefix = locate("s3://bucket/run/ckpt-1")
        commit = RemoteCommit(storage)
        commit.create(prefix + ".data-00000-of-00001").write(data)
        commit.create(prefix + ".index").write(index)
        commit.publish()  # the data object appears, then the index
    """

    def __init__(self, storage: remote.RemoteStorage, *, block_size: int = BLOCK_BYTES) -> None:
        if block_size < MIN_BLOCK_BYTES or block_size % _BLOCK_MULTIPLE:
            raise InvalidArgumentError(
                f"block_size must be at least {MIN_BLOCK_BYTES} bytes and a multiple of "
                f"{_BLOCK_MULTIPLE} (S3 parts and GCS chunks), got {block_size}"
            )
        protocols = _protocols(storage.fs)
        if protocols & _READ_ONLY:
            raise StorageError(
                "HTTP servers are read-only: write checkpoints to an object store (s3://, "
                "gs://...) or a local path",
                path=storage.prefix or None,
                errno=errno.EROFS,
            )
        self.storage = storage
        self.fs = storage.fs
        self.block_size = block_size
        self.unfinished_uploads = bool(protocols & _UNFINISHED_UPLOADS)
        self._tag = secrets.token_hex(8)
        self._pending: list[_Upload | _Adopted | _Copy] = []

    def create(self, final_path: str, *, buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> BinaryIO:
        """See :meth:`~tfckpt.storage.commit.Commit.create` (``buffer_size`` is unused: the
        upload block is the buffer).  Nothing is sent until a block is full.

        Raises:
            ValueError: ``final_path`` was added already.
        """
        upload = _Upload(self, self._new_final(final_path))
        self._pending.append(upload)
        return cast(BinaryIO, upload)

    def adopt(self, path: str, final_path: str) -> None:
        """See :meth:`~tfckpt.storage.commit.Commit.adopt`: the local file ``path`` is
        uploaded (streamed) by :meth:`publish` under ``final_path`` and left in place."""
        self._pending.append(_Adopted(str(path), self._new_final(final_path)))

    def adopt_object(self, path: str, final_path: str) -> None:
        """Adds the complete object ``path`` on this commit's store, which :meth:`publish`
        copies in its turn to ``final_path`` with the store's own copy (S3 ``CopyObject``,
        GCS ``rewrite``: no byte goes through this process) and leaves in place; the
        caller deletes it once the set is published (a merge does, as a local merge
        renames).  ``path`` is in the caller's form, as ``final_path``.

        Raises:
            ValueError: ``final_path`` was added already.

        Example::

            commit.adopt_object("s3://b/run/ckpt_temp/part-00000-of-00002.data-00000-of-00001",
                                "s3://b/run/ckpt.data-00000-of-00002")
        """
        self._pending.append(_Copy(self, str(path), self._new_final(final_path)))

    def temporary_of(self, final_path: str) -> str | None:
        """The temporary object that becomes ``final_path``, if there is one (only on
        filesystems without unfinished uploads, for a file larger than a block)."""
        for item in self._pending:
            if isinstance(item, _Upload) and item.final == final_path:
                return item.temporary
        return None

    def publish(self) -> None:
        """See :meth:`~tfckpt.storage.commit.Commit.publish` and the module docstring.

        Raises:
            StorageError: an upload or delete failed: the unfinished uploads are cancelled
                and what this commit had finished is deleted.  The checkpoint that was
                at the prefix is still there unless the failure came after its index was
                deleted (the message says which).
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        uploads: list[_Upload | _Copy] = []
        finished: list[_Upload | _Copy] = []
        try:
            for item in pending:
                upload = item.upload(self) if isinstance(item, _Adopted) else item
                uploads.append(upload)
                upload.send_rest()
            commit_point = uploads[-1].final
            if len(uploads) > 1 and self._exists(commit_point):
                # The old index goes first: nobody may find it beside the new data.
                self._remove(commit_point, "deleting the index of the checkpoint it replaces")
                for upload in uploads:
                    upload.replaced = True
            for upload in uploads:
                upload.finish()
                finished.append(upload)
        except BaseException:
            for upload in uploads:
                if upload not in finished:
                    upload.cancel()
            for upload in reversed(finished):
                with contextlib.suppress(Exception):
                    self._remove(upload.final, "deleting a published file")
            for item in pending[len(uploads) :]:
                if isinstance(item, _Upload):
                    item.cancel()
            raise

    def abort(self) -> None:
        """See :meth:`~tfckpt.storage.commit.Commit.abort`: unfinished uploads are
        cancelled (best effort: a store that fails now keeps unfinished parts, which are
        never visible)."""
        pending, self._pending = self._pending, []
        for item in pending:
            if isinstance(item, _Upload):
                item.cancel()

    # -- helpers ---------------------------------------------------------------------------

    def _new_final(self, final_path: str) -> str:
        final = str(final_path)
        if any(item.final == final for item in self._pending):
            raise ValueError(f"{final!r} is already part of this commit")
        return final

    def _exists(self, path: str) -> bool:
        fs_path = self.storage.fs_path(path)
        with guard("looking up the file", path):
            self.fs.invalidate_cache(fs_path)
            return bool(retrying(self.fs.exists, fs_path))

    def _remove(self, path: str, doing: str) -> None:
        remove_objects(self.storage, [path], doing=doing)


class _Adopted:
    """A complete local file that publish uploads under ``final``."""

    def __init__(self, source: str, final: str) -> None:
        self.source = source
        self.final = final

    def upload(self, commit: RemoteCommit) -> _Upload:
        upload = _Upload(commit, self.final)
        try:
            with open(self.source, "rb") as f:
                while piece := f.read(_COPY_BYTES):
                    upload.write(piece)
        except OSError as exc:
            upload.cancel()
            raise StorageError(
                f"reading the file to upload as {self.final!r} failed: {exc.strerror or exc}",
                path=self.source,
                errno=exc.errno,
            ) from None
        return upload


class _Copy:
    """An object of the same store that publish copies (server side) to ``final``."""

    def __init__(self, commit: RemoteCommit, source: str, final: str) -> None:
        self.source = source
        self.final = final
        self.replaced = False  # the checkpoint it replaces was deleted first
        self._commit = commit

    def send_rest(self) -> None:
        """Nothing to send: the store copies the object."""

    def finish(self) -> None:
        """Makes the copy appear under its final name (one request; the store copies)."""
        storage = self._commit.storage
        source, target = storage.fs_path(self.source), storage.fs_path(self.final)
        with guard(f"copying {self.source!r} into place", self.final, replaced=self.replaced):
            retrying(self._commit.fs.cp_file, source, target)
        self._commit.fs.invalidate_cache(target)

    def cancel(self) -> None:
        """Nothing was started: the copy is a single request."""


class _Upload(io.IOBase):
    """One file of a :class:`RemoteCommit`: a writable binary file whose bytes are staged
    up to a block, then streamed (see the module docstring).  ``close()`` does nothing:
    the commit finishes or cancels it."""

    def __init__(self, commit: RemoteCommit, final: str) -> None:
        super().__init__()
        self.final = final
        self.temporary: str | None = None  # the temporary object, on filesystems without
        self.replaced = False  # the checkpoint it replaces was deleted first
        self._commit = commit
        self._fs = commit.fs
        self._block = commit.block_size
        self._staged = bytearray()
        self._file: Any = None  # the fsspec file, once more than a block was written
        self._position = 0
        self._state = "open"  # open -> sent -> finished | cancelled

    # -- the file API the writers use ------------------------------------------------------

    def writable(self) -> bool:
        return self._state == "open"

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        """Nothing to do: blocks are sent as they fill."""

    def close(self) -> None:
        """Nothing to do: :meth:`RemoteCommit.publish` and ``abort`` end the upload."""

    def write(self, data: Any) -> int:
        if self._state != "open":
            raise ValueError(f"{self.final!r}: the upload is {self._state}, no more writes")
        view = memoryview(data).cast("B")
        size = len(view)
        self._position += size
        staged = self._staged
        if self._file is None and len(staged) + size < self._block:
            staged += view
            return size
        if self._file is None:
            self._open()
        used = 0
        if staged:  # top the staged bytes up to a block
            used = min(size, self._block - len(staged))
            staged += view[:used]
            if len(staged) < self._block:
                return size
            self._send(staged)
            staged.clear()
        while size - used >= self._block:  # whole blocks straight from the caller's memory
            self._send(view[used : used + self._block])
            used += self._block
        staged += view[used:]
        return size

    # -- the commit's steps ----------------------------------------------------------------

    def send_rest(self) -> None:
        """Sends what is staged of a streaming upload, leaving it unfinished."""
        if self._state != "open":
            return
        self._state = "sent"
        if self._file is None:
            return  # sent whole by finish()
        if self._staged:
            self._send(self._staged)
            self._staged = bytearray()
        with self._guard("uploading the file"):
            self._file.close()  # (autocommit=False: the last block goes, nothing appears)

    def finish(self) -> None:
        """Makes the file appear under its final name."""
        self.send_rest()
        if self._file is None:
            with self._guard("uploading the file"):
                retrying(self._fs.pipe_file, self._fs_path(self.final), bytes(self._staged))
            self._staged = bytearray()
        elif self.temporary is None:
            with self._guard("finishing the upload"):
                self._file.commit()
        else:
            with self._guard("moving the file in place"):
                self._fs.mv(self._fs_path(self.temporary), self._fs_path(self.final))
        self._state = "finished"
        self._file = None

    def cancel(self) -> None:
        """Cancels an unfinished upload (best effort: never raises)."""
        if self._state in ("finished", "cancelled"):
            return
        self._state = "cancelled"
        self._staged = bytearray()
        file, self._file = self._file, None
        if file is None:
            return
        with contextlib.suppress(Exception):
            if self.temporary is None:
                file.discard()  # AbortMultipartUpload, or the resumable session's DELETE
                file.closed = True  # (a discarded s3fs file cannot flush when collected)
            else:
                with contextlib.suppress(Exception):
                    file.close()
                self._fs.rm_file(self._fs_path(self.temporary))

    # -- internals -------------------------------------------------------------------------

    def _open(self) -> None:
        commit = self._commit
        if commit.unfinished_uploads:
            target, options = self.final, {"autocommit": False}
        else:
            self.temporary = temporary_path(self.final, commit._tag)
            target, options = self.temporary, {}
        with self._guard("starting the upload"):
            self._file = self._fs.open(
                self._fs_path(target), "wb", block_size=self._block, **options
            )
        if commit.unfinished_uploads and getattr(self._file, "autocommit", True):
            self.cancel()
            raise StorageError(
                f"{type(self._fs).__name__} does not keep uploads unfinished until they are "
                "committed (autocommit=False), which publishing safely needs",
                path=self.final,
                errno=errno.ENOTSUP,
            )

    def _send(self, block: Any) -> None:
        with self._guard("uploading the file"):
            self._file.write(block)

    def _fs_path(self, path: str) -> str:
        return self._commit.storage.fs_path(path)

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            with guard(doing, self.final, replaced=self.replaced):
                yield
        except BaseException:
            self.cancel()
            raise


# -- deleting -----------------------------------------------------------------------------


def remove_objects(target: Any, paths: Iterable[str], *, doing: str = "deleting") -> None:
    """Deletes the objects ``paths`` one after the other, in the order given (put a
    checkpoint's index first: once it is gone nobody finds the checkpoint), skipping those
    that do not exist.

    ``target`` is the :class:`~tfckpt.storage.remote.RemoteStorage` the paths are on (as
    :func:`~tfckpt.storage.location.locate` returns it; paths in the caller's form, URLs
    included) or an fsspec filesystem (paths on it, or URLs of its protocol).

    Raises:
        StorageError: a delete failed (after retries of transient failures), naming the
            object; the objects before it are deleted, those after it are not.

    Example::

        storage, prefix = locate("gs://bucket/run/ckpt-3")
        remove_objects(storage, [prefix + ".index", prefix + ".data-00000-of-00001"])
    """
    if isinstance(target, remote.RemoteStorage):
        fs, to_fs = target.fs, target.fs_path
    else:
        fs, to_fs = target, target._strip_protocol
    for path in paths:
        fs_path = to_fs(path)
        with guard(doing, path, consequence=False):
            try:
                retrying(fs.rm_file, fs_path)
            except FileNotFoundError:
                pass  # deleted already (S3 does not tell)
            finally:
                fs.invalidate_cache(fs_path)


# -- errors -------------------------------------------------------------------------------


def retrying(function: Any, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, an idempotent request, tried again on transient
    failures (as reads are: :data:`tfckpt.storage.remote.ATTEMPTS` times with backoff)."""
    for attempt in range(remote.ATTEMPTS):
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            if remote.classify(exc) != "transient" or attempt + 1 >= remote.ATTEMPTS:
                raise
        time.sleep(remote.BACKOFF_SECONDS * 2**attempt)
    raise AssertionError("unreachable: the last attempt raises")


@contextlib.contextmanager
def guard(
    doing: str, path: str, *, replaced: bool = False, consequence: bool = True
) -> Iterator[None]:
    """Raises what the filesystem raises inside as :func:`write_error` (StorageError
    naming ``path``); programming errors pass as they are."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        if remote.classify(exc) == "bug":
            raise
        raise write_error(exc, doing, path, replaced=replaced, consequence=consequence) from exc


def write_error(
    exc: BaseException, doing: str, path: str, *, replaced: bool = False, consequence: bool = True
) -> StorageError:
    """The StorageError for a filesystem's ``exc`` raised while ``doing`` to ``path``."""
    kind = remote.classify(exc)
    status = remote.http_status(exc)
    code = f"HTTP {status}: " if status else ""
    detail = f"{code}{type(exc).__name__}: {str(exc).strip() or 'no detail'}"
    if kind == "denied":
        what, number = (
            "access denied; check the credentials and that they may write here "
            f"(storage_options) ({detail})",
            errno.EACCES,
        )
    elif kind == "missing":
        what, number = f"the bucket or its parent does not exist ({detail})", errno.ENOENT
    elif kind == "refused":
        what, number = f"the server refused ({detail})", errno.EIO
    else:
        what = f"it failed ({detail})"
        number = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EIO
    if not consequence:
        after = ""
    elif replaced:
        after = (
            "; the index of the checkpoint this one replaces was already deleted: "
            "there is no checkpoint at this prefix now"
        )
    else:
        after = "; nothing was published, what was there before is unchanged"
    return StorageError(f"{doing}: {what}{after}", path=path, errno=number)


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return set(protocol) if isinstance(protocol, (tuple, list)) else {protocol}
