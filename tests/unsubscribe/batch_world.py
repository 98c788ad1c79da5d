"""A varied set of recorded opt-outs and the entries, consents and endpoints they meet, for the
tests of applying them in batches; and every row they leave, in a form two runs can compare.

`build_lists` makes tenants, streams, topics and endpoints (ids that stay the same across runs
rolled back in between); `build_requests` the entries, consents and pending requests (their
labels are kept in the request's `campaign`); `snapshot` reads every resulting row with ids
swapped for what the row stands for and the moments of the run for "now".
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

from django.utils import timezone

from compliance.consent import services as consent_services
from compliance.consent.models import ConsentRecord, ConsentState
from compliance.models import OptOutRequest, Stream, Tenant, Topic
from compliance.webhooks.models import WebhookDelivery, WebhookEvent
from compliance.webhooks.services import endpoints
from suppression import services as suppression_services
from suppression.models import Suppression, SuppressionEvent
from suppression.scopes import parse_scope
from unsubscribe import services
from unsubscribe.models import UnsubscribeRequest
from unsubscribe.tokens import Claims

UTC = datetime.UTC
# A Friday (in the week of Veterans Day, a federal holiday).
START = datetime.datetime(2026, 11, 6, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Lists:
    default: Tenant
    ny: Tenant
    marketing: Stream
    news: Stream
    old: Stream
    offers: Topic
    retired: Topic
    ny_marketing: Stream


def build_lists(default_tenant: Tenant) -> Lists:
    marketing = default_tenant.streams.get(slug="marketing")
    news = Stream.objects.create(
        tenant=default_tenant, slug="news", name="News", kind=Stream.Kind.COMMERCIAL
    )
    old = Stream.objects.create(
        tenant=default_tenant, slug="old", name="Old", kind=Stream.Kind.COMMERCIAL
    )
    ny = Tenant.objects.create(slug="ny", name="NY", time_zone="America/New_York")
    ny_marketing = Stream.objects.create(
        tenant=ny, slug="marketing", name="Marketing", kind=Stream.Kind.COMMERCIAL
    )
    Stream.objects.create(tenant=ny, slug="promo", name="Promo", kind=Stream.Kind.COMMERCIAL)
    Stream.objects.create(
        tenant=ny, slug="receipts", name="Receipts", kind=Stream.Kind.TRANSACTIONAL
    )
    # The default tenant's opt-outs wait for an endpoint; the shared one wants only withdrawals,
    # so the New York tenant's are propagated when applied.
    endpoints.add_endpoint(
        url="http://127.0.0.1:9/tenant",
        event_types="optout.created,suppression.added,consent.withdrawn",
        tenant=default_tenant,
    )
    endpoints.add_endpoint(url="http://127.0.0.1:9/shared", event_types="consent.withdrawn")
    return Lists(
        default=default_tenant,
        ny=ny,
        marketing=marketing,
        news=news,
        old=old,
        offers=Topic.objects.create(stream=marketing, slug="offers", name="Offers"),
        retired=Topic.objects.create(stream=marketing, slug="retired", name="Retired"),
        ny_marketing=ny_marketing,
    )


def record(
    label: str,
    address: str,
    stream: Stream,
    *,
    minutes: int,
    topic: Topic | None = None,
    breadth: str = "link",
    channel: str = "one_click",
) -> UnsubscribeRequest:
    """A pending request, as a one-click with apply deferred records it."""
    return services.record_opt_out(
        claims=Claims(
            tenant_id=stream.tenant_id,
            recipient=address,
            stream_id=stream.pk,
            topic_id=topic.pk if topic else None,
            campaign=label,
        ),
        evidence=services.Evidence(
            channel=channel,
            ip="192.0.2.7",
            received_at=START + datetime.timedelta(minutes=minutes),
        ),
        breadth=breadth,
        apply_now=False,
    )


def _entry(tenant, address, reason, scope, **kwargs) -> Suppression:
    return suppression_services.suppress(
        target=parse_scope(tenant, scope, reason=reason),
        address=address,
        reason=reason,
        origin=kwargs.pop("origin", "api"),
        created_at=START - datetime.timedelta(days=30),
        **kwargs,
    ).suppression


def build_requests(lists: Lists) -> None:
    """Entries and consents already there, then the pending requests, in the order received."""
    d = lists.default
    lifted = _entry(d, "lifted@example.com", "unsubscribe", "stream:marketing")
    suppression_services.lift(suppression=lifted, note="resubscribed")
    imported = _entry(d, "imported@example.com", "unsubscribe", "commercial", origin="import")
    suppression_services.lift(suppression=imported, note="wrongly imported")
    forgotten = _entry(d, "forgotten@example.com", "unsubscribe", "stream:marketing")
    suppression_services.lift(suppression=forgotten, note="resubscribed")
    Suppression.objects.filter(pk=forgotten.pk).update(address=None)
    _entry(d, "complained@example.com", "complaint", "commercial")
    _entry(d, "manual@example.com", "manual", "stream:marketing")
    _entry(d, "listed@example.com", "unsubscribe", "stream:marketing")
    _entry(
        d,
        "expired@example.com",
        "soft_bounce",
        "commercial",
        expires_at=START - datetime.timedelta(days=1),
    )
    _entry(
        d,
        "temporary@example.com",
        "unsubscribe",
        "stream:marketing",
        expires_at=datetime.datetime(2099, 1, 1, tzinfo=UTC),
    )
    consent_services.record(
        d,
        [
            {
                "address": address,
                "purpose": purpose,
                "action": "grant",
                "basis": "soft_opt_in",
                "method": "api",
                "evidence": {"collected_at": "2026-10-01T10:00:00Z", "wording": "Yes please"},
            }
            for address, purpose in [
                ("consented@example.com", "marketing"),
                ("both@example.com", "news"),
                ("topical@example.com", "marketing/offers"),
            ]
        ],
    )

    m, n = lists.marketing, lists.news
    record("new", "new@example.com", m, minutes=0)
    record("topic", "topical@example.com", m, topic=lists.offers, minutes=1)
    record("ny-all", "everything@example.com", lists.ny_marketing, breadth="commercial", minutes=2)
    record("readd", "lifted@example.com", m, minutes=3, channel="landing_page")
    record("complaint-1", "complained@example.com", n, breadth="commercial", minutes=4)
    record("manual-1", "manual@example.com", m, minutes=5)
    record("listed", "listed@example.com", m, minutes=6)
    record("expired", "expired@example.com", n, breadth="commercial", minutes=7)
    record("temporary", "temporary@example.com", m, minutes=8)
    record("twice-1", "twice@example.com", m, minutes=9)
    record("both-stream", "both@example.com", n, minutes=10)
    record("consented", "consented@example.com", m, minutes=11, channel="preference_centre")
    record("gone-stream", "gone@example.com", lists.old, minutes=12)
    record("gone-topic", "gone-topic@example.com", m, topic=lists.retired, minutes=13)
    record("imported", "imported@example.com", m, breadth="commercial", minutes=14)
    record("forgotten", "forgotten@example.com", m, minutes=15)
    # Thursday 23:30 in New York, Friday 04:30 in UTC: its CAN-SPAM days count from Thursday.
    record("ny-thursday", "late@example.com", lists.ny_marketing, minutes=-(7 * 60 + 30))
    record("complaint-2", "complained@example.com", m, breadth="commercial", minutes=17 * 60)
    record("manual-2", "manual@example.com", m, minutes=18 * 60)
    record("twice-2", "twice@example.com", m, minutes=19 * 60)
    record("both-all", "both@example.com", m, breadth="commercial", minutes=20 * 60)
    # Deleted since the click (behind Django's back: PROTECT keeps it from doing so).
    UnsubscribeRequest.objects.filter(campaign="gone-stream").update(stream_id=999_999_999)
    UnsubscribeRequest.objects.filter(campaign="gone-topic").update(topic_id=999_999_999)


# --- every row, comparable across runs ----------------------------------------------------------


def _moment(value, now):
    if isinstance(value, datetime.datetime):
        return "now" if abs(value - now) < datetime.timedelta(minutes=10) else value.isoformat()
    return value


def _normal(row: dict, now, drop=("id",), **swap) -> dict:
    out = {}
    for key, value in row.items():
        if key in drop:
            continue
        if key in swap:
            value = swap[key](value)
        elif isinstance(value, bytes | memoryview):
            value = bytes(value).hex()[:12]
        out[key] = _moment(value, now)
    return out


def snapshot() -> dict[str, list]:
    """Every row the opt-outs touch, ids replaced by what they stand for."""
    now = timezone.now()
    labels = dict(UnsubscribeRequest.objects.values_list("pk", "campaign"))
    entries = {
        pk: f"{bytes(h).hex()[:12]}|{key}"
        for pk, h, key in Suppression.objects.values_list("pk", "address_hash", "scope_key")
    }
    opt_outs = {
        pk: f"{bytes(h).hex()[:12]}|{key}|{received.isoformat()}"
        for pk, h, key, received in OptOutRequest.objects.values_list(
            "pk", "address_hash", "scope_key", "received_at"
        )
    }

    def cause(value):
        if value.startswith("opt-out #"):
            number, rest = value[len("opt-out #") :].split(" ", 1)
            return f"opt-out {opt_outs[int(number)]} {rest}"
        return value

    records = {
        r["id"]: f"{bytes(r['address_hash']).hex()[:12]}|{r['stream_id']}|{r['topic_id']}|"
        f"{r['action']}|{r['occurred_at'].isoformat()}|{cause(r['cause'])}"
        for r in ConsentRecord.objects.values()
    }
    endpoint_urls = dict(
        WebhookDelivery.objects.values_list("endpoint_id", "endpoint__url").distinct()
    )

    def evidence(value):
        return labels.get(int(value)) if value and value.isdigit() else value

    def body(text):
        envelope = json.loads(text)
        data = envelope["data"]
        for key, names in (
            ("opt_out_id", opt_outs),
            ("suppression_id", entries),
            ("record_id", records),
        ):
            if key in data:
                data[key] = names[data[key]]
        for key, value in data.items():
            if isinstance(value, str) and value[:2] == "20" and value.endswith("Z"):
                data[key] = _moment(datetime.datetime.fromisoformat(value), now)
        occurred = datetime.datetime.fromisoformat(envelope["occurred_at"])
        return {"type": envelope["type"], "occurred_at": _moment(occurred, now), "data": data}

    events = {e.pk: body(e.body) for e in WebhookEvent.objects.all()}
    return {
        "suppressions": sorted(
            (_normal(r, now, evidence_id=evidence) for r in Suppression.objects.values()),
            key=repr,
        ),
        "history": [
            _normal(r, now, drop=("id", "txid"), suppression_id=entries.get, evidence_id=evidence)
            for r in SuppressionEvent.objects.order_by("id").values()
        ],
        "opt_outs": [
            _normal(r, now) for r in OptOutRequest.objects.order_by("received_at", "id").values()
        ],
        "consent_records": [
            _normal(r, now, cause=cause, text_id=lambda text: text is not None)
            for r in ConsentRecord.objects.order_by("id").values()
        ],
        "consent_states": sorted(
            (_normal(r, now, record_id=records.get) for r in ConsentState.objects.values()),
            key=repr,
        ),
        "webhook_events": sorted(
            (
                {
                    **body_,
                    "opt_out": opt_outs.get(e["opt_out_id"]),
                    "tenant": e["tenant_id"],
                    "hash": bytes(e["address_hash"]).hex()[:12],
                }
                for e in WebhookEvent.objects.values()
                for body_ in [events[e["id"]]]
            ),
            key=repr,
        ),
        "webhook_deliveries": sorted(
            (
                {
                    "endpoint": endpoint_urls.get(d["endpoint_id"]),
                    "event": json.dumps(events[d["event_id"]], sort_keys=True),
                    **_normal(d, now, drop=("id", "endpoint_id", "event_id")),
                }
                for d in WebhookDelivery.objects.values()
            ),
            key=repr,
        ),
        "requests": sorted(
            (
                _normal(r, now, drop=("id", "repeat_key"))
                for r in UnsubscribeRequest.objects.values()
            ),
            key=repr,
        ),
    }
