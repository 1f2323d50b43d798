"""TensorFlow's status-code errors without TensorFlow (src/tfckpt/compat/status.py), and
tfckpt's errors as members of that family (src/tfckpt/errors.py)."""

from __future__ import annotations

import pickle

import pytest

import tfckpt
from tfckpt import tf_compat as tf
from tfckpt.compat import status

# The codes of tensorflow/core/protobuf/error_codes.proto.
CODES = {
    "CancelledError": 1, "UnknownError": 2, "InvalidArgumentError": 3,
    "DeadlineExceededError": 4, "NotFoundError": 5, "AlreadyExistsError": 6,
    "PermissionDeniedError": 7, "ResourceExhaustedError": 8, "FailedPreconditionError": 9,
    "AbortedError": 10, "OutOfRangeError": 11, "UnimplementedError": 12, "InternalError": 13,
    "UnavailableError": 14, "DataLossError": 15, "UnauthenticatedError": 16,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CODES))
def test_classes_have_tensorflows_constructor_codes_and_attributes(name):
    """``Cls(node_def, op, message)`` gives an OpError with the class's code, the message as
    str(), None op and node_def, and payloads from an optional fourth argument."""
    cls = getattr(tf.errors, name)
    exc = cls(None, None, "went wrong")
    assert isinstance(exc, tf.errors.OpError)
    assert exc.error_code == CODES[name] == getattr(tf.errors, _constant(name))
    assert (str(exc), exc.message, exc.op, exc.node_def) == ("went wrong", "went wrong", None, None)
    assert exc.experimental_payloads == {}
    assert cls(None, None, "m", {"k": b"v"}).experimental_payloads == {"k": b"v"}
    assert tf.errors.exception_type_from_error_code(CODES[name]) is cls
    assert tf.errors.error_code_from_exception_type(cls) == CODES[name]


def _constant(name: str) -> str:
    special = {"CancelledError": "CANCELLED", "UnknownError": "UNKNOWN"}
    if name in special:
        return special[name]
    words = []
    for char in name.removesuffix("Error"):
        if char.isupper() and words:
            words.append("_")
        words.append(char.upper())
    return "".join(words)


def test_op_error_takes_its_code():
    """OpError itself takes the code as its fourth argument, as in TensorFlow."""
    exc = tf.errors.OpError(None, None, "m", tf.errors.ABORTED)
    assert exc.error_code == 10 and str(exc) == "m"
    assert tf.errors.error_code_from_exception_type(ValueError) == tf.errors.UNKNOWN


@pytest.mark.parametrize("name", sorted(CODES))
def test_pickle_round_trip(name):
    """Status errors survive pickling with their class, message, code and payloads."""
    exc = getattr(status, name)(None, None, "lost", {"why": "disk"})
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert (str(back), back.error_code) == ("lost", CODES[name])
    assert back.experimental_payloads == {"why": "disk"}


@pytest.mark.parametrize(
    ("ours", "theirs", "code"),
    [
        (tfckpt.CheckpointError, (tf.errors.OpError,), 2),
        (tfckpt.NotFoundError, (tf.errors.NotFoundError,), 5),
        (
            tfckpt.CheckpointNotFoundError,
            (tf.errors.NotFoundError, ValueError, FileNotFoundError),
            5,
        ),
        (tfckpt.TensorNotFoundError, (tf.errors.NotFoundError, KeyError), 5),
        (tfckpt.DataLossError, (tf.errors.DataLossError,), 15),
        (tfckpt.UnsupportedError, (tf.errors.UnimplementedError, tf.errors.InternalError), 12),
        (tfckpt.InvalidArgumentError, (tf.errors.InvalidArgumentError, ValueError), 3),
    ],
)
def test_tfckpt_errors_are_tensorflow_errors(ours, theirs, code):
    """Each tfckpt error is an instance of the tf.errors class TensorFlow raises in its place
    (and of ValueError where TensorFlow raises that: no checkpoint in a directory), with
    TensorFlow's error_code, and keeps tfckpt's str(), .message and .args."""
    exc = ours("bad bytes", path="/ckpt/m.index", tensor="w")
    for cls in theirs:
        assert isinstance(exc, cls), cls
    assert exc.error_code == code
    assert str(exc) == "'/ckpt/m.index', tensor 'w': bad bytes"
    assert exc.message == "bad bytes" and exc.args == ("bad bytes",)
    assert exc.op is None and exc.node_def is None


def test_kinds_stay_apart():
    """The extra bases do not blur tfckpt's kinds: data loss is not "not found", a missing
    tensor is not a ValueError, and only UnsupportedError is an InternalError."""
    assert not issubclass(tfckpt.DataLossError, (tf.errors.NotFoundError, ValueError))
    assert not issubclass(tfckpt.TensorNotFoundError, ValueError)
    assert not issubclass(tfckpt.InvalidArgumentError, tf.errors.NotFoundError)
    for cls in (tfckpt.DataLossError, tfckpt.NotFoundError, tfckpt.InvalidArgumentError):
        assert not issubclass(cls, tf.errors.InternalError)


def test_caught_by_tensorflow_style_except_clauses(tmp_path):
    """Client code catching tf.errors classes or ValueError catches what tfckpt raises."""
    with pytest.raises(tf.errors.NotFoundError):
        tf.train.load_checkpoint(tmp_path / "nothing")
    with pytest.raises(ValueError):  # tf.train.load_checkpoint's "no checkpoint in directory"
        tf.train.load_checkpoint(tmp_path)
    (tmp_path / "junk.index").write_bytes(b"x" * 100)
    with pytest.raises(tf.errors.OpError) as info:
        tf.train.list_variables(tmp_path / "junk")
    assert info.value.error_code == tf.errors.DATA_LOSS
