"""The ``tfckpt`` command (console script and ``python -m tfckpt``).

Exit codes: 0 success (for ``verify`` and ``diff``: clean / equal); 1 the checkpoint is
missing, unreadable or bad, or (``diff``) the two differ; 2 a usage error (bad options, an
unknown tensor name, an output that exists without ``--force``).  See
:mod:`tfckpt.cli.main`.
"""

from tfckpt.cli.main import EXIT_BAD, EXIT_OK, EXIT_USAGE, build_parser, main

__all__ = ["EXIT_BAD", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]
