"""The billing run pauses Python's cycle collector while it issues and records a batch (engine._gc_paused)."""

import gc

import pytest

from recur.billing import engine


def test_the_cycle_collector_is_paused_for_a_batch_and_back_on_after_it():
    assert gc.isenabled()
    with engine._gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError), engine._gc_paused():
        1 / 0
    assert gc.isenabled()  # also after an error
    gc.disable()
    try:
        with engine._gc_paused():
            pass
        assert not gc.isenabled()  # a caller that switched it off keeps it off
    finally:
        gc.enable()
