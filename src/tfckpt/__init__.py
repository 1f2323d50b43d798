"""tfckpt: read and write TensorFlow checkpoints without TensorFlow.

Reading, with TensorFlow's names::

    reader = tfckpt.load_checkpoint("/path/to/model.ckpt")   # prefix, directory, SavedModel
    reader.get_variable_to_shape_map()
    reader.get_tensor("dense/kernel")

Writing::

    tfckpt.save_tensors("/tmp/ckpt/model", {"w": numpy.ones((2, 3), numpy.float32)})

Code written for ``tf.train`` runs unchanged with ``from tfckpt import tf_compat as tf``.
"""

from tfckpt import dtypes
from tfckpt.bridges import load_state_dict, safe_open
from tfckpt.bundle.merge import merge_bundles, merge_parts, part_prefix
from tfckpt.bundle.writer import BundleWriter, save_tensors
from tfckpt.compat.polling import checkpoints_iterator
from tfckpt.dtypes import DType, as_dtype
from tfckpt.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    ConcurrentWriteError,
    DataLossError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
    TensorNotFoundError,
    UnsupportedError,
)
from tfckpt.objects.checkpoint import Checkpoint
from tfckpt.objects.manager import CheckpointManager
from tfckpt.objects.numpy_state import NumpyState
from tfckpt.objects.tree import CheckpointTree, load_tree
from tfckpt.paths import latest_checkpoint
from tfckpt.reader import (
    CheckpointReader,
    list_variables,
    load_checkpoint,
    load_tensors,
    load_variable,
)
from tfckpt.tensor_slice import TensorSlice

__version__ = "0.1.0"

__all__ = [
    "BundleWriter",
    "Checkpoint",
    "CheckpointError",
    "CheckpointManager",
    "CheckpointNotFoundError",
    "CheckpointReader",
    "CheckpointTree",
    "ConcurrentWriteError",
    "DType",
    "DataLossError",
    "InvalidArgumentError",
    "NotFoundError",
    "NumpyState",
    "StorageError",
    "TensorNotFoundError",
    "TensorSlice",
    "UnsupportedError",
    "as_dtype",
    "checkpoints_iterator",
    "dtypes",
    "latest_checkpoint",
    "list_variables",
    "load_checkpoint",
    "load_state_dict",
    "load_tensors",
    "load_tree",
    "load_variable",
    "merge_bundles",
    "merge_parts",
    "part_prefix",
    "safe_open",
    "save_tensors",
]
