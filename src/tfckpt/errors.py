"""The exception hierarchy of tfckpt.

Every error that tfckpt raises on bad input derives from :class:`CheckpointError` and says
which file, which tensor, and what was expected against what was found.  The kinds mirror
TensorFlow's status codes where a TensorFlow user would look for them (``NotFound``,
``DataLoss``, ``Unimplemented``, ``InvalidArgument``) and also derive from the built-in
exception a Python user would catch (``KeyError``, ``FileNotFoundError``, ``ValueError``,
``NotImplementedError``).

They are TensorFlow's error classes too: :class:`CheckpointError` is a
``tf.errors.OpError`` (:mod:`tfckpt.compat.status`, without TensorFlow) and each kind
derives from the ``tf.errors`` class TensorFlow raises in its place, so code written
against ``tf.train`` that catches ``tf.errors.NotFoundError`` (or ``ValueError`` for "no
checkpoint in this directory") catches tfckpt's errors unchanged.
"""

from __future__ import annotations

import os

from tfckpt.compat import status

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConcurrentWriteError",
    "DataLossError",
    "InvalidArgumentError",
    "NotFoundError",
    "StorageError",
    "TensorNotFoundError",
    "UnsupportedError",
]


class CheckpointError(status.OpError):
    """Base class of every error tfckpt raises about a checkpoint.

    ``message`` says what was expected and what was found; ``path`` (the file or checkpoint
    prefix concerned) and ``tensor`` (the tensor name), when known, are kept as attributes
    and put in front of the message by ``str()``, so raise sites never format them::

        >>> str(DataLossError("checksum mismatch", path="m.data-00000-of-00001", tensor="w"))
        "'m.data-00000-of-00001', tensor 'w': checksum mismatch"
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        tensor: str | None = None,
    ) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.tensor = tensor
        Exception.__init__(self, message)  # (args == (message,), unlike OpError's)
        self._set_status(None, None, message, self.code, None)

    def __str__(self) -> str:
        if self.path is None and self.tensor is None:
            return self.message
        return f"{describe(self.path, self.tensor)}: {self.message}"

    def __reduce__(self) -> tuple[object, ...]:  # keep errors picklable across processes
        return (_rebuild, (type(self), self.message, self.path, self.tensor))


def _rebuild(
    cls: type[CheckpointError], message: str, path: str | None, tensor: str | None
) -> CheckpointError:
    return cls(message, path=path, tensor=tensor)


class NotFoundError(CheckpointError, status.NotFoundError):
    """A checkpoint, file or tensor does not exist (TensorFlow's ``NotFoundError``)."""


class CheckpointNotFoundError(NotFoundError, FileNotFoundError, ValueError):
    """No checkpoint (or one of its files) exists at the given path.

    Also a ``ValueError``, which is what ``tf.train.load_checkpoint`` raises for a directory
    without a checkpoint (and a ``tf.errors.NotFoundError``, what it raises for a missing
    prefix).
    """


class TensorNotFoundError(NotFoundError, KeyError):
    """The checkpoint holds no tensor of that name."""


class DataLossError(CheckpointError, status.DataLossError):
    """The file is truncated or corrupt: bad magic, checksum mismatch, unparseable data."""


class UnsupportedError(
    CheckpointError, NotImplementedError, status.UnimplementedError, status.InternalError
):
    """The file is valid but uses a feature tfckpt does not handle (e.g. resource tensors).

    A ``tf.errors.UnimplementedError`` (its ``error_code``), and an ``InternalError`` too:
    TensorFlow's reader raises that for variant and resource values, which is where a
    TensorFlow user would catch it (``inspect_checkpoint`` does).
    """


class InvalidArgumentError(CheckpointError, ValueError, status.InvalidArgumentError):
    """A caller passed a value tfckpt cannot write or an argument that does not fit."""


class StorageError(CheckpointError, status.UnknownError, OSError):
    """Writing (or moving, syncing, removing) a file failed: a full disk, an I/O error, a
    permission.  ``path`` names the file, ``errno`` is the system's (``errno.ENOSPC``...),
    and, being an ``OSError``, it is caught where ``OSError`` was."""

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        tensor: str | None = None,
        errno: int | None = None,
    ) -> None:
        super().__init__(message, path=path, tensor=tensor)
        self.errno = errno
        self.strerror = os.strerror(errno) if errno is not None else None
        self.filename = self.path

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_storage, (type(self), self.message, self.path, self.tensor, self.errno))


def _rebuild_storage(
    cls: type[StorageError], message: str, path: str | None, tensor: str | None, errno: int | None
) -> StorageError:
    return cls(message, path=path, tensor=tensor, errno=errno)


class ConcurrentWriteError(CheckpointError, status.AbortedError):
    """Another writer holds the checkpoint (or the manager's directory) being written: one
    of two writers aimed at the same files fails instead of mixing their files."""


def describe(path: str | os.PathLike[str] | None, tensor: str | None = None) -> str:
    """The location part of an error message: ``'file', tensor 'name'`` (either part may
    be missing)."""
    parts = []
    if path is not None:
        parts.append(repr(os.fspath(path)))
    if tensor is not None:
        parts.append(f"tensor {tensor!r}")
    return ", ".join(parts)
