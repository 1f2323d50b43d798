"""``tfckpt inspect PATH`` (alias ``ls``): every tensor's name, dtype, shape and size; with
TensorFlow's inspect_checkpoint options, values."""

from __future__ import annotations

import argparse
import contextlib

from tfckpt.cli.common import (
    UsageError,
    add_filter,
    add_json,
    add_printoptions,
    json_values,
    name_filter,
    print_json,
    printoptions,
    unknown_name,
)
from tfckpt.inspection.inventory import TensorInfo, take_inventory
from tfckpt.inspection.units import human_bytes
from tfckpt.reader import load_checkpoint

HELP = "list every tensor's name, dtype, shape and size (like TF's inspect_checkpoint)"
DESCRIPTION = """\
List every tensor: name (dtype) [shape] and the bytes it takes, with totals.  The first
line is '# PREFIX (FORMAT, N tensors)'.  With --tensor or --all-tensors, print values as
TensorFlow's inspect_checkpoint does ('tensor_name:  NAME', then the value).
"""
# Names longer than this are not padded to align the size column.
_ALIGN_LIMIT = 100


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("inspect", aliases=["ls"], help=HELP, description=DESCRIPTION)
    parser.add_argument(
        "path", nargs="?", help="checkpoint prefix, directory, or SavedModel directory"
    )
    parser.add_argument(
        "--file_name", dest="file_name", help="the checkpoint, as inspect_checkpoint takes it"
    )
    parser.add_argument(
        "--tensor", "--tensor_name", dest="tensor", metavar="NAME", help="print this tensor"
    )
    parser.add_argument(
        "--all-tensors", "--all_tensors", action="store_true", help="print every tensor's value"
    )
    parser.add_argument(
        "--all-tensor-names",
        "--all_tensor_names",
        action="store_true",
        help="print only the names, as 'tensor_name:  NAME'",
    )
    parser.add_argument(
        "--values", action="store_true", help="print each tensor's line, then its value"
    )
    parser.add_argument(
        "--sort", choices=("name", "size"), default="name", help="order of the list"
    )
    parser.add_argument(
        "--bytes", action="store_true", help="exact byte counts instead of KiB, MiB, ..."
    )
    add_filter(parser)
    add_printoptions(parser)
    add_json(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = args.path or args.file_name
    if path is None:
        raise UsageError("inspect: give the checkpoint (PATH or --file_name)")
    args.path = path
    if args.tensor is not None:
        return _print_tensor(args, path)
    inventory = take_inventory(path)
    pattern = name_filter(args)
    tensors = [t for t in inventory.tensors if pattern is None or pattern.search(t.name)]
    if args.sort == "size":
        tensors.sort(key=lambda t: (-(t.nbytes or 0), t.name))
    else:
        tensors.sort(key=lambda t: t.name)
    if args.all_tensors or args.all_tensor_names:
        return _print_named(args, inventory.prefix, tensors)
    if args.json:
        print_json(
            {
                "prefix": inventory.prefix,
                "format": inventory.format,
                "count": len(tensors),
                "total_bytes": sum(t.nbytes or 0 for t in tensors),
                "tensors": [_tensor_json(t) for t in tensors],
            }
        )
        return 0
    size = (lambda n: "?" if n is None else str(n)) if args.bytes else human_bytes
    print(f"# {inventory.prefix} ({inventory.format}, {len(inventory.tensors)} tensors)")
    lines = [f"{t.name} ({t.dtype}) {list(t.shape)}" for t in tensors]
    width = min(max((len(line) for line in lines), default=0), _ALIGN_LIMIT)
    sizes = [size(t.nbytes) for t in tensors]
    size_width = max((len(s) for s in sizes), default=0)
    with load_checkpoint(path) if args.values else contextlib.nullcontext() as reader:
        for tensor, line, shown in zip(tensors, lines, sizes):
            if reader is None:
                print(f"{line.ljust(width)}  {shown.rjust(size_width)}")
                continue
            print(line)  # each value follows its line, as in TensorFlow's debug output
            with printoptions(args):
                print(reader.get_tensor(tensor.name))
    total = sum(t.nbytes or 0 for t in tensors)
    count = (
        f"{len(tensors)} tensors"
        if len(tensors) == len(inventory.tensors)
        else f"{len(tensors)} of {len(inventory.tensors)} tensors"
    )
    exact = "" if args.bytes or total < 1024 else f" ({total:,} bytes)"
    print(f"# total: {count}, {size(total)}{exact}")
    return 0


def _tensor_json(tensor: TensorInfo) -> dict[str, object]:
    out: dict[str, object] = {
        "name": tensor.name,
        "dtype": tensor.dtype,
        "shape": list(tensor.shape),
        "bytes": tensor.nbytes,
    }
    if tensor.slices:
        out["slices"] = tensor.slices
    return out


def _print_named(args: argparse.Namespace, prefix: str, tensors: list[TensorInfo]) -> int:
    if not args.all_tensors:
        if args.json:
            print_json([t.name for t in tensors])
        else:
            for tensor in tensors:
                print("tensor_name: ", tensor.name)
        return 0
    with load_checkpoint(prefix) as reader:
        if args.json:
            print_json(
                [
                    {**_tensor_json(t), "values": json_values(reader.get_tensor(t.name))}
                    for t in tensors
                ]
            )
            return 0
        with printoptions(args):
            for tensor in tensors:
                print("tensor_name: ", tensor.name)
                print(reader.get_tensor(tensor.name))
    return 0


def _print_tensor(args: argparse.Namespace, path: str) -> int:
    with load_checkpoint(path) as reader:
        name = args.tensor
        if name not in reader:
            raise unknown_name(name, reader.keys(), reader.prefix)
        value = reader.get_tensor(name)
        if args.json:
            print_json(
                {
                    "name": name,
                    "dtype": reader.get_dtype(name).name,
                    "shape": reader.get_variable_to_shape_map()[name],
                    "values": json_values(value),
                }
            )
            return 0
        with printoptions(args):
            print("tensor_name: ", name)
            print(value)
    return 0
