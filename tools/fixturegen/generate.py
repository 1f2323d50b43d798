"""Writing the fixtures into a scratch directory, checking them against fixtures/, and
installing them there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

from .catalogue import BY_NAME, FIXTURES, NEEDS_TWO_CPUS
from .environment import child_env
from .manifest import Entry, build_manifest, sanity_check, tf_view
from .tf_util import two_cpus

# Directories of fixtures/ that other generators own: installing never touches them.
OTHER_GENERATORS = ("objects", "corpus")  # tools/make_object_fixtures.py, the corpus copy


def write_fixture(name: str, root: str) -> None:
    """The writer subprocess: writes fixture ``name`` into ``root``/``name``."""
    if name in NEEDS_TWO_CPUS:
        two_cpus()
    directory = os.path.join(root, name)
    os.makedirs(directory, exist_ok=True)
    os.chdir(directory)
    BY_NAME[name].write()


def generate(root: str, entry_script: str) -> tuple[list[Entry], dict[str, Any]]:
    """Writes every fixture into ``root`` (which must not exist yet), each in a fresh
    ``entry_script --_write`` subprocess, then MANIFEST.json.  Returns the manifest and the
    facts the writers reported (``fixture.key`` -> value)."""
    os.makedirs(root)
    observed: dict[str, Any] = {}
    for fixture in FIXTURES:
        name = fixture.name
        proc = subprocess.run(
            [sys.executable, entry_script, "--_write", name, "--_root", root],
            capture_output=True,
            text=True,
            env=child_env(),
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"writing fixture {name!r} failed")
        for line in proc.stdout.splitlines():
            if line.startswith("@@OBS "):
                key, value = json.loads(line[len("@@OBS ") :])
                observed[f"{name}.{key}"] = value
        print(f"  wrote {name}", flush=True)
    manifest = build_manifest(root)
    sanity_check(manifest)
    text = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=True) + "\n"
    with open(os.path.join(root, "MANIFEST.json"), "w", encoding="utf-8") as f:
        f.write(text)
    return manifest, observed


def check(out: str, manifest: list[Entry]) -> bool:
    """Whether TF's view of the new ``manifest`` is that of ``out``/MANIFEST.json; prints
    every entry and key that differs (file-level differences do not fail)."""
    with open(os.path.join(out, "MANIFEST.json"), encoding="utf-8") as f:
        old = json.load(f)
    new = json.loads(json.dumps(manifest))
    same = tf_view(old) == tf_view(new)
    old_by = {e["path"]: e for e in old}
    for e in new:
        o = old_by.get(e["path"])
        if o is None:
            print(f"  new entry: {e['path']}")
            continue
        for key in sorted(set(o) | set(e)):
            if o.get(key) != e.get(key):
                print(f"  {e['path']}: {key} differs")
    for p in sorted(set(old_by) - {e["path"] for e in new}):
        print(f"  entry gone: {p}")
    print(f"TF view of fixtures is {'up to date' if same else 'STALE'}")
    return same


def install(root: str, out: str) -> None:
    """Replaces ``out``'s fixtures with those in ``root``, keeping OTHER_GENERATORS'."""
    if os.path.exists(out):
        for name in os.listdir(out):
            if name in OTHER_GENERATORS:
                continue
            path = os.path.join(out, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    shutil.copytree(root, out, dirs_exist_ok=True)
