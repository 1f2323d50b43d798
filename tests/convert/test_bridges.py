"""tfckpt.safe_open and tfckpt.load_state_dict: checkpoints as framework tensors."""

from __future__ import annotations

import numpy as np
import pytest

import tfckpt
from tests.conftest import CORPUS, FIXTURES
from tfckpt.errors import InvalidArgumentError, TensorNotFoundError
from tfckpt.inspection.extras import MissingExtraError, available

OBJECT_BASED = FIXTURES / "object_based" / "ckpt-1"
BERT = CORPUS / "tensorflow-ranking/tensorflow_ranking/extension/testdata/bert_lite_tf2.ckpt"


def test_keys_leave_out_optimizer_state_and_bookkeeping():
    """By default slots, optimizer variables, the save counter and the object graph are
    not among the keys; asking for them brings them back."""
    with tfckpt.safe_open(OBJECT_BASED) as f:
        keys = f.keys()
    assert "net/w/.ATTRIBUTES/VARIABLE_VALUE" in keys
    assert not any("OPTIMIZER_SLOT" in k or "optimizer" in k for k in keys)
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in keys and not any("save_counter" in k for k in keys)
    with tfckpt.safe_open(OBJECT_BASED, include_optimizer=True, include_bookkeeping=True) as f:
        assert f.keys() == tfckpt.load_checkpoint(OBJECT_BASED).keys()


def test_paths_name_values_by_object_path():
    """names='paths' drops '/.ATTRIBUTES/VARIABLE_VALUE'; metadata says what was opened."""
    with tfckpt.safe_open(OBJECT_BASED, names="paths") as f:
        assert f.keys() == ["dense/_kernel", "dense/bias", "net/b", "net/d/alpha",
                            "net/d/beta", "net/l/0", "net/l/1", "net/w"]  # fmt: skip
        np.testing.assert_array_equal(
            f.get_tensor("net/w"), np.float32([[0.99, 1.99], [2.99, 3.99]])
        )
        assert f.metadata() == {"format": "tensorflow", "checkpoint_format": "v2", "names": "paths"}


def test_tensors_are_memory_mapped_views_and_slices_read_parts():
    """get_tensor gives a read-only view of the data file's memory map; get_slice reads
    just the part indexed, with shape and dtype known before reading."""
    reader = tfckpt.load_checkpoint(BERT)
    name = max(reader.keys(), key=lambda k: np.size(reader.get_tensor(k)))
    with tfckpt.safe_open(BERT) as f:
        value = f.get_tensor(name)
        assert not value.flags.writeable and not value.flags.owndata
        handle = f.get_slice(name)
        assert handle.get_shape() == list(value.shape) and handle.get_dtype() == "float32"
        np.testing.assert_array_equal(handle[1:3], reader.get_tensor(name)[1:3])
        with pytest.raises(TensorNotFoundError):
            f.get_tensor("nope")


def test_load_state_dict_renames_and_casts():
    """A flat dict of owned arrays, renamed by rules, floating tensors cast (integers and
    booleans untouched); per-name casts by pattern."""
    state = tfckpt.load_state_dict(
        OBJECT_BASED, names="paths", rename=[(r"^net/", "model."), ("/", ".")], dtype="float16"
    )
    assert sorted(state) == ["dense._kernel", "dense.bias", "model.b", "model.d.alpha",
                             "model.d.beta", "model.l.0", "model.l.1", "model.w"]  # fmt: skip
    assert state["model.w"].dtype == np.float16 and state["model.w"].flags.writeable
    assert state["model.d.beta"].dtype == np.int32 and state["model.l.1"].dtype == np.bool_
    per_name = tfckpt.load_state_dict(OBJECT_BASED, names="paths", dtype={"^net/w$": "bfloat16"})
    assert per_name["net/w"].dtype.name == "bfloat16" and per_name["net/b"].dtype == np.float32


def test_load_state_dict_with_numpy_state_and_errors():
    """NumpyState values come as their arrays by path; casting strings and unknown dtypes
    and frameworks are InvalidArgumentErrors."""
    state = tfckpt.load_state_dict(FIXTURES / "numpy_state" / "ckpt-1", names="paths")
    assert state["numpy_arrays/x"].shape == (3, 4)
    with pytest.raises(InvalidArgumentError, match="string"):
        tfckpt.load_state_dict(FIXTURES / "strings" / "ckpt", dtype={".": "float32"})
    with pytest.raises(InvalidArgumentError, match="unknown dtype"):
        tfckpt.load_state_dict(OBJECT_BASED, dtype="float128x")
    with pytest.raises(InvalidArgumentError, match="framework"):
        tfckpt.safe_open(OBJECT_BASED, framework="tensorflow")


@pytest.mark.skipif(available("torch"), reason="PyTorch is installed")
def test_pt_without_torch_says_what_to_install():
    """framework='pt' without PyTorch raises MissingExtraError saying to install it."""
    with (
        tfckpt.safe_open(OBJECT_BASED, framework="pt") as f,
        pytest.raises(MissingExtraError, match="pip install torch"),
    ):
        f.get_tensor("net/w/.ATTRIBUTES/VARIABLE_VALUE")


def test_pt_tensors():
    """With PyTorch, tensors are torch tensors with the same values (bfloat16 included)."""
    torch = pytest.importorskip("torch")
    state = tfckpt.load_state_dict(FIXTURES / "dtypes" / "ckpt", framework="pt",
                                   include=["^(float32|bfloat16|int64)$"])  # fmt: skip
    assert state["bfloat16"].dtype == torch.bfloat16
    reader = tfckpt.load_checkpoint(FIXTURES / "dtypes" / "ckpt")
    np.testing.assert_array_equal(state["int64"].numpy(), reader.get_tensor("int64"))


def test_jax_arrays():
    """With JAX, tensors are jax arrays with the same values."""
    jnp = pytest.importorskip("jax.numpy")
    state = tfckpt.load_state_dict(OBJECT_BASED, framework="jax", names="paths")
    assert isinstance(state["net/w"], jnp.ndarray)
    np.testing.assert_array_equal(
        np.asarray(state["net/w"]), np.float32([[0.99, 1.99], [2.99, 3.99]])
    )
