"""Garbage held until the response has been sent, and never longer."""

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
