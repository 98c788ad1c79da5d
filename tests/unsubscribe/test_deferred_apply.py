"""With a broker, a one-click costs the web tier one durable INSERT; a task applies it."""

import datetime
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from suppression.models import Suppression
from unsubscribe import services
from unsubscribe.models import UnsubscribeRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def deferred(settings):
    settings.UNSUBSCRIBE_APPLY_INLINE = False


def test_the_request_is_recorded_then_applied_by_a_task_after_commit(
    client, mint, deferred, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(urlparse(mint().url).path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    request = UnsubscribeRequest.objects.get()
    assert request.applied_at is None  # durable, not yet applied
    assert Suppression.objects.count() == 0
    assert len(queued) == 1
    queued[0]()  # the worker runs the task (eagerly here)
    request.refresh_from_db()
    assert request.applied_at is not None
    assert request.scope_label == "stream:marketing"
    assert Suppression.objects.get().evidence == request


def test_the_sweep_applies_requests_whose_task_was_lost(client, mint, deferred):
    client.post(urlparse(mint().url).path, {"List-Unsubscribe": "One-Click"})
    request = UnsubscribeRequest.objects.get()
    assert services.apply_pending() == 0  # too recent: its task may still be on its way
    UnsubscribeRequest.objects.filter(pk=request.pk).update(
        received_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    assert services.apply_pending() == 1
    assert Suppression.objects.count() == 1
    assert services.apply_pending() == 0


def test_applying_twice_changes_nothing(client, mint, deferred):
    client.post(urlparse(mint().url).path, {"List-Unsubscribe": "One-Click"})
    request = UnsubscribeRequest.objects.get()
    services.apply(request)
    services.apply(request)
    assert Suppression.objects.get().events.count() == 1
