"""Writing every object fixture (in this process, in a fixed order), EXPECTED.json and
README.md, checking them against fixtures/objects/ and installing them there."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from typing import Any

from ..environment import setdefault_env
from .describe import read_state_file, tf_view
from .keras_training import write_keras_checkpoint
from .manager import write_manager
from .nested import write_nested
from .numpy_state import write_tfagents_numpy_state
from .optimizer_slots import write_optimizer_slots


def probe_keras_save_weights(tmp: str) -> str | None:
    """Why Keras 3 cannot write the TF-format ``save_weights`` fixture (None if it can)."""
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    target = os.path.join(tmp, "weights_probe", "weights")
    try:
        model.save_weights(target)
    except Exception as exc:  # Keras 3: ValueError, filename must end in .weights.h5
        return (
            f"keras {keras.__version__}: model.save_weights({'weights'!r}) raised "
            f"{type(exc).__name__}: {str(exc).replace(target, '<dir>/weights')}"
        )
    return None


def generate(root: str) -> dict[str, Any]:
    """Writes every fixture under ``root``; returns EXPECTED (a JSON-able dict)."""
    setdefault_env()
    import keras
    import numpy as np
    import tensorflow as tf

    os.makedirs(root)
    checkpoints = {}
    for write in (
        write_tfagents_numpy_state,
        write_nested,
        write_keras_checkpoint,
        write_optimizer_slots,
    ):
        path, info = write(tf, root)
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        directory = os.path.dirname(path)
        info["tensors"] = tf_view(tf, path)
        info["state_file"] = read_state_file(tf, directory)
        checkpoints[rel] = info
    saved, manager = write_manager(tf, root)
    for path in saved[1:]:
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        checkpoints[rel] = {
            "writer": "tf.train.CheckpointManager.save",
            "description": f"{os.path.basename(path)} of the manager directory",
            "tensors": tf_view(tf, path),
        }
    skipped = {}
    with tempfile.TemporaryDirectory() as tmp:
        reason = probe_keras_save_weights(tmp)
    if reason is not None:
        skipped["keras_save_weights"] = reason
    else:  # pragma: no cover - Keras 2 only
        raise SystemExit("Keras can write TF-format save_weights again: add the fixture")
    return {
        "generator": "tools/make_object_fixtures.py",
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "array_digest": "sha256 of numpy.ascontiguousarray(a).tobytes() (own byte order)",
        "checkpoints": checkpoints,
        "manager": manager,
        "skipped": skipped,
    }


def write_readme(root: str, expected: dict[str, Any]) -> None:
    """Writes ``root``/README.md: the checkpoint table and what was not written."""
    lines = [
        "# Object-based checkpoint fixtures",
        "",
        "Written by TensorFlow "
        f"{expected['versions']['tensorflow']} (Keras {expected['versions']['keras']}, "
        f"numpy {expected['versions']['numpy']}) with `tools/make_object_fixtures.py`; "
        "`EXPECTED.json` records TensorFlow's view (keys, dtypes, shapes, sha256, the "
        "NumpyState arrays as TF-Agents' NumpyState restores them, Keras/optimizer variable "
        "keys, the manager state).  Do not edit by hand; regenerate with",
        "",
        "    .venv-tf/bin/python tools/make_object_fixtures.py [--check]",
        "",
        "| prefix | writer | keys |",
        "| --- | --- | --- |",
    ]
    for prefix, info in expected["checkpoints"].items():
        lines.append(f"| `{prefix}` | {info['writer']} | {len(info['tensors'])} |")
    lines += ["", "Not written:", ""]
    for name, reason in expected["skipped"].items():
        lines.append(f"* `{name}/`: {reason}")
    with open(os.path.join(root, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def dump(expected: dict[str, Any]) -> str:
    """EXPECTED.json's text."""
    return json.dumps(expected, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def file_digests(root: str) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by relative path."""
    out = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def write_all(root: str) -> dict[str, Any]:
    """Every fixture, EXPECTED.json and README.md under ``root``; returns EXPECTED."""
    expected = generate(root)
    with open(os.path.join(root, "EXPECTED.json"), "w", encoding="utf-8") as f:
        f.write(dump(expected))
    write_readme(root, expected)
    return expected


def check(out: str, root: str, expected: dict[str, Any]) -> bool:
    """Whether ``expected`` is ``out``/EXPECTED.json; prints the checkpoints whose view
    differs and every file whose bytes differ (those alone do not fail)."""
    with open(os.path.join(out, "EXPECTED.json"), encoding="utf-8") as f:
        old = json.load(f)
    new = json.loads(dump(expected))
    same = old == new
    for key in sorted(set(old["checkpoints"]) | set(new["checkpoints"])):
        if old["checkpoints"].get(key) != new["checkpoints"].get(key):
            print(f"  {key}: TensorFlow's view differs")
    old_files, new_files = file_digests(out), file_digests(root)
    for name in sorted(set(old_files) | set(new_files)):
        if old_files.get(name) != new_files.get(name):
            print(f"  file {name} differs (bytes)")
    print(f"fixtures/objects is {'up to date' if same else 'STALE'}")
    return same


def install(root: str, out: str) -> None:
    """Replaces ``out`` with ``root``."""
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(root, out)
