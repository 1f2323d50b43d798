"""``tfckpt convert SRC DST``: between checkpoints, safetensors and .npz."""

from __future__ import annotations

import argparse
import json
import sys

from tfckpt.cli.common import UsageError, add_json, add_progress, print_json
from tfckpt.cli.progress import ProgressBar, checkpoint_bytes, wanted
from tfckpt.convert import convert
from tfckpt.convert.formats import OUTPUT_FORMATS
from tfckpt.inspection.selection import Rename
from tfckpt.inspection.units import human_bytes

HELP = "convert between checkpoints, .safetensors, .npz and Keras .weights.h5"
DESCRIPTION = """\
Convert SRC (a checkpoint, .safetensors or .npz) into DST, whose format comes from its
name: .safetensors, .npz, .weights.h5 (Keras 3), anything else a checkpoint prefix (V2,
little-endian, one shard, with an object graph tf.train.Checkpoint restores).  An existing
DST is refused without --force; a failed conversion leaves nothing behind.  A value the
output format cannot hold (strings in safetensors, say) is named with the reason.  The
object graph is not copied to .safetensors or .npz: converting back rebuilds one from the
keys.

A .weights.h5 file is made from the checkpoint of a Keras 3 model written with
tf.train.Checkpoint(model=model) (or model.optimizer with it) and is read by
model.load_weights() of the same architecture, on any Keras backend.  Keras lays the file
out by layer class, which the checkpoint knows only from layer names: a layer named by
hand needs --keras-class NAME=CLASS.  Where the checkpoint does not say where a value goes,
the conversion stops and says what is missing.
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("convert", help=HELP, description=DESCRIPTION)
    parser.add_argument("src", help="checkpoint (prefix, directory), .safetensors or .npz")
    parser.add_argument("dst", help="output: .safetensors, .npz or a checkpoint prefix")
    parser.add_argument("--to", choices=OUTPUT_FORMATS, help="output format (default: by name)")
    parser.add_argument(
        "--names",
        choices=("keys", "paths"),
        default="keys",
        help="name tensors by checkpoint key (as stored) or by object path (default: keys)",
    )
    parser.add_argument(
        "--exclude-optimizer", action="store_true", help="leave optimizer slots and state out"
    )
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="REGEX",
        help="only names matching one of these (repeatable)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="REGEX",
        help="leave out names matching these (repeatable)",
    )
    parser.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="FROM=TO",
        help="rename by regular expression (re.sub; repeatable, applied in order)",
    )
    parser.add_argument(
        "--rename-map",
        metavar="FILE.json",
        help="rename exact names: a JSON object {old name: new name}, applied first",
    )
    parser.add_argument(
        "--keras-model",
        metavar="PATH",
        help="the Keras model's object path in SRC (default: 'model'; .weights.h5 only)",
    )
    parser.add_argument(
        "--keras-class",
        action="append",
        default=[],
        metavar="NAME=CLASS",
        help="the class of the layer named NAME, e.g. encoder=Dense (repeatable; .weights.h5)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing DST")
    add_progress(parser)
    add_json(parser, "what was written")
    parser.set_defaults(run=run)


def _rename(args: argparse.Namespace) -> Rename | None:
    rules = []
    for rule in args.rename:
        pattern, sep, replacement = rule.partition("=")
        if not sep or not pattern:
            raise UsageError(f"convert: --rename {rule!r} is not FROM=TO")
        rules.append((pattern, replacement))
    mapping = None
    if args.rename_map is not None:
        try:
            with open(args.rename_map, encoding="utf-8") as f:
                mapping = json.load(f)
        except OSError as exc:
            raise UsageError(f"convert: cannot read --rename-map: {exc}") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"convert: --rename-map {args.rename_map!r}: {exc}") from None
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise UsageError("convert: --rename-map must hold a JSON object of names to names")
    return Rename(mapping, rules) if rules or mapping else None


def _keras_classes(args: argparse.Namespace) -> dict[str, str]:
    classes = {}
    for rule in args.keras_class:
        name, sep, class_name = rule.partition("=")
        if not sep or not name or not class_name:
            raise UsageError(f"convert: --keras-class {rule!r} is not NAME=CLASS")
        classes[name] = class_name
    return classes


def run(args: argparse.Namespace) -> int:
    rename = _rename(args)
    classes = _keras_classes(args)
    enabled = wanted(args.no_progress)
    total = checkpoint_bytes(args.src) if enabled else None
    with ProgressBar(total, "convert", enabled=enabled) as bar:
        result = convert(
            args.src,
            args.dst,
            to=args.to,
            names=args.names,
            exclude_optimizer=args.exclude_optimizer,
            include=args.include,
            exclude=args.exclude,
            rename=rename,
            force=args.force,
            progress=bar,
            keras_model=args.keras_model,
            keras_classes=classes,
        )
    if args.json:
        print_json(
            {
                "path": result.path,
                "format": result.format,
                "tensors": result.names,
                "bytes": result.nbytes,
                "left_out": [{"name": n, "reason": r} for n, r in result.left_out],
            }
        )
        return 0
    for name, reason in result.left_out:
        print(f"note: left out {name!r}: {reason}", file=sys.stderr)
    what = "datasets" if result.format == "keras" else "tensors"
    print(
        f"wrote {result.path} ({result.format}): {len(result.names)} {what}, "
        f"{human_bytes(result.nbytes)}"
    )
    return 0
