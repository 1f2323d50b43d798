"""The bundle layer: TensorFlow's TensorBundle (V2) checkpoint format.

A checkpoint ``prefix`` is ``prefix.index`` (a table whose ``""`` key holds a
BundleHeaderProto and whose other keys hold BundleEntryProtos) plus the data shards
``prefix.data-NNNNN-of-MMMMM`` that the entries point into.  ``reader`` and ``writer``
read and write them; ``strings`` is the encoding of string tensors; ``naming`` the file names.
Source: tensorflow/core/util/tensor_bundle/tensor_bundle.cc, naming.cc, tensor_bundle.proto.
"""

from tfckpt.bundle.reader import BundleReader
from tfckpt.bundle.writer import BundleWriter

__all__ = ["BundleReader", "BundleWriter"]
