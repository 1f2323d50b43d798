"""``tfckpt dump PATH NAME [-o out.npy]``: one tensor's values, printed or as ``.npy``."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from tfckpt.cli.common import (
    UsageError,
    add_json,
    add_printoptions,
    json_values,
    print_json,
    printoptions,
    unknown_name,
)
from tfckpt.convert.formats import ML_DTYPES, QUANTIZED
from tfckpt.convert.npz_output import fixed_width_strings
from tfckpt.convert.staging import check_output, staged_file
from tfckpt.errors import UnsupportedError
from tfckpt.inspection.selection import describe_checkpoint
from tfckpt.inspection.sources import as_array, decode_numpy_state, dtype_name
from tfckpt.inspection.units import human_bytes

HELP = "print one tensor's values, or write them to a .npy file"
DESCRIPTION = """\
Print the values of one tensor (NAME is its checkpoint key or its object path), or write
them to a .npy file with -o (never pickled).  A NumpyState value is its array (--raw: the
stored bytes).  String tensors go to .npy as fixed-width bytes (dtype S<n>), which is exact
unless a string ends with a NUL byte (refused then); bfloat16 and float8 tensors need
--cast, since .npy has no name for them.
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("dump", help=HELP, description=DESCRIPTION)
    parser.add_argument("path", help="checkpoint prefix, directory, or SavedModel directory")
    parser.add_argument("name", help="the tensor's checkpoint key or object path")
    parser.add_argument("-o", "--output", metavar="OUT.npy", help="write the values here")
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    parser.add_argument(
        "--cast", metavar="DTYPE", help="convert the values to this NumPy dtype first"
    )
    parser.add_argument(
        "--raw", action="store_true", help="a NumpyState value's stored .npy bytes, undecoded"
    )
    add_printoptions(parser)
    add_json(parser, "the values")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tfckpt.reader import load_checkpoint

    if args.output is not None:
        if not args.output.endswith(".npy"):
            raise UsageError(f"dump: -o writes a .npy file; {args.output!r} does not end in .npy")
        check_output(args.output, checkpoint=False, force=args.force)
    with load_checkpoint(args.path) as reader:
        described = describe_checkpoint(reader)
        by_path = {v.path: v for v in described}
        by_key = {v.key: v for v in described}
        found = by_key.get(args.name) or by_path.get(args.name)
        if found is None:
            known = [v.key for v in described] + [v.path for v in described]
            raise unknown_name(args.name, sorted(set(known)), reader.prefix)
        key = found.key
        value = as_array(reader.get_tensor(key))
        dtype = reader.get_dtype(key).name
        if found.kind == "numpy" and not args.raw:
            data = reader.get_bytes_view(key)
            if bytes(data[:6]) == b"\x93NUMPY":
                value = decode_numpy_state(data, key, reader.prefix)
                dtype = dtype_name(value.dtype)
    if args.cast is not None:
        value = _cast(value, args.cast, key)
        dtype = dtype_name(value.dtype)
    if args.output is not None:
        return _write_npy(args.output, value, dtype, key)
    if args.json:
        shape = list(value.shape)
        print_json({"name": key, "dtype": dtype, "shape": shape, "values": json_values(value)})
        return 0
    with printoptions(args):
        print(value if value.ndim else value[()])
    return 0


def _cast(value: np.ndarray, target: str, key: str) -> np.ndarray:
    from tfckpt import dtypes

    try:
        numpy_dtype = dtypes.as_dtype(target).storage_dtype
    except TypeError:
        try:
            numpy_dtype = np.dtype(target)
        except TypeError:
            raise UsageError(f"dump: unknown dtype {target!r} for --cast") from None
    if value.dtype == object:
        raise UsageError(f"dump: {key!r} is a string tensor; --cast takes numbers")
    return value.astype(numpy_dtype)


def _write_npy(path: str, value: np.ndarray, dtype: str, key: str) -> int:
    from numpy.lib import format as npy_format

    if dtype in ML_DTYPES:
        raise UnsupportedError(
            f"{dtype}: NumPy's .npy format has no name for it (it would read back as raw "
            "bytes); pass --cast float32, or convert to .safetensors",
            tensor=key,
        )
    note = None
    if value.dtype == object:
        value = fixed_width_strings(value, key)
        note = f"a string tensor, written as fixed-width bytes (dtype {value.dtype.str[1:]})"
    elif dtype in QUANTIZED:
        note = f"{dtype}, written as its {value.dtype} storage"
    with staged_file(path) as temporary, open(temporary, "wb") as f:
        npy_format.write_array(f, value, allow_pickle=False)
    print(f"wrote {path}: {key} {value.dtype} {list(value.shape)}, {human_bytes(value.nbytes)}")
    if note is not None:
        print(f"note: {note}", file=sys.stderr)
    return 0
