"""Tests of tfckpt.legacy."""
