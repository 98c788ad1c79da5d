"""The withdrawals a batch of opt-outs leaves in the ledger (GDPR Art. 7(3)): one per purpose, at
the time of the click, on the basis held, and never over a newer state."""

from __future__ import annotations

import datetime
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from compliance.consent import services as consent
from compliance.consent.models import ConsentRecord, ConsentState
from compliance.models import Stream
from unsubscribe import services
from unsubscribe.models import UnsubscribeRequest
from unsubscribe.tokens import Claims

pytestmark = pytest.mark.django_db


@pytest.fixture
def deferred(settings):
    settings.UNSUBSCRIBE_APPLY_INLINE = False


def grant(tenant, address, purpose, *, basis="consent", at=None):
    at = at or timezone.now() - datetime.timedelta(days=1)
    consent.record(
        tenant,
        [
            {
                "address": address,
                "purpose": purpose,
                "action": "grant",
                "basis": basis,
                "method": "api",
                "evidence": {"collected_at": at.isoformat(), "wording": "Send me news"},
            }
        ],
    )


def click(client, link):
    response = client.post(urlparse(link.url).path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200


def test_each_opt_out_withdraws_its_purposes_on_the_basis_held(
    client, mint, deferred, default_tenant
):
    news = Stream.objects.create(
        tenant=default_tenant, slug="news", name="News", kind=Stream.Kind.COMMERCIAL
    )
    grant(default_tenant, "pat@example.com", "marketing", basis="soft_opt_in")
    click(client, mint("pat@example.com"))
    services.record_opt_out(
        claims=Claims(tenant_id=default_tenant.pk, recipient="sam@example.com", stream_id=news.pk),
        evidence=services.Evidence(channel="landing_page"),
        breadth="commercial",
    )
    assert services.apply_pending_opt_outs() == 2

    pat = ConsentRecord.objects.get(address="pat@example.com", action="withdrawn")
    request = UnsubscribeRequest.objects.get(address="pat@example.com")
    assert (pat.stream.slug, pat.basis, pat.method) == ("marketing", "soft_opt_in", "unsubscribe")
    assert pat.occurred_at == request.received_at
    assert pat.cause.startswith("opt-out #") and pat.cause.endswith("(one_click, unsubscribe)")
    # All commercial mail: every commercial stream of the tenant, none of its transactional.
    sam = ConsentRecord.objects.filter(address="sam@example.com", action="withdrawn")
    assert sorted(sam.values_list("stream__slug", flat=True)) == ["marketing", "news"]
    assert set(ConsentState.objects.values_list("action", flat=True)) == {"withdrawn"}


def test_a_consent_given_after_the_click_stays_the_state(client, mint, deferred, default_tenant):
    click(client, mint("pat@example.com"))
    grant(default_tenant, "pat@example.com", "marketing", at=timezone.now())  # before the sweep
    services.apply_pending_opt_outs()

    assert ConsentRecord.objects.filter(address="pat@example.com", action="withdrawn").exists()
    state = ConsentState.objects.get()
    assert (state.action, state.record.action) == ("granted", "granted")
