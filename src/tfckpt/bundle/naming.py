"""File names of a bundle (tensorflow/core/util/tensor_bundle/naming.cc)."""

from __future__ import annotations

import os


def index_filename(prefix: str | os.PathLike[str]) -> str:
    return f"{os.fspath(prefix)}.index"


def data_filename(prefix: str | os.PathLike[str], shard: int, num_shards: int) -> str:
    return f"{os.fspath(prefix)}.data-{shard:05d}-of-{num_shards:05d}"
