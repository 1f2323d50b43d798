"""``keras_checkpoint/``: a Keras 3 model and its Adam optimizer after one training step."""

from __future__ import annotations

import os
from typing import Any

from .describe import local_path, object_names_of, value_digest


def write_keras_checkpoint(tf: Any, root: str) -> tuple[str, dict[str, Any]]:
    import keras
    import numpy as np

    keras.utils.set_random_seed(1234)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, activation="relu", name="hidden"),
            keras.layers.Dense(2, name="out"),
        ],
        name="mlp",
    )
    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    model.compile(optimizer=optimizer, loss="mse")
    x = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5.0) / 4.0
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.float32)
    model.train_on_batch(x, y)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    path = checkpoint.save(os.path.join(root, "keras_checkpoint", "ckpt"))

    node_paths, object_names, _ = object_names_of(tf, checkpoint)
    model_paths, _, _ = object_names_of(tf, model)
    weights = []
    for layer in model.layers:
        layer_paths, _, _ = object_names_of(tf, layer)
        for weight in layer.weights:
            weights.append(
                {
                    "name": weight.path,
                    "key": object_names[weight] + "/.ATTRIBUTES/VARIABLE_VALUE",
                    "layer_path": local_path(model_paths, layer),
                    "weight_path": local_path(layer_paths, weight),
                    "sha256": value_digest(weight.numpy(), str(weight.dtype)),
                }
            )
    assert [w["name"] for w in weights] == [w.path for w in model.weights]
    optimizer_variables = [
        {
            "name": variable.path,
            "key": object_names[variable] + "/.ATTRIBUTES/VARIABLE_VALUE",
            "path": local_path(node_paths, variable),
            "sha256": value_digest(variable.numpy(), str(variable.dtype)),
        }
        for variable in optimizer.variables
    ]
    return path, {
        "writer": "tf.train.Checkpoint(model=keras.Sequential, optimizer=keras.optimizers.Adam)"
        ".save after model.train_on_batch",
        "description": "Keras 3 Sequential (Dense 3->4 relu, Dense 4->2) and Keras 3 Adam after "
        "one step: model weights reached first through optimizer/_trainable_variables, Adam "
        "momentums/velocities under optimizer/_variables (Keras 3 has no slot variables)",
        "model_weights": weights,
        "optimizer_variables": optimizer_variables,
    }
