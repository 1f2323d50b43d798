"""TensorFlow's status-code exceptions: ``tf.errors.OpError`` and its sixteen subclasses.

Same names, codes (tensorflow/core/protobuf/error_codes.proto), constructors
(``NotFoundError(node_def, op, message)``; ``OpError(node_def, op, message, error_code)``)
and attributes (``message``, ``op``, ``node_def``, ``error_code``, ``experimental_payloads``)
as tensorflow/python/framework/errors_impl.py, so that code which raises or catches
``tf.errors.*`` works without TensorFlow.  :mod:`tfckpt.errors` derives its own classes
from these, so ``except tf.errors.NotFoundError`` also catches tfckpt's ``NotFoundError``.

Example::

    try:
        raise NotFoundError(None, None, "no such checkpoint")
    except OpError as exc:
        assert exc.error_code == NOT_FOUND and str(exc) == "no such checkpoint"
"""

from __future__ import annotations

from typing import Any, ClassVar

OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
OUT_OF_RANGE = 11
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
DATA_LOSS = 15
UNAUTHENTICATED = 16


class OpError(Exception):
    """The base class of TensorFlow's errors: ``OpError(node_def, op, message, error_code)``.

    ``str()`` is the message (TensorFlow appends the op's stack trace when ``op`` is set;
    tfckpt never runs ops, so it is always None here).
    """

    # The code of errors of this class; subclasses set it, instances may override it.
    code: ClassVar[int] = UNKNOWN

    def __init__(self, node_def: Any, op: Any, message: str, error_code: int, *args: Any) -> None:
        super().__init__()
        self._set_status(node_def, op, message, error_code, args[0] if args else None)

    def _set_status(
        self, node_def: Any, op: Any, message: str, error_code: int, payloads: Any
    ) -> None:
        self._node_def = node_def
        self._op = op
        self._message = message
        self._error_code = error_code
        self._experimental_payloads: dict[Any, Any] = payloads if payloads is not None else {}

    @property
    def message(self) -> str:
        """The error message that describes the error."""
        return self._message

    @property
    def op(self) -> Any:
        """The operation that failed, if known (always None in tfckpt)."""
        return self._op

    @property
    def node_def(self) -> Any:
        """The ``NodeDef`` of the op that failed, if known (always None in tfckpt)."""
        return self._node_def

    @property
    def error_code(self) -> int:
        """The integer error code that describes the error (``NOT_FOUND``, ...)."""
        return self._error_code

    @property
    def experimental_payloads(self) -> dict[Any, Any]:
        """A dictionary describing the details of the error."""
        return self._experimental_payloads

    def __str__(self) -> str:
        return self._message

    def __reduce__(self) -> tuple[Any, ...]:
        state = (self._node_def, self._op, self._message, self._error_code)
        return (_rebuild, (type(self), *state, self._experimental_payloads))


def _rebuild(
    cls: type[OpError], node_def: Any, op: Any, message: str, code: int, payloads: Any
) -> OpError:
    error = cls.__new__(cls)
    OpError._set_status(error, node_def, op, message, code, payloads)
    return error


class _CodedError(OpError):
    """An OpError whose code comes from its class: ``Cls(node_def, op, message)``."""

    def __init__(self, node_def: Any, op: Any, message: str, *args: Any) -> None:
        super().__init__(node_def, op, message, self.code, *args)


class CancelledError(_CodedError):
    """An operation or step was cancelled."""

    code = CANCELLED


class UnknownError(_CodedError):
    """An error that fits no other code."""

    code = UNKNOWN


class InvalidArgumentError(_CodedError):
    """An operation received an invalid argument."""

    code = INVALID_ARGUMENT


class DeadlineExceededError(_CodedError):
    """A deadline expired before the operation could complete."""

    code = DEADLINE_EXCEEDED


class NotFoundError(_CodedError):
    """A requested entity (a file, a checkpoint, a tensor) was not found."""

    code = NOT_FOUND


class AlreadyExistsError(_CodedError):
    """An entity that an operation attempted to create already exists."""

    code = ALREADY_EXISTS


class PermissionDeniedError(_CodedError):
    """The caller does not have permission to run the operation."""

    code = PERMISSION_DENIED


class UnauthenticatedError(_CodedError):
    """The request does not have valid authentication credentials."""

    code = UNAUTHENTICATED


class ResourceExhaustedError(_CodedError):
    """Some resource (memory, disk, a quota) has been exhausted."""

    code = RESOURCE_EXHAUSTED


class FailedPreconditionError(_CodedError):
    """The system is not in a state in which the operation can run."""

    code = FAILED_PRECONDITION


class AbortedError(_CodedError):
    """An operation was aborted, typically because of a concurrent action."""

    code = ABORTED


class OutOfRangeError(_CodedError):
    """An operation iterated past the valid range."""

    code = OUT_OF_RANGE


class UnimplementedError(_CodedError):
    """An operation is not implemented or not supported for these arguments."""

    code = UNIMPLEMENTED


class InternalError(_CodedError):
    """An internal invariant was broken (TensorFlow's reader raises it for tensors with no
    NumPy equivalent, e.g. variant tensors)."""

    code = INTERNAL


class UnavailableError(_CodedError):
    """The service is currently unavailable."""

    code = UNAVAILABLE


class DataLossError(_CodedError):
    """Unrecoverable data loss or corruption: a truncated or corrupt file."""

    code = DATA_LOSS


CODE_TO_CLASS: dict[int, type[OpError]] = {
    cls.code: cls
    for cls in (
        CancelledError,
        UnknownError,
        InvalidArgumentError,
        DeadlineExceededError,
        NotFoundError,
        AlreadyExistsError,
        PermissionDeniedError,
        UnauthenticatedError,
        ResourceExhaustedError,
        FailedPreconditionError,
        AbortedError,
        OutOfRangeError,
        UnimplementedError,
        InternalError,
        UnavailableError,
        DataLossError,
    )
}


def exception_type_from_error_code(error_code: int) -> type[OpError]:
    """The class of errors with ``error_code`` (KeyError for OK or an unknown code)."""
    return CODE_TO_CLASS[error_code]


def error_code_from_exception_type(cls: type[BaseException]) -> int:
    """The code of an exception class: its own or that of the nearest status base class
    (tfckpt's ``TensorNotFoundError`` gives ``NOT_FOUND``); ``UNKNOWN`` for other classes."""
    if isinstance(cls, type) and issubclass(cls, OpError):
        return cls.code
    return UNKNOWN
