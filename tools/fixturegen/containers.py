"""Container facts of a checkpoint (shards, blocks, slices), read with TF's own protos."""

from __future__ import annotations

from typing import Any

from .sstable import sstable_info


def bundle_header(index_path: str) -> dict[str, Any]:
    """num_shards and slice usage from a V2 .index (via TF's own protos)."""
    from tensorflow.core.protobuf import tensor_bundle_pb2

    info = sstable_info(index_path)
    header = tensor_bundle_pb2.BundleHeaderProto()
    sliced = []
    for key, value in info["records"]:
        if key == b"":
            header.ParseFromString(value)
            continue
        entry = tensor_bundle_pb2.BundleEntryProto()
        entry.ParseFromString(value)
        if entry.slices:
            sliced.append(key.decode("latin-1"))
    return {
        "num_shards": header.num_shards,
        "endianness": tensor_bundle_pb2.BundleHeaderProto.Endianness.Name(header.endianness),
        "sstable_data_blocks": info["blocks"],
        "sstable_index_block_compression": info["index_block_compression"],
        "sstable_data_block_compression": info["data_block_compression"],
        "sliced_tensors": sliced,
    }


def v1_info(path: str) -> dict[str, Any]:
    """Block facts plus per-tensor slice counts of a V1 (SavedTensorSlices) file."""
    from tensorflow.core.util import saved_tensor_slice_pb2

    info = sstable_info(path)
    partitioned = []
    for key, value in info["records"]:
        if key != b"":
            continue
        sts = saved_tensor_slice_pb2.SavedTensorSlices()
        sts.ParseFromString(value)
        for t in sts.meta.tensor:
            full = all(not e.HasField("length") for s in t.slice for e in s.extent)
            if len(t.slice) != 1 or not full:
                partitioned.append(t.name)
    return {
        "sstable_data_blocks": info["blocks"],
        "sstable_index_block_compression": info["index_block_compression"],
        "sstable_data_block_compression": info["data_block_compression"],
        "sstable_records": len(info["records"]),
        "partitioned_tensors": partitioned,
    }
