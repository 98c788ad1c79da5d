"""With a broker, a one-click costs the web tier one durable INSERT; a worker's sweep applies it."""

from urllib.parse import urlparse

import pytest

from suppression.models import Suppression
from unsubscribe import services
from unsubscribe.models import UnsubscribeRequest
from unsubscribe.tasks import apply_pending_requests

pytestmark = pytest.mark.django_db


@pytest.fixture
def deferred(settings):
    settings.UNSUBSCRIBE_APPLY_INLINE = False


def test_the_request_is_recorded_then_applied_by_the_sweep(client, mint, deferred):
    response = client.post(urlparse(mint().url).path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    request = UnsubscribeRequest.objects.get()
    assert request.applied_at is None  # durable, not yet applied
    assert Suppression.objects.count() == 0

    assert apply_pending_requests.delay().get() == 1  # the worker's periodic task
    request.refresh_from_db()
    assert request.applied_at is not None
    assert request.scope_label == "stream:marketing"
    assert Suppression.objects.get().evidence == request
    assert services.apply_pending_opt_outs() == 0


def test_the_sweep_applies_oldest_first_within_its_limit(client, mint, deferred):
    for n in range(3):
        client.post(urlparse(mint(f"r{n}@example.com").url).path, {"List-Unsubscribe": "One-Click"})
    assert services.apply_pending_opt_outs(limit=2) == 2
    assert set(Suppression.objects.values_list("address", flat=True)) == {
        "r0@example.com",
        "r1@example.com",
    }
    assert services.apply_pending_opt_outs() == 1


def test_applying_twice_changes_nothing(client, mint, deferred):
    client.post(urlparse(mint().url).path, {"List-Unsubscribe": "One-Click"})
    request = UnsubscribeRequest.objects.get()
    services.apply_opt_out(request)
    services.apply_opt_out(request)
    assert Suppression.objects.get().events.count() == 1


def test_the_sweep_is_scheduled_every_few_seconds(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["apply-pending-unsubscribes"]
    assert entry["task"] == "unsubscribe.apply_pending"
    assert entry["schedule"] <= 5


def test_a_request_whose_list_was_deleted_meanwhile_does_not_stall_the_sweep(
    client, mint, deferred, default_tenant
):
    from compliance.models import Stream

    gone = Stream.objects.create(
        tenant=default_tenant, slug="gone", name="Gone", kind=Stream.Kind.COMMERCIAL
    )
    client.post(urlparse(mint(stream="gone").url).path, {"List-Unsubscribe": "One-Click"})
    client.post(urlparse(mint("kept@example.com").url).path, {"List-Unsubscribe": "One-Click"})
    UnsubscribeRequest.objects.filter(stream=gone).update(stream_id=999_999)  # as if deleted
    assert services.apply_pending_opt_outs() == 2
    assert UnsubscribeRequest.objects.filter(applied_at__isnull=True).count() == 0
    assert list(Suppression.objects.values_list("address", flat=True)) == ["kept@example.com"]
