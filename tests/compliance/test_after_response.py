"""Garbage held until the response has been sent, and never longer."""

import gc
import weakref

from django.core.signals import request_finished, request_started

from compliance import after_response


class Garbage:
    pass


def test_what_a_request_holds_is_freed_when_its_request_finishes():
    request_started.send(sender=None)
    garbage = Garbage()
    alive = weakref.ref(garbage)
    after_response.hold(garbage)
    del garbage
    assert alive() is not None, "held while the response is being sent"
    request_finished.send(sender=None)
    assert alive() is None


def test_outside_a_request_nothing_is_held():
    garbage = Garbage()
    alive = weakref.ref(garbage)
    after_response.hold(garbage)
    del garbage
    assert alive() is None


def test_the_collector_waits_until_the_request_finishes_and_runs_again_after():
    assert gc.isenabled()
    request_started.send(sender=None)
    after_response.pause_collector()
    assert not gc.isenabled()
    request_finished.send(sender=None)
    assert gc.isenabled()


def test_a_request_that_never_finished_does_not_keep_the_collector_off():
    request_started.send(sender=None)
    after_response.pause_collector()
    request_started.send(sender=None)  # the next request on this thread
    assert gc.isenabled()
    request_finished.send(sender=None)
    assert gc.isenabled()


def test_a_collector_someone_else_turned_off_is_left_to_them():
    gc.disable()
    try:
        request_started.send(sender=None)
        after_response.pause_collector()
        request_finished.send(sender=None)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_outside_a_request_the_collector_is_left_alone():
    after_response.pause_collector()
    assert gc.isenabled()
