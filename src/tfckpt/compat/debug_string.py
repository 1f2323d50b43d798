"""``CheckpointReader.debug_string()`` byte for byte as TensorFlow prints it.

One line per entry, ``<key> (<DataType_Name>) [<dims joined by ','>]\\n``, e.g.
``conv1/weights (DT_FLOAT) [5,5,1,16]``, in TensorFlow's order and selection:

- V2 bundles (``BundleReader::DebugString``, tensorflow/core/util/tensor_bundle/
  tensor_bundle.cc): every index entry in key order except the header and the full
  entries of partitioned tensors, so the entries of their slices are listed under their
  encoded (binary) keys instead;
- V1 checkpoints (``TensorSliceReader::DebugString``, tensorflow/core/util/
  tensor_slice_reader.cc): every tensor in the iteration order of the reader's
  ``std::unordered_map`` (:mod:`tfckpt.compat.hash_order`: the order of TensorFlow's Linux
  builds), with ``, <n> slices`` after partitioned ones.

Keys are kept as stored (not necessarily UTF-8), hence bytes.

Example (through the reader, which calls :func:`debug_string`)::

    >>> tfckpt.load_checkpoint("fixtures/v1_sharded/model.ckpt-?????-of-00002").debug_string()
    b'dev1_labels (DT_STRING) [2]\\nweights (DT_FLOAT) [2,3]\\ntable (DT_INT32) [8,2], 2 slices...'
"""

from __future__ import annotations

import functools
from typing import Any

from tfckpt.backend import Backend
from tfckpt.bundle.reader import BundleReader
from tfckpt.compat.hash_order import iteration_order
from tfckpt.legacy.reader import V1Reader


def debug_string(backend: Backend) -> bytes:
    """TensorFlow's ``DebugString()`` of the checkpoint ``backend`` reads.

    Raises:
        DataLossError: an entry that is not a BundleEntryProto (TensorFlow aborts).
    """
    if isinstance(backend, BundleReader):
        return _bundle_lines(backend)
    if isinstance(backend, V1Reader):
        return _v1_lines(backend)
    raise TypeError(f"no DebugString format for {type(backend).__name__}")


@functools.cache
def _type_name(enum: int) -> str:
    """``DataType_Name``: ``'DT_FLOAT'`` for 1; empty for a value the enum lacks, as the
    generated C++ does."""
    from tfckpt.proto import types_pb2

    try:
        return str(types_pb2.DataType.Name(enum))
    except ValueError:
        return ""


def _line(key: str, enum: int, shape: Any, suffix: str = "") -> str:
    dims = ",".join(str(d) for d in shape)
    return f"{key} ({_type_name(enum)}) [{dims}]{suffix}\n"


def _bundle_lines(reader: BundleReader) -> bytes:
    entries = reader.entries
    regular = entries.columns.regular
    lines = []
    for slot, key in enumerate(entries.keys):
        if regular[slot]:
            enum = int(entries.columns.dtype[slot])
        else:
            entry = entries.entry(key)
            if entry.slices:
                continue  # the full entry of a partitioned tensor
            enum = entry.dtype
        lines.append(_line(key, enum, entries.shape(key)))
    return "".join(lines).encode("utf-8", "surrogateescape")


def _v1_lines(reader: V1Reader) -> bytes:
    # The reader's tensor table is in TensorFlow's registration order (files in order,
    # tensors in table-of-contents order, first appearance), which the map order needs.
    names = list(reader._tensors)
    encoded = [name.encode("utf-8", "surrogateescape") for name in names]
    lines = []
    for i in iteration_order(encoded):
        name = names[i]
        count = len(reader.slices(name))
        suffix = f", {count} slices" if count > 1 else ""
        lines.append(_line(name, reader.dtype(name).as_datatype_enum, reader.shape(name), suffix))
    return "".join(lines).encode("utf-8", "surrogateescape")
