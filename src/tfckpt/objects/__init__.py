"""The object-graph layer: TF2 object-based checkpoints (Checkpoint, NumpyState, manager,
trees; asynchronous saves in :mod:`tfckpt.objects.async_save`).  Built on the bundle layer
and the reading API; nothing below imports it."""
