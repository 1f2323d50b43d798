"""The exception hierarchy of tfckpt.

Every error that tfckpt raises on bad input derives from :class:`CheckpointError` and says
which file, which tensor, and what was expected against what was found.  The kinds mirror
TensorFlow's status codes where a TensorFlow user would look for them (``NotFound``,
``DataLoss``, ``Unimplemented``, ``InvalidArgument``) and also derive from the built-in
exception a Python user would catch (``KeyError``, ``FileNotFoundError``, ``ValueError``,
``NotImplementedError``).
"""

from __future__ import annotations

import os

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "DataLossError",
    "InvalidArgumentError",
    "NotFoundError",
    "TensorNotFoundError",
    "UnsupportedError",
]


class CheckpointError(Exception):
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
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.tensor = tensor
        super().__init__(message)

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


class NotFoundError(CheckpointError):
    """A checkpoint, file or tensor does not exist (TensorFlow's ``NotFoundError``)."""


class CheckpointNotFoundError(NotFoundError, FileNotFoundError):
    """No checkpoint (or one of its files) exists at the given path."""


class TensorNotFoundError(NotFoundError, KeyError):
    """The checkpoint holds no tensor of that name."""


class DataLossError(CheckpointError):
    """The file is truncated or corrupt: bad magic, checksum mismatch, unparseable data."""


class UnsupportedError(CheckpointError, NotImplementedError):
    """The file is valid but uses a feature tfckpt does not handle (e.g. resource tensors)."""


class InvalidArgumentError(CheckpointError, ValueError):
    """A caller passed a value tfckpt cannot write or an argument that does not fit."""


def describe(path: str | os.PathLike[str] | None, tensor: str | None = None) -> str:
    """The location part of an error message: ``'file', tensor 'name'`` (either part may
    be missing)."""
    parts = []
    if path is not None:
        parts.append(repr(os.fspath(path)))
    if tensor is not None:
        parts.append(f"tensor {tensor!r}")
    return ", ".join(parts)
