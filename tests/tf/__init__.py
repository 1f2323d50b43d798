"""Interoperability tests against real TensorFlow (skipped without it, see tests/conftest.py)."""
