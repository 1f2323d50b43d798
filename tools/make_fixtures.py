#!/usr/bin/env python3
"""Write the TensorFlow checkpoint fixtures in fixtures/ with real TensorFlow.

Run with a Python that has TensorFlow 2.21 installed, e.g.

    TF_CPP_MIN_LOG_LEVEL=3 .venv-tf/bin/python tools/make_fixtures.py           # rewrite fixtures/
    TF_CPP_MIN_LOG_LEVEL=3 .venv-tf/bin/python tools/make_fixtures.py --check   # regenerate into
                                                                  # a temp dir and compare

Every fixture is written by TensorFlow itself (each in a fresh subprocess, so that name
counters, device configuration and graph/eager state never leak between fixtures), then
read back with ``tf.train.load_checkpoint``.  ``fixtures/MANIFEST.json`` records
TensorFlow's own view of every fixture, using exactly the schema and value-description
rules of the corpus manifest (fixtures/corpus/make_manifest.py: ``describe_value`` and
``describe_checkpoint``; the SSTable walker and those helpers are copied in
tools/fixturegen).  Per entry, ``source`` is replaced by ``description`` and ``writer``.
One tensor-level addition: where ``tf.train.load_checkpoint(...).get_tensor`` fails
(``tf_error``), ``tf_restore_v2`` records what TF's ``RestoreV2`` op returns for the same
name (``sha256``/``sample`` or its own ``tf_error``).

``fixtures/README.md`` is generated too; its notes on what TensorFlow cannot save come
from probes run during generation.  fixtures/objects/ (tools/make_object_fixtures.py) and
fixtures/corpus/ are left alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from fixturegen.environment import setdefault_env
from fixturegen.generate import check, generate, install, write_fixture
from fixturegen.probes import probe, run_probes
from fixturegen.readme import dir_size, write_readme

SCRIPT = os.path.abspath(__file__)
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.dirname(SCRIPT)), "fixtures")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temp dir and compare TF's view with the existing MANIFEST.json",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help="fixtures directory")
    parser.add_argument("--_write", help=argparse.SUPPRESS)  # subprocess: write one fixture
    parser.add_argument("--_root", help=argparse.SUPPRESS)
    parser.add_argument("--_probe", help=argparse.SUPPRESS)  # subprocess: run one probe
    args = parser.parse_args(argv)
    setdefault_env()

    if args._write:
        write_fixture(args._write, args._root)
        return 0
    if args._probe:
        probe(args._probe, args._root)
        return 0

    out = os.path.abspath(args.out)
    tmp_parent = tempfile.mkdtemp(prefix="tfckpt_fixtures_")
    try:
        root = os.path.join(tmp_parent, "fixtures")
        print(f"generating into {root}", flush=True)
        manifest, observed = generate(root, SCRIPT)
        if args.check:
            return 0 if check(out, manifest) else 1
        probe_dir = os.path.join(tmp_parent, "probes")
        os.makedirs(probe_dir)
        probes = run_probes(SCRIPT, probe_dir)
        write_readme(root, manifest, probes, observed)
        install(root, out)
        print(f"wrote {out}: {len(manifest)} checkpoints, {dir_size(out)} bytes")
        return 0
    finally:
        shutil.rmtree(tmp_parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
