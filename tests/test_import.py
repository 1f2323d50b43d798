"""``import tfckpt`` never imports TensorFlow, and reading and writing never do either."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import FIXTURES, REPO

SCRIPT = """
import sys, tempfile, os
import numpy as np
import tfckpt
assert "tensorflow" not in sys.modules, "import tfckpt imported tensorflow"
d = tempfile.mkdtemp()
tfckpt.save_tensors(os.path.join(d, "m"), {"x": np.arange(3, dtype=np.float32), "s": b"x"})
r = tfckpt.load_checkpoint(os.path.join(d, "m"))
assert r.get_tensor("s") == b"x"
r.get_variable_to_dtype_map()
for k in r.keys():
    r.get_tensor(k)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
assert not bad, bad
print("ok")
"""


def test_tfckpt_never_imports_tensorflow():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_src_has_no_tensorflow_import():
    offenders = []
    for path in (REPO / "src").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("import tensorflow", "from tensorflow")):
                offenders.append(f"{path}: {stripped}")
    assert not offenders


def test_fixtures_present():
    assert (FIXTURES / "MANIFEST.json").is_file(), "run tools/make_fixtures.py"
