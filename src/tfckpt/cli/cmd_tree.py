"""``tfckpt tree PATH``: the object graph of a TF2 checkpoint as a tree."""

from __future__ import annotations

import argparse
import re

from tfckpt.cli.common import add_filter, add_json, name_filter, print_json
from tfckpt.inspection.graph_view import ObjectView, object_tree
from tfckpt.objects.keys import PY_STATE, VARIABLE_VALUE
from tfckpt.reader import load_checkpoint

HELP = "show the objects of a TF2 checkpoint as a tree, with their variables"
DESCRIPTION = """\
Show the object graph of an object-based (TF2) checkpoint: each object with its variables
(dtype and shape), NumpyState arrays, and optimizer slots under the variable they belong
to.  An object reachable by several paths is shown once and referred to elsewhere ('->').
A name-based (TF1) checkpoint is shown by name scope.
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("tree", help=HELP, description=DESCRIPTION)
    parser.add_argument("path", help="checkpoint prefix, directory, or SavedModel directory")
    parser.add_argument(
        "--all", action="store_true", help="also objects without values (Keras bookkeeping)"
    )
    parser.add_argument("--depth", type=int, metavar="N", help="show at most N levels")
    add_filter(parser)
    add_json(parser, "the tree")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with load_checkpoint(args.path) as reader:
        root = object_tree(reader)
        prefix = reader.prefix
        scoped = root.node_id is None
    pattern = name_filter(args)
    if pattern is not None:
        root = _filtered(root, pattern) or ObjectView("", "", root.node_id)
    if args.json:
        print_json({"prefix": prefix, "object_graph": not scoped, "root": root.to_dict()})
        return 0
    objects, values = root.count()
    if scoped:
        print(f"{prefix} (no object graph: a name-based checkpoint, by name scope)")
    else:
        print(f"{prefix} ({objects} objects, {values} values)")
    for line in _render(root, "", args.all, args.depth, 1):
        print(line)
    return 0


def _filtered(view: ObjectView, pattern: re.Pattern[str]) -> ObjectView | None:
    """``view`` with only the objects whose path (or a value's key) matches, and their
    ancestors."""
    own = bool(view.path) and (
        pattern.search(view.path) is not None or any(pattern.search(v.key) for v in view.values)
    )
    if own:
        return view
    children = [c for c in (_filtered(child, pattern) for child in view.children) if c]
    if not children:
        return None
    kept = ObjectView(view.name, view.path, view.node_id, view.values, view.slots, children)
    kept.has_values = True
    return kept


def _primary(view: ObjectView) -> bool:
    """Whether the object is one value (a variable, possibly with children or slots),
    shown on its own line."""
    return len(view.values) == 1 and view.values[0].attribute in (VARIABLE_VALUE, PY_STATE, "")


def _label(view: ObjectView) -> str:
    if view.same_as is not None:
        return f"{view.name} -> {view.same_as}"
    if _primary(view):
        return f"{view.name}: {view.values[0].describe()}"
    return view.name


def _render(
    view: ObjectView, indent: str, show_all: bool, depth: int | None, level: int
) -> list[str]:
    rows: list[tuple[str, ObjectView | None]] = []
    if not _primary(view):
        for value in view.values:
            name = value.attribute or value.key.rsplit("/", 1)[-1]
            rows.append((f".ATTRIBUTES/{name}: {value.describe()}", None))
    for slot in view.slots:
        rows.append((f"slot {slot.slot!r} of {slot.optimizer}: {slot.value.describe()}", None))
    for shown in view.children:
        if show_all or shown.has_values:
            rows.append((_label(shown), shown))
    lines = []
    for i, (label, child) in enumerate(rows):
        last = i == len(rows) - 1
        lines.append(f"{indent}{'└── ' if last else '├── '}{label}")
        if child is None or child.same_as is not None:
            continue
        deeper = indent + ("    " if last else "│   ")
        if depth is not None and level >= depth:
            objects, values = child.count()
            if objects > 1 or (values and not _primary(child)):
                lines.append(f"{deeper}└── ... ({objects - 1} objects, {values} values)")
            continue
        lines.extend(_render(child, deeper, show_all, depth, level + 1))
    return lines
