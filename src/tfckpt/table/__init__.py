"""The table (SSTable) layer: LevelDB's sorted string table as TensorFlow writes it.

``format`` holds the on-disk constants and framing (varints, block handles, footer, block
trailer), ``block`` the prefix-compressed blocks, ``reader`` and ``writer`` whole tables.
This layer knows nothing about tensors.
"""

from tfckpt.table.reader import TableReader
from tfckpt.table.writer import TableWriter

__all__ = ["TableReader", "TableWriter"]
