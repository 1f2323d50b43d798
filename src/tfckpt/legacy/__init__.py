"""The legacy format: V1 checkpoints (one SSTable of saved tensor slices per file).

Sources: tensorflow/core/util/tensor_slice_reader.cc, tensor_slice_writer.h,
saved_tensor_slice_util.h/.cc and tensorflow/core/util/saved_tensor_slice.proto (paths
below are under tensorflow/core/ of the tensorflow/tensorflow repository).

Files
-----
A V1 checkpoint is one table (tfckpt.table) per file, no ``.index``.  The TF1 Saver with
``write_version=V1`` writes the save path itself (the Save and SaveSlices ops in
kernels/save_op.cc, through util/tensor_slice_writer.cc), or, sharded, one file per device
named ShardedFilename ``<path>-%05d-of-%05d`` and recorded as the pattern
``<path>-?????-of-%05d`` (ShardedFilespec, same file).  TensorSliceWriter::Finish writes a
file as ``<file>.tempstate<random>`` and renames it (when the file system allows temporary
files), with no compression.  TensorSliceReader opens every file matching the pattern
(GetMatchingPaths); RestoreV2 reads V1 when ``<prefix>.index`` does not exist
(kernels/save_restore_v2_ops.cc).

Entries
-------
Every value is a SavedTensorSlices (util/saved_tensor_slice.proto)::

    SavedTensorSlices     1 meta SavedTensorSliceMeta     (only under the key "")
                          2 data SavedSlice               (under every other key)
    SavedTensorSliceMeta  1 tensor repeated SavedSliceMeta, 2 versions VersionDef
    SavedSliceMeta        1 name, 2 shape TensorShapeProto, 3 type DataType,
                          4 slice repeated TensorSliceProto
    SavedSlice            1 name, 2 slice TensorSliceProto, 3 data TensorProto

The key ``""`` (kSavedTensorSlicesKey) lists every tensor of the file with the slices the
file stores, and the versions: producer TF_CHECKPOINT_VERSION = 1, min_consumer
TF_CHECKPOINT_VERSION_MIN_CONSUMER = 0 (public/version.h).  Each slice has its own key,
EncodeTensorNameSlice(name, slice), the ordered code of V2 slice keys (see tfckpt.bundle);
TensorSliceWriter::Add stores an unsliced tensor as one full slice (start 0, length -1 in
every dimension; none for a scalar).  A float32 ``[2, 3]`` named ``a`` is under
``00 61 00 01 01 02 80 7f 80 7f``.

Data
----
The TensorProto of a SavedSlice holds only the typed value list of the slice's elements in
C order, no dtype or shape (SaveTypeTraits and Fill in util/saved_tensor_slice_util.h)::

    float_val      float32               double_val     float64
    int_val        int32, int16, int8, uint8, uint16, qint8, quint8, quint16, qint32
    int64_val      int64                 uint32_val     uint32
    uint64_val     uint64                bool_val       bool
    string_val     string                half_val       float16 bit patterns (uint16)
    scomplex_val   complex64             dcomplex_val   complex128
                   (real and imaginary parts interleaved)

One SavedSlice may not exceed 2 GiB (kMaxMessageBytes, util/tensor_slice_writer.h).
TensorSliceReader::LoadShard checks the versions with CheckVersions(versions,
TF_CHECKPOINT_VERSION = 1, TF_CHECKPOINT_VERSION_MIN_PRODUCER = 0) and registers each
(tensor, slice, file); CopySliceData reads only the typed lists (TensorProtoData) and copies
every stored slice that a request overlaps into place.

tfckpt reads the same, but checks no versions; it also takes ``tensor_content``
(little-endian) when present, ``half_val`` for bfloat16 and ``int_val`` for qint16, which
SaveTypeTraits does not list.  It assembles multi-slice tensors and reads every dtype
above, where TensorSliceReader::GetTensor (the path of the Python CheckpointReader,
tensorflow/c/checkpoint_reader.cc) refuses more than one slice ("Sliced checkpoints are not
supported") and dtypes other than float32, float64, int8/16/32/64, uint8 and string; the
restore ops, which go through CopySliceData, assemble slices.
"""

from tfckpt.legacy.reader import V1Reader

__all__ = ["V1Reader"]
