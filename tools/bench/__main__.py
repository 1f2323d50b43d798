"""``python tools/bench [options]``: runs the benchmark (see the package docstring)."""

import os
import sys

# Import the package as ``bench`` from tools/, not its modules from tools/bench/ (where a
# module name could shadow an installed library).
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
