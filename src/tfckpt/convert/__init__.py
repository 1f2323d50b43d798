"""Converting between checkpoints, safetensors and ``.npz`` (and Keras weights files).

:func:`convert` reads any of them (:mod:`tfckpt.inspection.sources`) and writes

* a checkpoint: V2, little-endian, one data shard (from V1, big-endian or sharded ones
  too), with an object graph that ``tf.train.Checkpoint`` restores (the source's own,
  pruned, or one built from the keys; see :mod:`tfckpt.convert.object_graph`);
* a ``.safetensors`` file through the safetensors package (bfloat16 and float8 as
  themselves), with metadata ``format: tf``, ``tfckpt.names`` (``keys`` or ``paths``),
  ``tfckpt.optimizer`` (the names that are optimizer state) and ``tfckpt.numpy_state``
  (NumpyState values), so that converting it back gives the checkpoint keys again;
* an ``.npz`` archive (strings as fixed-width bytes, never pickled);
* a Keras 3 ``.weights.h5`` file that ``keras.Model.load_weights`` reads, from the object
  graph of a Keras 3 model's checkpoint (:mod:`tfckpt.convert.keras_h5`).

Values are selected and renamed by a :class:`tfckpt.inspection.selection.Selection`.  An output that
cannot hold a value names it and says why before anything is written; an existing output is
refused unless ``force``; everything is written under temporary names and renamed into place
at the end, so a failed conversion leaves no partial output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from tfckpt.convert.checkpoint_output import object_graph_for, write_checkpoint
from tfckpt.convert.formats import (
    CHECKPOINT,
    KERAS,
    NPZ,
    SAFETENSORS,
    cannot_hold,
    output_format,
)
from tfckpt.convert.keras_h5 import keras_layout, write_keras_h5
from tfckpt.convert.npz_output import write_npz
from tfckpt.convert.object_graph import is_object_key
from tfckpt.convert.plan import Planned, Progress
from tfckpt.convert.safetensors_output import write_safetensors
from tfckpt.convert.staging import OutputExistsError, check_output
from tfckpt.errors import InvalidArgumentError, UnsupportedError
from tfckpt.inspection.selection import Naming, RenameSpec, Selection, key_for_path
from tfckpt.inspection.sources import (
    META_NAMES,
    META_NUMPY_STATE,
    META_OPTIMIZER,
    CheckpointSource,
    Source,
    open_source,
)

__all__ = ["ConvertResult", "OutputExistsError", "convert", "output_format"]


@dataclass
class ConvertResult:
    """What :func:`convert` wrote: the output path and format, the names written with their
    total bytes, and the values left out with the reason."""

    path: str
    format: str
    names: list[str] = field(default_factory=list)
    nbytes: int = 0
    left_out: list[tuple[str, str]] = field(default_factory=list)


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    to: str | None = None,
    names: Naming = "keys",
    exclude_optimizer: bool = False,
    include: list[str] | tuple[str, ...] = (),
    exclude: list[str] | tuple[str, ...] = (),
    rename: RenameSpec = None,
    force: bool = False,
    progress: Progress | None = None,
    keras_model: str | None = None,
    keras_classes: Mapping[str, str] | None = None,
) -> ConvertResult:
    """Converts ``src`` (checkpoint, ``.safetensors`` or ``.npz``) into ``dst``.

    ``to`` is the output format (``checkpoint``, ``safetensors``, ``npz``, ``keras``;
    default: from ``dst``'s name, a checkpoint prefix unless it ends in ``.safetensors``,
    ``.npz`` or ``.weights.h5``).  ``names`` names values by checkpoint key or object path;
    ``include``/``exclude`` are regular expressions on those names and ``rename`` renames
    them (:class:`tfckpt.inspection.selection.Rename`).  ``progress`` is called with byte
    counts.

    A Keras weights file is laid out as Keras lays it out, so names, ``include``,
    ``exclude`` and ``rename`` do not apply; ``keras_model`` is the model's object path
    (default: ``model``, as ``tf.train.Checkpoint(model=model)`` writes it) and
    ``keras_classes`` names the class of layers whose name is not Keras's automatic one
    (``{"encoder": "Dense"}``); see :func:`tfckpt.convert.keras_h5.keras_layout`.

    Raises:
        OutputExistsError: ``dst`` exists and not ``force``.
        InvalidArgumentError: bad arguments, nothing selected, or ``dst`` is ``src``.
        UnsupportedError: the output format cannot hold a selected value (named).
        MissingExtraError: the output format needs a package that is not installed.
        CheckpointError: reading ``src`` failed.

    Example::

        convert("model.ckpt-1000", "model.safetensors", names="paths", exclude_optimizer=True)
        convert("training/ckpt-5", "model.weights.h5")  # then keras_model.load_weights(...)
    """
    dst = os.fspath(dst)
    out_format = output_format(dst, to)
    check_output(dst, checkpoint=out_format == CHECKPOINT, force=force)
    if out_format == KERAS:
        if include or exclude or rename is not None:
            raise InvalidArgumentError(
                "--include, --exclude and renames do not apply to a Keras weights file: "
                "Keras decides its layout (use --exclude-optimizer to leave optimizer state out)"
            )
        return _convert_keras(
            src, dst, exclude_optimizer, keras_model, keras_classes, force, progress
        )
    selection = Selection(
        names=names,
        optimizer=not exclude_optimizer,
        include=tuple(include),
        exclude=tuple(exclude),
        rename=rename,
    )
    source = open_source(src)
    try:
        _refuse_same_path(source, dst, out_format)
        chosen = selection.apply(source.values())
        result = ConvertResult(dst, out_format)
        # The object graph is structure, not data: checkpoints get one made for them, other
        # formats cannot use it.
        for item in chosen:
            if item.source.kind == "object_graph":
                result.left_out.append((item.name, "the object graph (structure, not data)"))
        chosen = [item for item in chosen if item.source.kind != "object_graph"]
        if not chosen:
            raise InvalidArgumentError("nothing to convert: no value is selected", path=src)
        decode = out_format != CHECKPOINT and names == "paths"
        planned = []
        for item in chosen:
            key = item.source.key
            out_name = item.name
            if out_format == CHECKPOINT and names == "paths":
                # An object-based key stays as TensorFlow made it unless renamed (object paths
                # avoid optimizers, TensorFlow's keys may not); any other name becomes one.
                kept = item.name == item.source.path and is_object_key(key)
                out_name = key if kept else key_for_path(item.name, item.source.kind)
            spec = source.spec(key, decode=decode)
            planned.append(
                Planned(
                    out_name,
                    spec,
                    item.source,
                    lambda key=key: source.read(key, decode=decode),  # type: ignore[misc]
                )
            )
        _check_representable(planned, out_format, names, source.path)
        _write(source, planned, out_format, dst, names, decode, force, progress)
        result.names = [item.name for item in planned]
        result.nbytes = sum(item.nbytes for item in planned)
        return result
    finally:
        source.close()


def _convert_keras(
    src: str | os.PathLike[str],
    dst: str,
    exclude_optimizer: bool,
    model: str | None,
    classes: Mapping[str, str] | None,
    force: bool,
    progress: Progress | None,
) -> ConvertResult:
    from tfckpt.objects.keys import OBJECT_GRAPH_KEY
    from tfckpt.objects.restore import read_object_graph

    source = open_source(src)
    try:
        if not isinstance(source, CheckpointSource) or OBJECT_GRAPH_KEY not in source.reader:
            raise UnsupportedError(
                "a Keras weights file is made from the object graph of a Keras model's "
                "checkpoint (tf.train.Checkpoint(model=model)), which this input does not have",
                path=source.path,
            )
        layout = keras_layout(
            read_object_graph(source.reader),
            model=model,
            optimizer=not exclude_optimizer,
            classes=classes,
            path=source.path,
        )
        result = ConvertResult(dst, KERAS, left_out=list(layout.left_out))
        planned = []
        for entry in layout.entries:
            spec = source.spec(entry.key)
            reason = cannot_hold(KERAS, spec)
            if reason is not None:
                raise UnsupportedError(
                    f"keras cannot hold it: {reason}", path=source.path, tensor=entry.key
                )
            planned.append((entry.path, lambda key=entry.key: source.read(key)))
            result.names.append(entry.path)
            result.nbytes += spec.nbytes or 0
        write_keras_h5(dst, planned, progress)
        return result
    finally:
        source.close()


def _refuse_same_path(source: Source, dst: str, out_format: str) -> None:
    same = os.path.realpath(source.path) == os.path.realpath(dst)
    if same and (out_format == CHECKPOINT) == isinstance(source, CheckpointSource):
        raise InvalidArgumentError("the output is the input; write somewhere else", path=dst)


def _check_representable(planned: list[Planned], out_format: str, names: str, path: str) -> None:
    problems = []
    for item in planned:
        reason = cannot_hold(out_format, item.spec)
        if reason is not None:
            if item.origin.kind == "numpy" and names == "keys":
                reason += "; --names paths writes NumpyState values as their arrays"
            problems.append((item.name, reason))
    if not problems:
        return
    name, reason = problems[0]
    more = f" (and {len(problems) - 1} more: {', '.join(n for n, _ in problems[1:4])}" + (
        ", ...)" if len(problems) > 4 else ")"
    )
    raise UnsupportedError(
        f"{out_format} cannot hold it: {reason}{more if len(problems) > 1 else ''}",
        path=path,
        tensor=name,
    )


def _write(
    source: Source,
    planned: list[Planned],
    out_format: str,
    dst: str,
    names: str,
    decode: bool,
    force: bool,
    progress: Progress | None,
) -> None:
    if out_format == CHECKPOINT:
        source_graph = None
        if isinstance(source, CheckpointSource):
            from tfckpt.objects.keys import OBJECT_GRAPH_KEY
            from tfckpt.objects.restore import read_object_graph

            if OBJECT_GRAPH_KEY in source.reader:
                source_graph = read_object_graph(source.reader)
        graph = object_graph_for(planned, source_graph)
        write_checkpoint(dst, planned, graph, progress, replace=force)
    elif out_format == SAFETENSORS:
        metadata = {"format": "tf", META_NAMES: names}
        numpy_state = [item.name for item in planned if item.origin.kind == "numpy" and decode]
        if numpy_state:
            metadata[META_NUMPY_STATE] = json.dumps(numpy_state)
        metadata[META_OPTIMIZER] = json.dumps([i.name for i in planned if i.origin.optimizer])
        write_safetensors(dst, planned, metadata, progress)
    elif out_format == NPZ:
        write_npz(dst, planned, progress)
    else:  # pragma: no cover - output_format validated it
        raise InvalidArgumentError(f"unknown output format {out_format!r}")
