"""Structure-aware mutations of a legacy V1 checkpoint, block checksums valid.

A V1 file is a table whose empty key holds the table of contents (every tensor's dtype,
shape and slices) and whose other keys hold each slice's values as a TensorProto.  These
mutations change one tensor's entry in the table of contents (negative, huge or extra
dimensions, a 20000 x 20000 string tensor in a few bytes, unknown or other dtypes, slices
moved, dropped or listed twice) or its values (missing, cut, one too many, garbage), and
re-encode the table.  A change that leaves the tensor unreadable must make reading it fail.
"""

from __future__ import annotations

import random

from tests.fuzz import tables
from tests.fuzz.mutant import Mutant
from tests.fuzz.seeds import Seed
from tfckpt.proto import saved_tensor_slice_pb2
from tfckpt.tensor_slice import TensorSlice, encode_slice_key

SavedTensorSlices = saved_tensor_slice_pb2.SavedTensorSlices
_LISTING = frozenset({"listing"})
_VALUE_FIELDS = (
    "float_val",
    "double_val",
    "int_val",
    "int64_val",
    "bool_val",
    "half_val",
    "scomplex_val",
    "dcomplex_val",
    "string_val",
    "uint32_val",
    "uint64_val",
)


class _V1Edit:
    """One V1 file's entries, its table of contents parsed."""

    def __init__(self, data: bytes) -> None:
        self.entries = dict(tables.decode_table(data))
        self.meta = SavedTensorSlices.FromString(self.entries[b""])

    def slice_data(self, name: str, piece: TensorSlice) -> SavedTensorSlices | None:
        raw = self.entries.get(encode_slice_key(name, piece))
        return None if raw is None else SavedTensorSlices.FromString(raw)

    def encode(self) -> bytes:
        self.entries[b""] = self.meta.SerializeToString()
        return tables.encode_table(sorted(self.entries.items()))


def _values_field(saved: SavedTensorSlices) -> str | None:
    for field in _VALUE_FIELDS:
        if len(getattr(saved.data.data, field)):
            return field
    return None


def _change_values(rng: random.Random, edit: _V1Edit, name: str, piece: TensorSlice) -> str:
    key = encode_slice_key(name, piece)
    saved = edit.slice_data(name, piece)
    if saved is None:
        return "nothing"
    how = rng.choice(["missing", "cut", "one_more", "garbage"])
    if how == "missing":
        del edit.entries[key]
        return f"values of slice {piece} missing"
    if how == "garbage":
        edit.entries[key] = rng.randbytes(rng.choice((1, 7, 30)))
        return f"values of slice {piece} replaced by garbage"
    tensor = saved.data.data
    field = _values_field(saved)
    if tensor.tensor_content:
        cut = tensor.tensor_content[:-1] if how == "cut" else tensor.tensor_content + bytes(1)
        tensor.tensor_content = cut
    elif field is not None:
        values = getattr(tensor, field)
        if how == "cut":
            del values[-1]
        else:
            values.append(values[0])
    else:
        return "nothing"
    edit.entries[key] = saved.SerializeToString()
    return f"values of slice {piece}: {how}"


def _move_slice(rng: random.Random, edit: _V1Edit, index: int) -> str:
    meta = edit.meta.meta.tensor[index]
    pieces = [TensorSlice.from_proto(s) for s in meta.slice]
    movable = [i for i, p in enumerate(pieces) if any(n != -1 for n in p.lengths)]
    if not movable:
        return "nothing"
    i = rng.choice(movable)
    piece = pieces[i]
    d = rng.choice([d for d, n in enumerate(piece.lengths) if n != -1])
    starts = list(piece.starts)
    starts[d] += -1 if starts[d] > 0 else 1
    moved = TensorSlice(tuple(starts), piece.lengths)
    old_key, new_key = encode_slice_key(meta.name, piece), encode_slice_key(meta.name, moved)
    if old_key in edit.entries:
        edit.entries[new_key] = edit.entries.pop(old_key)
    del meta.slice[i].extent[:]
    moved.to_proto(meta.slice[i])
    return f"slice {piece} moved to {moved}"


def _change_meta(rng: random.Random, edit: _V1Edit, index: int) -> str:
    meta = edit.meta.meta.tensor[index]
    how = rng.choice(
        [
            "negative_dim",
            "huge",
            "extra_dim",
            "unknown_type",
            "resource",
            "slice_dropped",
            "slice_twice",
            "meta_twice",
            "moved",
        ]
    )
    if how == "negative_dim" and meta.shape.dim:
        meta.shape.dim[rng.randrange(len(meta.shape.dim))].size = -rng.choice((1, 2, 2**40))
    elif how == "huge":
        del meta.shape.dim[:]
        for _ in range(2):
            meta.shape.dim.add().size = 20000
        for piece in meta.slice:
            del piece.extent[:]
            piece.extent.add()
            piece.extent.add()
    elif how == "extra_dim":
        meta.shape.dim.add().size = 3
    elif how == "unknown_type":
        meta.type = 99  # type: ignore[assignment]
    elif how == "resource":
        meta.type = 20  # type: ignore[assignment]
    elif how == "slice_dropped" and len(meta.slice) > 1:
        del meta.slice[rng.randrange(len(meta.slice))]
    elif how == "slice_twice":
        meta.slice.add().CopyFrom(meta.slice[0])
    elif how == "meta_twice":
        edit.meta.meta.tensor.add().CopyFrom(meta)
    elif how == "moved":
        return _move_slice(rng, edit, index)
    else:
        return "nothing"
    return f"table of contents: {how}"


def mutate(rng: random.Random, seed: Seed) -> Mutant | None:
    """One tensor of one V1 file of the seed made unreadable (see the module)."""
    file_name = rng.choice(sorted(seed.own))
    edit = _V1Edit(seed.files[file_name])
    if not edit.meta.meta.tensor:
        return None
    index = rng.randrange(len(edit.meta.meta.tensor))
    meta = edit.meta.meta.tensor[index]
    name = meta.name
    if rng.random() < 0.4 and meta.slice:
        what = _change_values(rng, edit, name, TensorSlice.from_proto(rng.choice(meta.slice)))
    else:
        what = _change_meta(rng, edit, index)
    if what == "nothing":
        return None
    description = f"{file_name}: tensor {name!r}: {what}"
    return Mutant(
        description,
        {file_name: edit.encode()},
        must_fail=frozenset({name}),
        changed=_LISTING | {name},
    )
