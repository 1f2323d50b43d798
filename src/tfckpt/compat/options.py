"""``tf.train.CheckpointOptions``, with the options tfckpt can honour.

tfckpt writes and reads on the host, synchronously, one shard per writer; so
``experimental_io_device`` (a TensorFlow device) has nothing to choose and is ignored, and
``enable_async`` is satisfied trivially (the checkpoint is complete when ``save`` returns,
which is what TensorFlow's ``sync()`` waits for).  Options whose effect tfckpt would
silently drop raise UnimplementedError instead: write callbacks, a sharding callback,
skipping slot variables on restore.

Example::

    checkpoint.save("/tmp/ckpt", options=CheckpointOptions(enable_async=True))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tfckpt.compat.status import UnimplementedError


class CheckpointOptions:
    """Options for ``Checkpoint.save``/``write``/``restore``, with TensorFlow's arguments.

    Raises:
        UnimplementedError: ``experimental_write_callbacks``,
            ``experimental_sharding_callback`` or ``experimental_skip_slot_variables``,
            which tfckpt does not implement.
    """

    __slots__ = (
        "enable_async",
        "experimental_enable_async_checkpoint",
        "experimental_io_device",
        "experimental_sharding_callback",
        "experimental_skip_slot_variables",
        "experimental_write_callbacks",
    )

    def __init__(
        self,
        experimental_io_device: str | None = None,
        experimental_enable_async_checkpoint: bool = False,
        experimental_write_callbacks: Sequence[Callable[..., Any]] | None = None,
        enable_async: bool = False,
        experimental_skip_slot_variables: bool = False,
        experimental_sharding_callback: Any = None,
    ) -> None:
        unsupported = [
            name
            for name, given in (
                ("experimental_write_callbacks", bool(experimental_write_callbacks)),
                ("experimental_sharding_callback", experimental_sharding_callback is not None),
                ("experimental_skip_slot_variables", experimental_skip_slot_variables),
            )
            if given
        ]
        if unsupported:
            raise UnimplementedError(
                None, None, f"tfckpt does not implement CheckpointOptions({', '.join(unsupported)})"
            )
        self.experimental_io_device = experimental_io_device
        self.enable_async = bool(experimental_enable_async_checkpoint or enable_async)
        self.experimental_enable_async_checkpoint = self.enable_async
        self.experimental_write_callbacks = experimental_write_callbacks
        self.experimental_sharding_callback = experimental_sharding_callback
        self.experimental_skip_slot_variables = experimental_skip_slot_variables

    def __repr__(self) -> str:
        return (
            f"CheckpointOptions(experimental_io_device={self.experimental_io_device!r}, "
            f"enable_async={self.enable_async})"
        )
