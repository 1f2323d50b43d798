#!/usr/bin/env bash
# The project's test command (README, .ci/run).  From a brand-new machine it:
#   1. makes .venv-tf, installs tfckpt with its test and TensorFlow extras, lints, and runs
#      the whole suite with TensorFlow required (TFCKPT_REQUIRE_TF=1: no silent skips);
#   2. makes .venv-core without TensorFlow, proves TensorFlow is not importable there, and
#      runs the TF-free suite (corpus, fixtures, format and API tests) against it;
#   3. builds a wheel and installs it alone into a fresh venv (no extras, outside the source
#      tree), runs its console script and checks it carries py.typed and the protos;
#   4. builds the API reference and guides (docs/, mkdocs.yml) with warnings as errors.
# pytest's exit code 5 ("no tests collected") counts as a failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"

run_pytest() {  # venv, extra args...
  local venv="$1"; shift
  set +e
  "$venv/bin/python" -m pytest "$@"
  local rc=$?
  set -e
  if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
  if [ "$rc" -ne 0 ]; then exit "$rc"; fi
}

echo "== [1/2] with TensorFlow: .venv-tf"
"$PYTHON" -m venv .venv-tf
.venv-tf/bin/python -m pip install -q --upgrade pip
.venv-tf/bin/python -m pip install -q ".[test,tf,safetensors,progress]"
.venv-tf/bin/python -m ruff check src tests tools
.venv-tf/bin/python -m mypy
TFCKPT_REQUIRE_TF=1 run_pytest .venv-tf -p no:cacheprovider

echo "== [2/2] without TensorFlow: .venv-core"
"$PYTHON" -m venv .venv-core
.venv-core/bin/python -m pip install -q --upgrade pip
.venv-core/bin/python -m pip install -q ".[test,safetensors]"
if .venv-core/bin/python -c "import tensorflow" 2>/dev/null; then
  echo "TensorFlow is importable in .venv-core: the TF-free run would prove nothing" >&2
  exit 1
fi
echo "tensorflow is not importable in .venv-core (as intended)"
TFCKPT_FORBID_TF=1 run_pytest .venv-core -p no:cacheprovider

echo "== [3/4] the wheel, installed alone: .venv-wheel"
WHEEL_DIR="$(mktemp -d)"
trap 'rm -rf "$WHEEL_DIR"' EXIT
.venv-core/bin/python -m pip wheel -q --no-deps -w "$WHEEL_DIR" .
"$PYTHON" -m venv --clear .venv-wheel
.venv-wheel/bin/python -m pip install -q "$WHEEL_DIR"/tfckpt-*.whl
# From another directory, so that nothing is imported from the source tree.
(
  cd "$WHEEL_DIR"
  "$ROOT/.venv-wheel/bin/tfckpt" --help >/dev/null
  "$ROOT/.venv-wheel/bin/tfckpt" inspect "$ROOT/fixtures/dtypes/ckpt" >/dev/null
  "$ROOT/.venv-wheel/bin/python" - <<'PY'
import pathlib
import sys

import tfckpt
from tfckpt.proto import tensor_bundle_pb2  # noqa: F401  (the generated protos import)

package = pathlib.Path(tfckpt.__file__).parent
assert pathlib.Path(sys.prefix) in package.parents, f"tfckpt imported from {package}"
missing = [name for name in ("py.typed",) if not (package / name).is_file()]
protos = sorted(p.name for p in (package / "proto").glob("*_pb2.py"))
stubs = sorted(p.name for p in (package / "proto").glob("*_pb2.pyi"))
assert protos and len(stubs) == len(protos), (protos, stubs)
assert not missing, f"the wheel lacks {missing}"
print(f"wheel ok: {package} ({len(protos)} protos with stubs, py.typed)")
PY
)

echo "== [4/4] docs: mkdocs build --strict in .venv-core"
.venv-core/bin/python -m pip install -q ".[docs]"
# (no -q: it drops the warnings that --strict counts, and the build would pass)
.venv-core/bin/python -m mkdocs build --strict -d "$WHEEL_DIR/site"
echo "docs built"
