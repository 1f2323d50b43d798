"""Tests of tfckpt.table."""
