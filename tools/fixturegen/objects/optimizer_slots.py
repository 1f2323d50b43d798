"""``optimizer_slots/``: tf.compat.v1 Adam slot variables in the object graph."""

from __future__ import annotations

import os
from typing import Any

from .describe import object_names_of, value_digest


def write_optimizer_slots(tf: Any, root: str) -> tuple[str, dict[str, Any]]:
    import numpy as np

    class Net(tf.Module):
        def __init__(self):
            super().__init__(name="net")
            self.w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3) / 10, name="w")
            self.b = tf.Variable(np.array([0.1, -0.2, 0.3], np.float32), name="b")

    net = Net()
    optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate=0.05)
    x = tf.constant([[1.0, -2.0], [0.5, 0.25]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum((tf.matmul(x, net.w) + net.b) ** 2)
    grads = tape.gradient(loss, [net.w, net.b])
    optimizer.apply_gradients(zip(grads, [net.w, net.b]))
    checkpoint = tf.train.Checkpoint(model=net, optimizer=optimizer)
    path = checkpoint.save(os.path.join(root, "optimizer_slots", "ckpt"))
    _, object_names, _ = object_names_of(tf, checkpoint)
    slots = []
    for attr in ("w", "b"):
        variable = getattr(net, attr)
        for slot_name in optimizer.get_slot_names():
            slot = optimizer.get_slot(variable, slot_name)
            slots.append(
                {
                    "variable": f"model/{attr}",
                    "variable_key": object_names[variable] + "/.ATTRIBUTES/VARIABLE_VALUE",
                    "slot": slot_name,
                    "key": f"{object_names[variable]}/.OPTIMIZER_SLOT/optimizer/{slot_name}"
                    "/.ATTRIBUTES/VARIABLE_VALUE",
                    "sha256": value_digest(slot.numpy(), slot.dtype.name),
                }
            )
    return path, {
        "writer": "tf.train.Checkpoint(model=tf.Module, optimizer=tf.compat.v1.train."
        "AdamOptimizer).save after apply_gradients",
        "description": "slot variables (m, v) in the object graph: keys "
        "<variable>/.OPTIMIZER_SLOT/optimizer/<slot>/.ATTRIBUTES/VARIABLE_VALUE",
        "slots": slots,
    }
