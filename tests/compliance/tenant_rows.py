"""One row of every model the admin limits by tenant, for a given tenant (or none: shared), so
the tests of tenant limits can look for another tenant's rows on every admin page."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import itertools

from django.conf import settings
from django.db.models import Model
from django.utils import timezone

from compliance import services as core
from compliance.consent import services as consent
from compliance.consent.models import (
    ConsentRecord,
    ConsentState,
    ConsentText,
    PendingConfirmation,
)
from compliance.domains.models import DomainCheck, SendingDomain
from compliance.dsr import services as dsr
from compliance.dsr.models import DataSubjectRequest
from compliance.models import ApiKey, OptOutRequest, SendingIdentity, Stream, Tenant, Topic
from compliance.webhooks.models import (
    DeadLetter,
    DownstreamEndpoint,
    WebhookDelivery,
    WebhookEvent,
)
from fbl.models import DailyCount, DeliveryBatch, InboundMessage, RateAlert, RelayEvent
from suppression import addresses
from suppression import services as suppression
from suppression.models import ImportJob, Origin, Suppression
from suppression.scopes import parse_scope
from unsubscribe.models import UnsubscribeRequest

_serial = itertools.count(1)


def _hash(address: str) -> bytes:
    return addresses.address_hash(address, settings.ADDRESS_HASH_KEY.encode())


def rows_of(tenant: Tenant) -> dict[type[Model], Model]:
    """A row of each tenant-scoped model, of `tenant` (the tenant row itself included). Its
    addresses carry the tenant's slug, so a page showing them can be told."""
    n = next(_serial)
    slug = tenant.slug
    address = f"{slug}-{n}@example.com"
    now = timezone.now()
    stream = Stream.objects.filter(tenant=tenant, kind=Stream.Kind.COMMERCIAL).first()
    topic = Topic.objects.create(stream=stream, slug=f"news-{n}", name=f"{slug} news {n}")
    found: dict[type[Model], Model] = {Tenant: tenant, Stream: stream, Topic: topic}

    found[ApiKey], _ = core.issue_api_key(
        name=f"{slug}-key-{n}", permissions=["dsr:read"], tenant=tenant
    )
    found[SendingIdentity] = SendingIdentity.objects.create(
        pattern=f"{slug}-{n}.example", tenant=tenant, stream=stream
    )
    found[Suppression] = suppression.suppress(
        target=parse_scope(tenant, None, reason="unsubscribe"),
        address=address,
        reason="unsubscribe",
        origin=Origin.API,
        evidence_note=f"evidence of {slug}",
    ).suppression
    found[OptOutRequest] = OptOutRequest.objects.filter(tenant=tenant).latest("id")
    found[ImportJob] = ImportJob.objects.create(
        tenant=tenant, format_name="generic", content=b"", created_by_label=f"{slug} import"
    )

    record = consent.record(
        tenant,
        [
            {
                "address": address,
                "purpose": stream.slug,
                "action": "grant",
                "basis": "consent",
                "method": "web_form",
                "evidence": {
                    "ip": "192.0.2.10",
                    "collected_at": now.isoformat(),
                    "user_agent": "Mozilla/5.0",
                    "page_url": f"https://{slug}.example/signup",
                    "form_id": "footer",
                    "wording": f"{slug} newsletter {n}",
                    "privacy_notice_version": "1",
                },
            }
        ],
    )[0]
    found[ConsentRecord] = record
    found[ConsentState] = ConsentState.objects.filter(tenant=tenant).latest("id")
    found[ConsentText] = ConsentText.objects.filter(tenant=tenant).latest("id")
    found[PendingConfirmation] = PendingConfirmation.objects.create(
        token_hash=hashlib.sha256(f"{slug}-{n}".encode()).hexdigest(),
        tenant=tenant,
        stream=stream,
        address=address,
        address_hash=_hash(address),
        basis="consent",
        requested_at=now,
        expires_at=now + datetime.timedelta(days=7),
    )

    endpoint = DownstreamEndpoint.objects.create(
        url=f"https://hooks.{slug}.example/{n}",
        secret="whsec_test",
        event_types=["optout.created"],
        tenant=tenant,
    )
    found[DownstreamEndpoint] = endpoint
    deliveries = []
    for status in (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.DEAD):
        event = WebhookEvent.objects.create(
            public_id=f"msg_{slug}_{n}_{status}",
            event_type="optout.created",
            occurred_at=now,
            tenant=tenant,
            address_hash=_hash(address),
            body="{}",
        )
        deliveries.append(
            WebhookDelivery.objects.create(
                endpoint=endpoint,
                event=event,
                order_key=_hash(address),
                status=status,
                next_attempt_at=now,
            )
        )
    found[WebhookDelivery] = deliveries[0]
    found[DeadLetter] = DeadLetter.objects.get(pk=deliveries[1].pk)

    found[UnsubscribeRequest] = UnsubscribeRequest.objects.create(
        received_at=now,
        channel=UnsubscribeRequest.Channel.ONE_CLICK,
        tenant=tenant,
        stream=stream,
        address=address,
        address_hash=_hash(address),
        scope_label=f"{slug}/{stream.slug}",
    )
    today = timezone.localdate()
    found[DailyCount] = DailyCount.objects.create(
        day=today, tenant=tenant, stream=stream, provider=f"{slug}-{n}.example", deliveries=5
    )
    found[RateAlert] = RateAlert.objects.create(
        day=today,
        grouping=RateAlert.Grouping.TENANT,
        tenant=tenant,
        level=RateAlert.Level.ALERT,
        rate="0.5",
        deliveries=2,
        complaints=1,
        provider=f"{slug}-{n}.example",
    )
    found[DeliveryBatch] = DeliveryBatch.objects.create(
        tenant=tenant,
        batch_id=f"{slug}-batch-{n}",
        day=today,
        stream=stream,
        deliveries=5,
        digest="0" * 64,
    )
    raw = f"From: {slug}@example.com\r\nSubject: {slug}\r\n\r\nbody".encode()
    found[InboundMessage] = InboundMessage.objects.create(
        source=InboundMessage.Source.HTTP,
        tenant=tenant,
        operator_level=False,
        raw_gzip=gzip.compress(raw),
        size=len(raw),
        sha256=hashlib.sha256(raw + str(n).encode()).hexdigest(),
        envelope_recipient=f"{slug}-fbl@example.com",
    )
    found[RelayEvent] = RelayEvent.objects.create(
        source="kumomta", source_id=f"{slug}-{n}", tenant=tenant, kind="bounce"
    )
    found[DataSubjectRequest] = dsr.open_request(address=address, kind="access", tenant=tenant)
    found[SendingDomain] = SendingDomain.objects.create(
        domain=f"mail-{n}.{slug}.example", dkim_selectors=["s1"], tenant=tenant
    )
    found[DomainCheck] = DomainCheck.objects.create(domain=found[SendingDomain], verdict="pass")
    return found
