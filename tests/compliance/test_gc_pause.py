"""The collector held off during a batch is always on again afterwards."""

import gc

import pytest

from compliance.gc_pause import collector_paused


def test_the_collector_is_off_inside_and_on_again_after_an_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a failed batch")
    assert gc.isenabled()


def test_a_collector_someone_else_turned_off_is_left_to_them():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
