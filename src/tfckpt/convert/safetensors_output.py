"""Writing ``.safetensors`` files with the safetensors package."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tfckpt.convert.plan import Planned, Progress
from tfckpt.convert.staging import staged_file
from tfckpt.inspection.extras import require
from tfckpt.inspection.sources import c_order


def write_safetensors(
    final_path: str,
    planned: Iterable[Planned],
    metadata: dict[str, str],
    progress: Progress | None,
) -> None:
    """Writes ``planned`` with ``safetensors.numpy.save_file`` (bfloat16 and float8 as
    themselves), through a temporary renamed into place at the end.

    Raises:
        MissingExtraError: safetensors is not installed.
    """
    save_file = require("safetensors.numpy").save_file
    tensors: dict[str, np.ndarray] = {}
    for item in planned:
        # safetensors writes straight from each array's memory: views of the checkpoint's
        # memory map are read only here, while the file is written.
        tensors[item.name] = c_order(item.read())
    with staged_file(final_path) as temporary:
        save_file(tensors, temporary, metadata=metadata)
    if progress is not None:
        progress(sum(int(a.nbytes) for a in tensors.values()))
