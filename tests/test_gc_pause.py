"""tfckpt.gc_pause: the collector is suspended inside the block and left as it was found."""

from __future__ import annotations

import gc

import pytest

import tfckpt
from tfckpt import gc_pause


@pytest.fixture
def restore_gc():
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_suspends_and_restores(restore_gc):
    gc.enable()
    with gc_pause.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled(restore_gc):
    gc.disable()
    with gc_pause.paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_restored_when_the_block_raises(restore_gc):
    gc.enable()
    with pytest.raises(KeyError), gc_pause.paused():
        raise KeyError("x")
    assert gc.isenabled()


def test_reading_shapes_leaves_the_collector_enabled(tmp_path, restore_gc):
    gc.enable()
    tfckpt.save_tensors(tmp_path / "m", {f"t{i}": [float(i)] * (i % 3) for i in range(50)})
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    assert len(reader.get_variable_to_shape_map()) == 50
    assert reader.get_tensor("t4").tolist() == [4.0]
    assert len(tfckpt.load_tensors(tmp_path / "m")) == 50
    assert gc.isenabled()
