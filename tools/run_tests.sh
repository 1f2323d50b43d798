#!/usr/bin/env bash
# The project's test command (README, .ci/run).  From a brand-new machine it:
#   1. makes .venv-tf, installs tfckpt with its test and TensorFlow extras, lints, and runs
#      the whole suite with TensorFlow required (TFCKPT_REQUIRE_TF=1: no silent skips);
#   2. makes .venv-core without TensorFlow, proves TensorFlow is not importable there, and
#      runs the TF-free suite (corpus, fixtures, format and API tests) against it.
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
