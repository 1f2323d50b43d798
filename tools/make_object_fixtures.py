#!/usr/bin/env python3
"""Write the object-based checkpoint fixtures in fixtures/objects/ with real TensorFlow.

Run with a Python that has TensorFlow 2.21 (and Keras 3) installed, e.g.

    .venv-tf/bin/python tools/make_object_fixtures.py           # rewrite fixtures/objects/
    .venv-tf/bin/python tools/make_object_fixtures.py --check   # regenerate into a temp
                                                                # dir and compare

Fixtures (every checkpoint is written by TensorFlow itself, in one process, in this order;
the writers are in tools/fixturegen/objects/):

* ``tfagents_numpy_state/ckpt-1``: ``tf.train.Checkpoint(numpy_arrays=NumpyState()).save()``
  with the TF-Agents NumpyState (tools/tf_numpy_state.py: each array attribute is a
  ``tf.train.experimental.PythonState`` whose ``py_state`` is ``numpy.save`` bytes written
  with ``allow_pickle=False``); arrays of many dtypes incl. 0-d, Fortran-ordered, big-endian,
  structured, unicode, bytes, datetime64 and a NumPy scalar.
* ``nested/ckpt-1``: ``tf.train.Checkpoint`` with dicts (keys with ``/`` and ``.``), lists,
  tuples of ``tf.Variable`` (several dtypes incl. bfloat16 and string), an empty list, a
  variable shared by two paths and a nested ``tf.train.Checkpoint``.
* ``keras_checkpoint/ckpt-1``: ``tf.train.Checkpoint(model=<Keras 3 Sequential>,
  optimizer=<Keras 3 Adam>)`` after one training step.
* ``optimizer_slots/ckpt-1``: a ``tf.Module`` and ``tf.compat.v1.train.AdamOptimizer``
  after one step: slot variables in the object graph (``.OPTIMIZER_SLOT`` keys).
* ``manager/``: ``tf.train.CheckpointManager(max_to_keep=2)`` after 3 saves (``ckpt-1``
  deleted), with its state file; ``time.time`` is replaced by a fixed clock so the
  timestamps are reproducible.
* ``keras_save_weights/`` is NOT written: Keras 3 ``Model.save_weights`` only writes
  ``.weights.h5`` files (the refusal is recorded under ``skipped`` in EXPECTED.json).

``EXPECTED.json`` records TensorFlow's view of each checkpoint: every key's dtype, shape and
sha256 (``tests/manifest.py`` ``value_digest`` over what ``tf.train.load_checkpoint``
returns), the state files, and per fixture what the Python objects were (the NumpyState
arrays as TensorFlow's NumpyState restored them, the nested structure, which key holds
which Keras weight / optimizer variable / slot, and the object paths TF's
``ObjectGraphView`` reports).  Array digests: ``array_digest`` in
tools/fixturegen/objects/describe.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from fixturegen.objects.generate import check, install, write_all

DEFAULT_OUT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "objects"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temp dir and compare with the existing fixtures",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    tmp_parent = tempfile.mkdtemp(prefix="tfckpt_object_fixtures_")
    try:
        root = os.path.join(tmp_parent, "objects")
        expected = write_all(root)
        if args.check:
            return 0 if check(out, root, expected) else 1
        install(root, out)
        total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(out) for n in ns)
        print(f"wrote {out}: {len(expected['checkpoints'])} checkpoints, {total} bytes")
        return 0
    finally:
        shutil.rmtree(tmp_parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
