"""The ``tfckpt`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tfckpt.errors import CheckpointError
from tfckpt.reader import load_checkpoint


def _inspect(args: argparse.Namespace) -> int:
    with load_checkpoint(args.path) as reader:
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
        print(f"# {reader.prefix} ({reader.format}, {len(shapes)} tensors)")
        for name in sorted(shapes):
            print(f"{name} ({dtypes[name].name}) {shapes[name]}")
            if args.values:
                print(reader.get_tensor(name))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tfckpt`` and ``python -m tfckpt``."""
    parser = argparse.ArgumentParser(
        prog="tfckpt", description="Read TensorFlow checkpoints without TensorFlow."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser(
        "inspect", help="list every tensor's name, dtype and shape (like inspect_checkpoint)"
    )
    inspect.add_argument("path", help="checkpoint prefix, directory, or SavedModel directory")
    inspect.add_argument("--values", action="store_true", help="also print every tensor")
    inspect.set_defaults(run=_inspect)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except CheckpointError as exc:
        print(f"tfckpt: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `tfckpt inspect big | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
