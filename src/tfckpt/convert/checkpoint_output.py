"""Writing a converted checkpoint (V2, little-endian, one shard) that TensorFlow restores."""

from __future__ import annotations

from collections.abc import Iterable

from tfckpt.bundle.writer import BundleWriter
from tfckpt.convert.object_graph import ObjectGraph, graph_from_keys, prune_graph
from tfckpt.convert.plan import Planned, Progress
from tfckpt.convert.staging import remove_stale_shards
from tfckpt.objects.keys import OBJECT_GRAPH_KEY


def object_graph_for(
    planned: list[Planned], source_graph: ObjectGraph | None
) -> ObjectGraph | None:
    """The graph to store beside ``planned``: the source's own, pruned to what is written,
    when every value keeps its key; else one built from the keys (None for a name-based
    checkpoint)."""
    keys = [item.name for item in planned]
    if source_graph is not None and all(item.name == item.origin.key for item in planned):
        return prune_graph(source_graph, keys)
    return graph_from_keys(keys)


def write_checkpoint(
    prefix: str,
    planned: Iterable[Planned],
    object_graph: ObjectGraph | None,
    progress: Progress | None,
    *,
    replace: bool = False,
) -> None:
    """Writes ``planned`` (names are checkpoint keys) and ``object_graph`` at ``prefix``.

    The bundle writer stages both files and renames them into place only in ``finish``, so
    a failure leaves nothing under the prefix.  With ``replace``, data shards of an earlier
    checkpoint there that the new one does not use are deleted afterwards.
    """
    with BundleWriter(prefix) as writer:
        for item in planned:
            value = item.read()
            writer.add(item.name, value, dtype=item.spec.dtype)
            if progress is not None:
                progress(int(value.nbytes) if value.dtype != object else 0)
        if object_graph is not None:
            writer.add(OBJECT_GRAPH_KEY, object_graph.SerializeToString(deterministic=True))
    if replace:
        remove_stale_shards(prefix, 1)
