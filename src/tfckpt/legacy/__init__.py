"""The legacy format: V1 checkpoints (one SSTable of saved tensor slices per file).

Sources: tensorflow/core/util/tensor_slice_reader.cc, tensor_slice_writer.h,
saved_tensor_slice_util.h/.cc and tensorflow/core/util/saved_tensor_slice.proto.
"""

from tfckpt.legacy.reader import V1Reader

__all__ = ["V1Reader"]
