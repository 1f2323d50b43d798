"""Progress bars for long commands: shown on a terminal when tqdm is installed (the
``progress`` extra), silent otherwise."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from tfckpt.inspection.extras import available, require


def checkpoint_bytes(path: str) -> int | None:
    """The bytes of the checkpoint at ``path`` (the total of a bar), None when ``path`` is
    no checkpoint (a safetensors or .npz file: the bar then counts without a total)."""
    from tfckpt.errors import CheckpointError
    from tfckpt.inspection.inventory import take_inventory
    from tfckpt.inspection.sources import file_format

    if file_format(path) is not None:
        return None
    try:
        return take_inventory(path).total_bytes
    except CheckpointError:
        return None  # the command itself reports it


def wanted(disabled: bool = False) -> bool:
    """Whether to draw a bar: not disabled, stderr is a terminal, tqdm is installed."""
    isatty = getattr(sys.stderr, "isatty", None)
    return not disabled and isatty is not None and isatty() and available("tqdm")


class ProgressBar:
    """A byte-count bar on stderr, or nothing; call it with the bytes just processed.

    Example::

        with ProgressBar(total, "verify", enabled=wanted()) as bar:
            bar(4096)
    """

    def __init__(self, total: int | None, description: str, *, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            tqdm = require("tqdm").tqdm
            self._bar = tqdm(
                total=total,
                desc=description,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )

    def __call__(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.update(nbytes)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
