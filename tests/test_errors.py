"""The exception hierarchy of tfckpt (src/tfckpt/errors.py) and what its errors carry."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import tfckpt
from tfckpt import errors
from tfckpt.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    DataLossError,
    InvalidArgumentError,
    NotFoundError,
    TensorNotFoundError,
    UnsupportedError,
)

ALL = [
    CheckpointError,
    NotFoundError,
    CheckpointNotFoundError,
    TensorNotFoundError,
    DataLossError,
    UnsupportedError,
    InvalidArgumentError,
]


def test_public_names_are_the_same_classes():
    for cls in ALL:
        assert getattr(tfckpt, cls.__name__) is cls
        assert cls.__name__ in errors.__all__


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (NotFoundError, (CheckpointError,)),
        (TensorNotFoundError, (KeyError, NotFoundError, CheckpointError, LookupError)),
        (CheckpointNotFoundError, (FileNotFoundError, OSError, NotFoundError, CheckpointError)),
        (DataLossError, (CheckpointError,)),
        (UnsupportedError, (NotImplementedError, RuntimeError, CheckpointError)),
        (InvalidArgumentError, (ValueError, CheckpointError)),
    ],
)
def test_hierarchy(cls, bases):
    for base in bases:
        assert issubclass(cls, base), (cls, base)
    assert issubclass(cls, Exception)


def test_kinds_are_distinct():
    assert not issubclass(DataLossError, (NotFoundError, ValueError, KeyError, OSError))
    assert not issubclass(TensorNotFoundError, FileNotFoundError)
    assert not issubclass(CheckpointNotFoundError, KeyError)
    assert not issubclass(InvalidArgumentError, NotFoundError)
    assert not issubclass(UnsupportedError, ValueError)


def test_caught_by_the_builtin_a_python_user_would_use():
    with pytest.raises(KeyError):
        raise TensorNotFoundError("no tensor 'x'", tensor="x")
    with pytest.raises(FileNotFoundError):
        raise CheckpointNotFoundError("no file", path="/nowhere")
    with pytest.raises(ValueError):
        raise InvalidArgumentError("bad")
    with pytest.raises(NotImplementedError):
        raise UnsupportedError("unsupported")


def test_str_of_key_error_subclass_is_location_then_message():
    exc = TensorNotFoundError("no tensor of this name in the checkpoint", tensor="w")
    assert str(exc) == "tensor 'w': no tensor of this name in the checkpoint"
    # KeyError.__str__ would repr the message (quotes around it): make sure it is not used.
    bare = TensorNotFoundError("no tensor 'w'")
    assert str(bare) == "no tensor 'w'"
    assert exc.args == ("no tensor of this name in the checkpoint",)


@pytest.mark.parametrize("cls", ALL)
def test_str_is_location_then_message_for_every_class(cls):
    """str() puts ``'path', tensor 'name'`` in front of the message, leaving out what is
    unknown; the message itself (``.message``, ``.args``) stays as given."""
    exc = cls("something 'quoted' went wrong", path="/a/b", tensor="t")
    assert str(exc) == "'/a/b', tensor 't': something 'quoted' went wrong"
    assert exc.message == "something 'quoted' went wrong"
    assert exc.args == ("something 'quoted' went wrong",)
    assert str(cls("m", path="/a/b")) == "'/a/b': m"
    assert str(cls("m", tensor="t")) == "tensor 't': m"
    assert str(cls("m")) == "m"


@pytest.mark.parametrize("cls", ALL)
def test_attributes(cls, tmp_path):
    exc = cls("m", path=tmp_path / "x.index", tensor="layer/kernel")
    assert exc.path == str(tmp_path / "x.index")  # os.PathLike turned into str
    assert isinstance(exc.path, str)
    assert exc.tensor == "layer/kernel"
    bare = cls("m")
    assert bare.path is None
    assert bare.tensor is None


@pytest.mark.parametrize("cls", ALL)
def test_pickle_round_trip(cls):
    exc = cls("tensor 'x': checksum mismatch", path="/ckpt/model.index", tensor="x")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(exc, protocol=protocol))
        assert type(back) is cls
        assert str(back) == str(exc)
        assert back.message == exc.message
        assert back.path == "/ckpt/model.index"
        assert back.tensor == "x"
        assert back.args == exc.args


def test_pickle_round_trip_without_attributes():
    back = pickle.loads(pickle.dumps(DataLossError("plain")))
    assert (str(back), back.path, back.tensor) == ("plain", None, None)


def test_checkpoint_not_found_error_errno_fields_do_not_break_it():
    exc = CheckpointNotFoundError("no checkpoint", path="/x")
    # An OSError subclass built with one argument: errno/strerror stay None, and str() is
    # CheckpointError's, not OSError's.
    assert exc.errno is None
    assert str(exc) == "'/x': no checkpoint"


def test_describe():
    assert errors.describe("/a/b.index") == "'/a/b.index'"
    assert errors.describe("/a/b.index", "w") == "'/a/b.index', tensor 'w'"
    assert errors.describe(None, "w") == "tensor 'w'"
    assert errors.describe(None) == ""


# -- the errors real calls raise carry their attributes --------------------------------------


def test_real_tensor_not_found_error(tmp_path):
    prefix = tfckpt.save_tensors(tmp_path / "m", {"a": np.zeros(2, np.float32)})
    reader = tfckpt.load_checkpoint(prefix)
    with pytest.raises(TensorNotFoundError) as info:
        reader.get_tensor("nope")
    exc = info.value
    assert exc.tensor == "nope"
    assert exc.path == str(prefix)
    assert str(exc).startswith(f"{str(prefix)!r}, tensor 'nope': ")
    assert "nope" not in exc.message and str(prefix) not in exc.message  # not said twice
    with pytest.raises(KeyError):
        reader["nope"]
    back = pickle.loads(pickle.dumps(exc))
    assert (type(back), back.tensor, back.path, str(back)) == (
        TensorNotFoundError,
        "nope",
        str(prefix),
        str(exc),
    )


def test_real_checkpoint_not_found_error(tmp_path):
    missing = tmp_path / "nothing" / "model.ckpt"
    with pytest.raises(CheckpointNotFoundError) as info:
        tfckpt.load_checkpoint(missing)
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.path == str(missing)
    assert str(info.value).startswith(f"{str(missing)!r}: ")


def test_real_invalid_argument_error(tmp_path):
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        with pytest.raises(InvalidArgumentError) as info:
            writer.add("r", np.zeros(1, np.int64), dtype="resource")
        writer.add("ok", np.zeros(1))
    assert info.value.tensor == "r"
    assert "tensor 'r': " in str(info.value)
