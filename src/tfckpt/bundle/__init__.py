"""The bundle layer: TensorFlow's TensorBundle (V2) checkpoint format.

``reader`` and ``writer`` read and write bundles (``sharding`` plans sharded saves: TensorFlow's
MaxShardSizePolicy layout, or N shards), ``entries`` decodes the index entries,
``strings`` encodes string tensors, ``merge`` combines the bundles of several writers and
``naming`` spells the file names.  The format is described below, each rule with its
TensorFlow source (in the tensorflow/tensorflow repository, under tensorflow/core/ unless a
path starts with python/; tensor_bundle.cc is util/tensor_bundle/tensor_bundle.cc).  Where
tfckpt does something else, it says so.

Files
-----
A checkpoint is named by a prefix, not by a file (util/tensor_bundle/naming.cc,
MetaFilename and DataFilename)::

    <prefix>.index                  a table (tfckpt.table): the header and the entries
    <prefix>.data-00000-of-00002    data shard 0 of 2: tensor bytes, nothing else
    <prefix>.data-00001-of-00002

The numbers are printf ``%05d``.  A data file has no header or framing of its own; tensors
are found only through the index.  While writing, TensorFlow uses the temporary names given
under "Commit protocol".

Header
------
The key ``""`` (the smallest, so the first entry) holds a BundleHeaderProto
(protobuf/tensor_bundle.proto)::

    1 num_shards  int32       number of data files
    2 endianness  enum        LITTLE = 0, BIG = 1: the byte order of the tensor data
    3 version     VersionDef  1 producer, 2 min_consumer, 3 repeated bad_consumers

BundleWriter::Finish (tensor_bundle.cc) writes ``num_shards`` 1, the host's byte order,
``producer`` = kTensorBundleVersion = 1 and ``min_consumer`` = kTensorBundleMinConsumer = 0;
kTensorBundleMinProducer = 0 is the oldest producer a reader accepts (see "Versions").  The
header of a little-endian, single-shard bundle is the 6 bytes ``08 01 1a 02 08 01``.

Entries
-------
Every other key is a tensor name (its bytes; tfckpt decodes them as UTF-8 with
``surrogateescape``) and holds a BundleEntryProto (protobuf/tensor_bundle.proto)::

    1 dtype     enum     DataType (framework/types.proto; see tfckpt.dtypes)
    2 shape     message  TensorShapeProto: repeated 2 dim {1 size, 2 name}, 3 unknown_rank
    3 shard_id  int32    which data file
    4 offset    int64    the tensor's first byte in that file
    5 size      int64    its number of bytes
    6 crc32c    fixed32  Mask(CRC32C) of those bytes, see "Data"
    7 slices    repeated TensorSliceProto, only in a partitioned tensor's full entry

BundleWriter keeps its entries in a ``std::map`` and adds them to the table in bytewise key
order, serialized by protobuf (``SerializeAsString``): fields in number order, zero scalars
left out (``shard_id`` 0, ``offset`` 0), the shape always present (a scalar's is ``12 00``)
and a dimension of size 0 as an empty ``dim``.  A float32 ``[2]`` at offset 13 is::

    08 01  12 04 12 02 08 02  20 0d  28 08  35 <masked crc32c, 4 bytes little-endian>

Data
----
BundleWriter::Add appends each tensor to the one data file in the order it is called, not in
key order, and records where it starts.  After each tensor PadAlignment writes zero bytes up
to a multiple of ``Options::data_alignment`` (default 1, no padding, which SaveV2 uses);
readers follow ``offset`` and ``size`` only.  tfckpt writes with alignment 1.

``crc32c`` is the masked CRC32C of the ``size`` bytes as stored (core/lib/hash/crc32c.h:
the Castagnoli polynomial; Mask rotates right by 15 bits and adds 0xa282ead8 modulo 2**32;
tfckpt.checksum).  A numeric tensor is its element buffer in C order, exactly elements times
element size bytes (BundleReader::GetValue rejects any other ``size``): bool and 8-bit
integers one byte an element, float16 and bfloat16 two, complex numbers (real, imaginary)
pairs, the quantized types (qint8, quint8, qint16, quint16, qint32) their integer storage.
The float8 types, int4, uint4, int2, uint2 and float4_e2m1fn take one byte an element, the
byte ml_dtypes holds in memory (int4 -8 is ``08``, -1 is ``0f``).

Strings
-------
A string tensor of n elements is stored as (WriteStringTensor and ReadStringTensor in
tensor_bundle.cc)::

    varint64 length[0] ... varint64 length[n-1]
    4 bytes  Mask(L) in the writer's byte order, L the CRC32C of the lengths
    bytes[0] ... bytes[n-1]

L runs over each length as a 4-byte unsigned integer in the writer's byte order (8 bytes
when it exceeds 2**32 - 1), not over the varint bytes.  The entry's ``crc32c`` continues L
over the 4 stored bytes as they are in the file, then over all the string bytes.  An empty
string tensor is the 4 bytes ``d8 ea 82 a2`` (Mask(0)).  Variant tensors (per element a
varint64 length, a serialized VariantTensorDataProto and a 4-byte masked running checksum;
WriteVariantTensor) hold C++ objects: tfckpt neither reads nor writes them.

Partitioned tensors
-------------------
BundleWriter::AddSlice stores a slice of tensor ``name`` as two entries: under ``name`` the
full entry (dtype, full shape and one TensorSliceProto per slice; no data, its shard_id,
offset, size and crc32c are ignored), and under the slice's key an ordinary entry holding
the slice.  A slice that covers the whole tensor is stored as an ordinary tensor instead
(IsFullSlice).  The key is EncodeTensorNameSlice(name, slice)
(util/saved_tensor_slice_util.cc), in ordered code (lib/strings/ordered_code.cc; see
tfckpt.ordered_code and tfckpt.tensor_slice)::

    NumIncreasing(0)       00: every slice key starts with a zero byte
    String(name)           the name, 00 escaped as 00 ff and ff as ff 00, then 00 01
    NumIncreasing(rank)    a length byte, then that many big-endian bytes
    each dimension         SignedNumIncreasing(start) SignedNumIncreasing(length)

A full extent is start 0 and length -1 (TensorSlice::SetFullSlice).  Slice ``0,2:-`` of
``w`` has the key ``00 77 00 01 01 02 80 82 80 7f``; such keys sort right after the header,
before ordinary names.  In a TensorSliceProto (framework/tensor_slice.proto: repeated
1 extent {1 start, oneof 2 length}) a full extent sets neither field (TensorSlice::AsProto),
and a missing or -1 length means the whole dimension.  BundleReader::GetSliceValue assembles
float, double, int8/16/32/64, uint8, complex, bool, qint8, quint8, qint32, bfloat16, int4
and uint4 tensors from their slices (not strings); tfckpt assembles every numeric dtype and
strings, and requires the slices to cover the tensor exactly once.

Endianness
----------
``endianness`` covers the tensor data only: protobufs and table framing are the same on
every host.  A big-endian host (e.g. s390x) writes BIG and its own byte order.  A reader of
the other order checks the CRC over the bytes as stored, then swaps each element
(BundleReader::GetValue; ByteSwapTensor in util/tensor_bundle/byte_swap_tensor.cc): 2-, 4-
and 8-byte types whole, complex64 and complex128 per 4- or 8-byte component, 1-byte types
and string bytes not at all.  For strings it computes L over the lengths in the writer's
order and reads the 4 stored bytes in that order (ReadStringTensor).  TensorFlow refuses to
swap variants and the dtypes ByteSwapBuffer does not list (the float8 types, int4, uint4,
...: "Byte-swapping not supported"); tfckpt reads those, which need no swapping.

Merging
-------
A sharded save has one BundleWriter per device or task, each writing a bundle of its own;
MergeBundles (tensor_bundle.cc; the MergeV2Checkpoints op in
kernels/save_restore_v2_ops.cc) makes them one checkpoint without copying data:

* the headers must agree on endianness and on the serialized version, which the merged
  header copies; its ``num_shards`` is the sum of theirs;
* a key in two bundles is an error unless both are full entries of a partitioned tensor,
  whose slice lists are then concatenated (dtype and shape must agree);
* each data file that an entry refers to, ``DataFilename(input prefix, shard_id, input
  num_shards)``, gets the next merged shard id when first referred to (inputs in the order
  given, keys in order) and is renamed ``<merged>.data-<id>-of-<number of such files>``;
  entries keep their offsets and sizes;
* then the merged index is written and the inputs' indexes deleted (errors ignored); with
  ``delete_old_dirs`` the op also removes each input's directory (when empty), except the
  merged prefix's own.

The file names thus count the data files entries refer to, which equals ``num_shards``
unless an input wrote a data file that no entry refers to.

Commit protocol
---------------
BundleWriter (the SaveV2 op) writes under temporary names when the file system renames
atomically (Env::HasAtomicMove): ``<prefix>.data-00000-of-00001.tempstate<N>`` and
``<prefix>.index.tempstate<M>``, N and M random 64-bit numbers in decimal.  Finish closes the
data file and renames it into place, then writes the index to its temporary and renames it.
Without atomic moves it writes the final names directly; on failure it deletes what it
wrote; it never fsyncs.  tf.train.Checkpoint (python/checkpoint/functional_saver.py) and the
TF1 Saver's sharded V2 save (python/training/saver.py) always merge, even for one device:
each shard is a bundle at ``<prefix>_temp/part-NNNNN-of-MMMMM`` (``<prefix>.part-...`` on
``s3://``), then MergeV2Checkpoints moves the data into place and writes ``<prefix>.index``
under its final name, with no temporary.  One ``Checkpoint.write`` on local disk does::

    mkdir   <prefix>_temp
    write   <prefix>_temp/part-00000-of-00001.data-00000-of-00001.tempstate<N>, rename it
    write   <prefix>_temp/part-00000-of-00001.index.tempstate<M>, rename it
    rename  <prefix>_temp/part-00000-of-00001.data-00000-of-00001
            -> <prefix>.data-00000-of-00001
    write   <prefix>.index
    unlink  <prefix>_temp/part-00000-of-00001.index, then rmdir <prefix>_temp

Only a single rename is atomic.  The index, written last, is the commit point: RestoreV2 and
``latest_checkpoint`` look for ``<prefix>.index``, and the ``checkpoint`` state file
(tfckpt.checkpoint_state) is updated after it.  Overwriting a prefix is not atomic: for a
moment the new data files sit beside the old index (a process killed then leaves a
checkpoint nobody can read).  tfckpt's BundleWriter writes its whole index to the temporary
before renaming anything (one random hex tag for both names,
``<file>.tempstate-tfckpt-<16 hex digits>``; fsync with ``durable=True``), and its merge
writes the merged index to a temporary too.  When the index exists already, the old index
and then the old data files it replaces are first renamed aside
(``<file>.tempstate-tfckpt-old``), then the new data and the new index are renamed in, then
the aside files removed: at every moment either ``<prefix>.index`` is there with its own
data, or the old checkpoint is the aside index with each data file's aside copy where there
is one (the file itself where not).  tfckpt's readers read that old checkpoint when the
index is missing, without writing; the next tfckpt writer of the prefix (which holds
``<prefix>.tempstate-tfckpt-lock`` while it writes, so that a second writer fails instead of
mixing files) renames it back first and removes temporaries killed writers left.
TensorFlow, which knows none of this, sees no checkpoint at the prefix until then, never a
mixed one.  tfckpt.storage.commit describes the protocol in full.

Versions
--------
BundleReader checks the header with CheckVersions(version, consumer =
kTensorBundleVersion = 1, min_producer = kTensorBundleMinProducer = 0)
(framework/versions.cc): a bundle is refused when ``producer`` < 0, ``min_consumer`` > 1
or ``bad_consumers`` lists 1.  tensor_bundle.h gives the history: 0 for bundles written
before the field existed, 1 since 2016-09-14.  tfckpt makes the same checks (raising
UnsupportedError; TensorFlow: InvalidArgument) and also rejects an index whose first key is
not ``""`` or whose ``endianness`` is neither 0 nor 1 (TensorFlow reads that as native).
"""

from tfckpt.bundle.reader import BundleReader
from tfckpt.bundle.sharding import MaxShardSizePolicy
from tfckpt.bundle.writer import BundleWriter, save_tensors

__all__ = ["BundleReader", "BundleWriter", "MaxShardSizePolicy", "save_tensors"]
