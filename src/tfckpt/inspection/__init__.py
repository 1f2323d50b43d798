"""What the ``tfckpt`` command, the converters and the testing helpers share, a tier below
the public API: opening any supported file as named arrays (``sources``), choosing and
renaming names (``selection``), comparing (``compare``), verifying (``verify``), describing
(``inventory``, ``graph_view``), sizes (``units``) and optional packages (``extras``)."""
