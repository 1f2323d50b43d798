"""``python -m tfckpt``: the ``tfckpt`` command."""

import sys

from tfckpt.cli import main

sys.exit(main())
