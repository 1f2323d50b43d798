"""``tfckpt info PATH``: what a checkpoint is, in a few lines."""

from __future__ import annotations

import argparse
import datetime
import os
from typing import Any

from tfckpt.checkpoint_state import read_state
from tfckpt.cli.common import add_json, print_json
from tfckpt.errors import CheckpointError
from tfckpt.inspection.graph_view import object_tree
from tfckpt.inspection.inventory import Inventory, take_inventory
from tfckpt.inspection.selection import describe_checkpoint
from tfckpt.inspection.units import human_bytes
from tfckpt.objects.keys import OBJECT_GRAPH_KEY
from tfckpt.reader import load_checkpoint

HELP = "summarize a checkpoint: format, files, tensors by dtype, object graph, state file"
DESCRIPTION = """\
Summarize a checkpoint: its format (V1 or V2), version and byte order, its files and their
sizes, the number of tensors and bytes by dtype, the object graph (objects, variables,
optimizer slots, NumpyState values) and the directory's 'checkpoint' state file.
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("info", help=HELP, description=DESCRIPTION)
    parser.add_argument("path", help="checkpoint prefix, directory, or SavedModel directory")
    add_json(parser, "the summary")
    parser.set_defaults(run=run)


def _graph_summary(prefix: str) -> dict[str, Any] | None:
    with load_checkpoint(prefix) as reader:
        if OBJECT_GRAPH_KEY not in reader:
            return None
        values = describe_checkpoint(reader)
        objects, _ = object_tree(reader).count()
    kinds: dict[str, int] = {}
    for value in values:
        kinds[value.kind] = kinds.get(value.kind, 0) + 1
    optimizers = sorted(
        {v.path.split("/.OPTIMIZER_SLOT/")[1].rsplit("/", 1)[0] for v in values if v.kind == "slot"}
        | {v.path.split("/")[0] for v in values if v.optimizer and v.kind != "slot"}
    )
    return {
        "objects": objects,
        "variables": kinds.get("variable", 0),
        "slot_variables": kinds.get("slot", 0),
        "numpy_state": kinds.get("numpy", 0),
        "other_attributes": kinds.get("attribute", 0),
        "save_counter": kinds.get("save_counter", 0) > 0,
        "optimizers": optimizers,
        "optimizer_values": sum(1 for v in values if v.optimizer),
    }


def _state_summary(prefix: str) -> dict[str, Any] | None:
    directory = os.path.dirname(prefix) or "."
    try:
        state = read_state(directory)
    except CheckpointError as exc:
        return {"path": os.path.join(directory, "checkpoint"), "error": str(exc)}
    if state is None:
        return None
    times = state.all_model_checkpoint_timestamps

    def shown(path: str) -> str:  # relative to the directory, as the file usually has them
        inside = os.path.dirname(os.path.abspath(path)) == os.path.abspath(directory)
        return os.path.basename(path) if inside else path

    return {
        "path": os.path.join(directory, "checkpoint"),
        "latest": shown(state.model_checkpoint_path),
        "all": [shown(p) for p in state.all_model_checkpoint_paths],
        "timestamps": list(times),
        "this_is_latest": os.path.abspath(state.model_checkpoint_path) == os.path.abspath(prefix),
    }


def summary(inventory: Inventory) -> dict[str, Any]:
    by_dtype = inventory.bytes_by_dtype()
    out: dict[str, Any] = {
        "prefix": inventory.prefix,
        "format": inventory.format,
        "files": [
            {"path": f.path, "role": f.role, "bytes": f.size, "missing": f.size is None}
            for f in inventory.files
        ],
        "stray_files": inventory.stray_files,
        "tensors": len(inventory.tensors),
        "bytes": inventory.total_bytes,
        "by_dtype": {d: {"tensors": n, "bytes": b} for d, (n, b) in by_dtype.items()},
        "partitioned": sum(1 for t in inventory.tensors if t.slices),
    }
    if inventory.format == "v2":
        producer, consumer = inventory.version or (0, 0)
        out["version"] = {"producer": producer, "min_consumer": consumer}
        out["endianness"] = "big" if inventory.big_endian else "little"
        out["num_shards"] = inventory.num_shards
    return out


def run(args: argparse.Namespace) -> int:
    inventory = take_inventory(args.path)
    info = summary(inventory)
    info["object_graph"] = _graph_summary(inventory.prefix)
    info["state_file"] = _state_summary(inventory.prefix)
    if args.json:
        print_json(info)
        return 0
    rows: list[tuple[str, str]] = [("prefix", inventory.prefix)]
    if inventory.format == "v2":
        producer, consumer = inventory.version or (0, 0)
        rows.append(
            (
                "format",
                f"V2 (TensorBundle), producer version {producer}, min consumer {consumer}, "
                f"{info['endianness']}-endian, {inventory.num_shards} data shard(s)",
            )
        )
    else:
        rows.append(("format", f"V1 (saved tensor slices), {len(inventory.files)} table file(s)"))
    for i, file in enumerate(inventory.files):
        size = "MISSING" if file.size is None else human_bytes(file.size)
        rows.append(("files" if i == 0 else "", f"{os.path.basename(file.path)}  {size}"))
    for stray in inventory.stray_files:
        rows.append(("", f"{os.path.basename(stray)}  (not part of this checkpoint)"))
    partitioned = f", {info['partitioned']} partitioned" if info["partitioned"] else ""
    rows.append(("tensors", f"{info['tensors']}, {human_bytes(info['bytes'])}{partitioned}"))
    for dtype, (count, nbytes) in inventory.bytes_by_dtype().items():
        rows.append(("", f"{dtype}: {count} tensor(s), {human_bytes(nbytes)}"))
    graph = info["object_graph"]
    if graph is None:
        rows.append(("object graph", "none (a name-based checkpoint)"))
    else:
        text = (
            f"{graph['objects']} objects; {graph['variables']} variables, "
            f"{graph['slot_variables']} slot variables, {graph['numpy_state']} NumpyState "
            f"values, {graph['other_attributes']} other attributes"
        )
        rows.append(("object graph", text))
        if graph["optimizers"]:
            rows.append(
                (
                    "",
                    f"optimizers: {', '.join(graph['optimizers'])} "
                    f"({graph['optimizer_values']} values)",
                )
            )
    state = info["state_file"]
    if state is None:
        rows.append(("state file", "none"))
    elif "error" in state:
        rows.append(("state file", state["error"]))
    else:
        rows.append(("state file", state["path"]))
        this = " (this one)" if state["this_is_latest"] else ""
        rows.append(("", f"latest: {state['latest']}{this}"))
        stamps = state["timestamps"]
        for i, kept in enumerate(state["all"]):
            when = ""
            if i < len(stamps):
                when = "  " + datetime.datetime.fromtimestamp(
                    stamps[i], datetime.timezone.utc
                ).strftime("%Y-%m-%d %H:%M:%S UTC")
            rows.append(("", f"kept: {kept}{when}"))
    width = max(len(label) for label, _ in rows) + 1
    for label, text in rows:
        print(f"{(label + ':') if label else '':<{width}} {text}")
    return 0
