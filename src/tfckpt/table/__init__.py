"""The table (SSTable) layer: LevelDB's sorted string table as TensorFlow writes it.

``format`` holds the on-disk constants and framing (varints, block handles, footer, block
trailer), ``block`` the prefix-compressed blocks, ``reader`` and ``writer`` whole tables.
This layer knows nothing about tensors.

The format is LevelDB's table without filter blocks (tensorflow/core/lib/io/table_format.txt
defers to LevelDB's doc/table_format.md).  A V2 checkpoint's ``.index`` file and every V1
checkpoint file are such tables.  Sources below are in tensorflow/core/lib/io/ of the
tensorflow/tensorflow repository unless a path says otherwise.

File layout
-----------
TableBuilder (table_builder.cc) writes::

    data block 0      | trailer
    ...
    data block n-1    | trailer
    metaindex block   | trailer        always empty: TensorFlow writes no meta blocks
    index block       | trailer        one entry per data block
    footer                             48 bytes

A fixed32 is 4 bytes little-endian on every host (core/lib/core/coding.cc EncodeFixed32).  A
varint is LEB128: 7 bits a byte, lowest group first, the high bit set on every byte but the
last; a varint32 takes at most 5 bytes, a varint64 at most 10.

Blocks
------
A block (block_builder.cc) is a run of entries followed by its restart array::

    entry:   varint32 shared | varint32 non_shared | varint32 value_length
             | key[shared:] (non_shared bytes) | value (value_length bytes)
    ...
    fixed32 restart[0] ... fixed32 restart[r-1]     restart[0] is 0
    fixed32 r

``shared`` counts the leading bytes the key has in common with the previous key of the
block.  The first entry and every ``block_restart_interval``-th after it are restart
points: stored with ``shared == 0``, their offsets in the block recorded.  The interval is
16 in data blocks (table_options.h) and 1 in the index block (TableBuilder::Rep).  An empty
block is the 8 bytes of ``restart[0] = 0`` and ``r = 1``.  TableBuilder::Add ends a data
block once its size estimate (entries, 4 bytes per restart, 4) reaches ``block_size`` =
262144 (table_options.h); an entry whose key and value together take at least twice that
first ends the current block, and so gets a block of its own.  block.cc reads a block with
``r == 0`` as empty; tfckpt rejects it (DataLossError); TensorFlow never writes one.

Block trailer
-------------
Every block is followed by 5 bytes (TableBuilder::WriteRawBlock)::

    type     1 byte    compression: 0 none, 1 Snappy (table_options.h CompressionType)
    crc      fixed32   Mask(CRC32C(stored block bytes + type byte))

Mask rotates the CRC right by 15 bits and adds 0xa282ead8, modulo 2**32
(core/lib/hash/crc32c.h Mask; tfckpt.checksum).  ReadBlock (format.cc) always verifies it;
tfckpt verifies it unless ``verify_checksums=False``.

A Snappy block is the raw Snappy encoding (no framing) of the block, and the CRC covers the
compressed bytes; WriteBlock keeps the compressed form only when it is smaller than 7/8 of
the block, else stores type 0.  Snappy is the default of table::Options, but the bundle
writer (BundleWriter::Finish and TableBuilderOptions in core/util/tensor_bundle/
tensor_bundle.cc) and the V1 writer (core/util/tensor_slice_writer.cc) ask for none; a
comment in tensor_bundle.cc dates that to release 1.2, so files from older releases can
hold Snappy blocks, which TensorFlow and tfckpt both read.  tfckpt writes no compression.
An unknown type is DataLoss ("bad block type") in TensorFlow and UnsupportedError in tfckpt.

Index block and block handles
-----------------------------
A BlockHandle (format.cc EncodeTo) is ``varint64 offset | varint64 size``: where a block's
stored bytes start and how many there are, the trailer excluded (so at most 20 bytes).  The
index block maps a separator key to the handle of each data block.  TableBuilder emits the
entry only when it sees the next block's first key: the separator is >= every key of the
block and < every key of the next (FindShortestSeparator: the last key cut after its first
byte that differs from the next key, that byte incremented, when the result stays below the
next key; otherwise the last key unchanged).  After the last block it is FindShortSuccessor
of the last key: its first byte that is not 0xff incremented and the rest dropped.

Footer
------
The last 48 bytes of the file (Footer::EncodeTo in format.cc)::

    metaindex handle | index handle | zero bytes up to 40 | magic (8 bytes)
    magic 0xdb4775248b80fb57, as fixed32 low word then fixed32 high word:
          57 fb 80 8b 24 75 47 db

Table::Open (table.cc) reads the footer (a shorter file is DataLoss), checks the magic and
reads the index block; it never follows the metaindex handle nor checks the padding.

Keys
----
Keys are unique and sorted by unsigned bytewise comparison, a prefix before its extensions
(StringPiece::compare); TableBuilder::Add only asserts it in debug builds, and TensorFlow's
reader does not check it.  tfckpt's writer requires strictly increasing keys and its reader
raises DataLossError when they are not.  A lookup finds the first index key >= the key,
then searches that block.
"""

from tfckpt.table.reader import TableReader
from tfckpt.table.writer import TableWriter

__all__ = ["TableReader", "TableWriter"]
