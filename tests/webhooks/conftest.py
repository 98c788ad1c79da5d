import pytest

from compliance.webhooks.services import endpoints
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def endpoint(db, receiver):
    """An endpoint on the test receiver wanting every event type; path /hook unless given."""

    def make(
        path: str = "/hook",
        types: str = "optout.created,suppression.added,suppression.lifted,consent.withdrawn",
        tenant=None,
    ):
        return endpoints.add_endpoint(url=receiver.url(path), event_types=types, tenant=tenant)

    return make


@pytest.fixture
def fast_retries(settings):
    settings.WEBHOOK_RETRY_DELAYS = [0, 0]
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    return settings
