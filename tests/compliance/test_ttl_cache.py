import pytest

from compliance import services
from compliance.ttl_cache import TtlCache


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_values_are_reused_until_their_time_is_up():
    clock, loads = Clock(), []
    cache = TtlCache(seconds=lambda: 10, clock=clock)

    def load():
        loads.append(clock.now)
        return len(loads)

    assert cache.get_or_load("k", load) == 1
    clock.now = 9.9
    assert cache.get_or_load("k", load) == 1
    clock.now = 10.1
    assert cache.get_or_load("k", load) == 2


def test_a_zero_period_disables_caching():
    cache = TtlCache(seconds=lambda: 0)
    values = iter(range(10))
    assert cache.get_or_load("k", lambda: next(values)) == 0
    assert cache.get_or_load("k", lambda: next(values)) == 1


def test_the_cache_stays_bounded():
    cache = TtlCache(seconds=lambda: 60, max_entries=3)
    for i in range(10):
        cache.get_or_load(i, lambda i=i: i)
    assert len(cache._entries) <= 3


@pytest.mark.django_db
def test_revoking_a_key_takes_effect_at_once_in_this_process(settings, make_api_key):
    settings.LOOKUP_CACHE_SECONDS = 60
    api_key, plain = make_api_key("suppression:read")
    assert services.authenticate_api_key(plain) == api_key
    services.revoke_api_key(api_key=api_key)
    assert services.authenticate_api_key(plain) is None
