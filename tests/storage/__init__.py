"""Tests of the storage layer (tfckpt.storage)."""
