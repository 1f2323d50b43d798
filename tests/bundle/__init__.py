"""Tests of tfckpt.bundle."""
