"""``tf.train.CheckpointOptions``, with the options tfckpt honours.

- ``enable_async`` (``experimental_enable_async_checkpoint``): ``save``/``write`` return
  once the values are copied and write in the background; ``sync()`` waits
  (:mod:`tfckpt.objects.async_save`);
- ``experimental_sharding_callback=MaxShardSizePolicy(max_shard_size)``: data files of at
  most that many bytes, laid out as TensorFlow lays them out (:mod:`tfckpt.bundle.sharding`);
- ``experimental_io_device`` (a TensorFlow device) is ignored: tfckpt writes and reads on
  the host, where there is no device to choose.

Options whose effect tfckpt would silently drop raise UnimplementedError instead: write
callbacks, other sharding callbacks, skipping slot variables on restore.

Example::

    options = CheckpointOptions(
        enable_async=True,
        experimental_sharding_callback=MaxShardSizePolicy(max_shard_size=100 << 20),
    )
    checkpoint.save("/tmp/ckpt", options=options)
    checkpoint.sync()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tfckpt.bundle.sharding import MaxShardSizePolicy
from tfckpt.compat.status import UnimplementedError


class CheckpointOptions:
    """Options for ``Checkpoint.save``/``write``/``restore``, with TensorFlow's arguments.

    Raises:
        UnimplementedError: ``experimental_write_callbacks``, an
            ``experimental_sharding_callback`` other than :class:`MaxShardSizePolicy`, or
            ``experimental_skip_slot_variables``, which tfckpt does not implement.

    Example::

        CheckpointOptions(experimental_sharding_callback=MaxShardSizePolicy(1 << 30))
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
                (
                    "experimental_sharding_callback",
                    experimental_sharding_callback is not None
                    and not isinstance(experimental_sharding_callback, MaxShardSizePolicy),
                ),
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
            f"enable_async={self.enable_async}, "
            f"experimental_sharding_callback={self.experimental_sharding_callback!r})"
        )
