"""Tests of tfckpt.objects."""
