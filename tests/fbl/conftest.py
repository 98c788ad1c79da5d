"""Fixtures of the fbl tests."""

from tests.dns_server import dns_server  # noqa: F401 - the fixture, for tests/fbl
