"""The bundle header: the BundleHeaderProto under the index's empty key, and its checks."""

from __future__ import annotations

from tfckpt.errors import DataLossError, UnsupportedError
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table.bulk import TableEntries

# tensor_bundle.cc: kTensorBundleVersion (the consumer version this reader implements)
# and kTensorBundleMinProducer.
BUNDLE_VERSION = 1
BUNDLE_MIN_PRODUCER = 0

LITTLE_ENDIAN = tensor_bundle_pb2.BundleHeaderProto.LITTLE
BIG_ENDIAN = tensor_bundle_pb2.BundleHeaderProto.BIG


def read_header(table: TableEntries, where: str) -> tensor_bundle_pb2.BundleHeaderProto:
    """The index's BundleHeaderProto, its version checked (core/framework/versions.cc
    CheckVersions, with the bundle's constants)."""
    if not len(table) or table.names()[0] != "":
        raise DataLossError(
            "no bundle header (the entry under the empty key is missing); is this a "
            "TensorFlow V2 checkpoint index?",
            path=where,
        )
    try:
        header = tensor_bundle_pb2.BundleHeaderProto.FromString(table.value(0))
    except Exception:  # protobuf's DecodeError
        raise DataLossError("the bundle header is not a BundleHeaderProto", path=where) from None
    if header.endianness not in (LITTLE_ENDIAN, BIG_ENDIAN):
        raise DataLossError(f"unknown endianness {header.endianness} in header", path=where)
    version = header.version
    if version.producer < BUNDLE_MIN_PRODUCER:
        raise UnsupportedError(
            f"checkpoint producer version {version.producer} is below the minimum "
            f"{BUNDLE_MIN_PRODUCER} this reader supports",
            path=where,
        )
    if version.min_consumer > BUNDLE_VERSION:
        raise UnsupportedError(
            f"checkpoint needs a reader of version >= {version.min_consumer}; tfckpt "
            f"implements version {BUNDLE_VERSION}",
            path=where,
        )
    if BUNDLE_VERSION in version.bad_consumers:
        raise UnsupportedError(
            f"checkpoint disallows readers of version {BUNDLE_VERSION}", path=where
        )
    return header
