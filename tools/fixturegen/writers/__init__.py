"""Fixture writers, one module per family; each writer runs in a fresh subprocess whose
working directory is its fixture directory (relative prefixes, so no temp paths leak in)."""
