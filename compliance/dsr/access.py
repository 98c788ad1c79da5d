"""Access (GDPR Art. 15): everything held about a request's address, and the expiring link by
which the requester downloads it.

What is gathered is read by the address's keyed hash, so records whose address was erased
still count, within the request's tenant (shared entries of no tenant included) or every tenant
when the request names none. A report is found by the address it names, so it needs the
address itself.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from compliance.consent import selectors as consent
from compliance.consent.models import ConsentState
from compliance.dsr import services
from compliance.dsr.models import DataSubjectRequest
from compliance.errors import ServiceError
from compliance.models import OptOutRequest
from fbl import selectors as fbl_selectors
from fbl.models import InboundMessage
from suppression import addresses
from suppression.models import Suppression, SuppressionEvent
from unsubscribe.models import UnsubscribeRequest

Status = DataSubjectRequest.Status
# What the export shows of a report: the lines naming the address, with this much around them.
EXCERPT_CONTEXT_LINES = 2
EXCERPT_MAX_LINES = 40
EXCERPT_MAX_CHARS = 4000


def _now() -> datetime.datetime:
    return timezone.now()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def export_url(token: str) -> str:
    return f"{settings.UNSUBSCRIBE_BASE_URL}/dsr/{token}/export"


def is_releasable(request: DataSubjectRequest) -> bool:
    """Only a verified access request releases anything: the requester has shown control of
    the address (DESIGN.md: nothing is released before)."""
    return request.kind == DataSubjectRequest.Kind.ACCESS and request.status in (
        Status.VERIFIED,
        Status.IN_PROGRESS,
        Status.FULFILLED,
    )


def require_releasable(request: DataSubjectRequest) -> None:
    """Raises ServiceError (409) for a request whose data may not be released."""
    if request.kind != DataSubjectRequest.Kind.ACCESS:
        raise ServiceError(
            f"request #{request.pk} is a {request.kind} request: only an access request has an "
            "export",
            code="not_access",
            status=409,
        )
    if not is_releasable(request):
        raise ServiceError(
            f"request #{request.pk} is {request.status}: its export is released only once the "
            "requester has shown control of the address",
            code="not_verified",
            status=409,
        )


def _tenant_q(request: DataSubjectRequest, *, shared: bool = True) -> Q:
    if request.tenant_id is None:
        return Q()
    q = Q(tenant_id=request.tenant_id)
    return q | Q(tenant__isnull=True) if shared else q


def _slug(tenant) -> str | None:
    return tenant.slug if tenant is not None else None


def _consents(request: DataSubjectRequest, digest: bytes) -> list[dict]:
    return [
        {"tenant": tenant.slug, **record}
        for tenant in services.tenants_of(request)
        for record in consent.history_of(tenant, digest)
    ]


def _consent_states(request: DataSubjectRequest, digest: bytes) -> list[dict]:
    rows = (
        ConsentState.objects.filter(_tenant_q(request, shared=False), address_hash=digest)
        .select_related("tenant", "stream", "topic")
        .order_by("tenant__slug", "stream__slug", "topic__slug")
    )
    return [
        {
            "tenant": row.tenant.slug,
            "purpose": f"{row.stream.slug}/{row.topic.slug}" if row.topic_id else row.stream.slug,
            "state": row.action,
            "basis": row.basis,
            "since": row.since,
        }
        for row in rows
    ]


def _suppression_rows(request: DataSubjectRequest, digest: bytes):
    return (
        Suppression.objects.filter(_tenant_q(request), address_hash=digest)
        .select_related("tenant", "stream", "topic__stream")
        .order_by("created_at", "id")
    )


def _suppressions(rows) -> list[dict]:
    events: dict[int, list[dict]] = {}
    for event in SuppressionEvent.objects.filter(suppression__in=rows).order_by("id"):
        events.setdefault(event.suppression_id, []).append(
            {
                "action": event.action,
                "reason": event.reason,
                "origin": event.origin,
                "occurred_at": event.occurred_at,
                "note": event.note,
                "evidence": event.evidence_note,
                "by": event.actor_label,
            }
        )
    return [
        {
            "id": row.pk,
            "tenant": _slug(row.tenant),
            "scope": row.scope_label,
            "address": row.address,
            "reason": row.reason,
            "origin": row.origin,
            "evidence": row.evidence_note,
            "created_at": row.created_at,
            "expires_at": row.expires_at,
            "lifted_at": row.lifted_at,
            "active": row.is_active,
            "history": events.get(row.pk, []),
        }
        for row in rows
    ]


def _opt_outs(request: DataSubjectRequest, digest: bytes) -> list[dict]:
    rows = (
        OptOutRequest.objects.filter(_tenant_q(request), address_hash=digest)
        .select_related("tenant")
        .order_by("received_at", "id")
    )
    return [
        {
            "tenant": _slug(row.tenant),
            "channel": row.channel,
            "scope": row.scope_label,
            "received_at": row.received_at,
            "applied_at": row.applied_at,
        }
        for row in rows
    ]


def _unsubscribe_requests(request: DataSubjectRequest, digest: bytes) -> list[dict]:
    rows = (
        UnsubscribeRequest.objects.filter(_tenant_q(request, shared=False), address_hash=digest)
        .select_related("tenant", "stream", "topic")
        .order_by("received_at", "id")
    )
    return [
        {
            "tenant": row.tenant.slug,
            "channel": row.channel,
            "stream": row.stream.slug,
            "topic": row.topic.slug if row.topic_id else None,
            "breadth": row.breadth,
            "campaign": row.campaign,
            "scope": row.scope_label,
            "address": row.address,
            "ip": row.ip,
            "user_agent": row.user_agent,
            "received_at": row.received_at,
            "applied_at": row.applied_at,
        }
        for row in rows
    ]


def excerpt(raw: bytes, address: str) -> str:
    """The lines of a message that contain `address` (case-insensitive), with a few lines around
    each, runs joined and gaps marked, capped so a large message stays readable."""
    lines = raw.decode("utf-8", errors="replace").splitlines()
    needle = address.lower()
    keep: set[int] = set()
    for number, line in enumerate(lines):
        if needle in line.lower():
            low = max(0, number - EXCERPT_CONTEXT_LINES)
            keep.update(range(low, min(len(lines), number + EXCERPT_CONTEXT_LINES + 1)))
    shown: list[str] = []
    previous = None
    for number in sorted(keep)[:EXCERPT_MAX_LINES]:
        if previous is not None and number != previous + 1:
            shown.append("[...]")
        shown.append(lines[number])
        previous = number
    text = "\n".join(shown)
    return text if len(text) <= EXCERPT_MAX_CHARS else text[:EXCERPT_MAX_CHARS] + "\n[...]"


def _names(message: InboundMessage, digest: bytes) -> list[dict]:
    """The recipients of a parsed report that are this address."""
    key = settings.ADDRESS_HASH_KEY.encode()
    found = []
    for recipient in (message.parsed or {}).get("recipients") or []:
        try:
            if addresses.hash_address(recipient.get("address") or "", key) == digest:
                found.append(recipient)
        except addresses.InvalidAddress:
            continue
    return found


def _reports(request: DataSubjectRequest, digest: bytes, suppressions) -> list[dict]:
    if not request.address:
        return []
    # The messages that mention the address (the erasure index); the hash of each recipient
    # they name decides.
    candidates = fbl_selectors.messages_mentioning(digest)
    if request.tenant_id is not None:
        # A report that came in for no tenant (the operator's own MTA) belongs to this tenant's
        # export only if it acted for the tenant: it is the evidence of one of its entries.
        message_type = ContentType.objects.get_for_model(InboundMessage)
        evidence = SuppressionEvent.objects.filter(
            suppression__in=suppressions, evidence_type=message_type
        ).values_list("evidence_id", flat=True)
        candidates = candidates.filter(
            Q(tenant_id=request.tenant_id)
            | Q(tenant__isnull=True, pk__in=[int(pk) for pk in evidence if pk.isdigit()])
        )
    found = []
    for message in candidates.order_by("received_at", "id"):
        named = _names(message, digest)
        if not named:
            continue
        found.append(
            {
                "id": message.pk,
                "received_at": message.received_at,
                "kind": message.kind,
                "feedback_type": message.feedback_type,
                "status": message.status,
                "recipients": named,
                "excerpt": excerpt(message.raw(), request.address),
            }
        )
    return found


def _requests(request: DataSubjectRequest, digest: bytes) -> list[dict]:
    rows = (
        DataSubjectRequest.objects.filter(_tenant_q(request, shared=False), address_hash=digest)
        .select_related("tenant")
        .prefetch_related("steps")
        .order_by("received_at", "id")
    )
    return [
        {
            "id": row.pk,
            "tenant": _slug(row.tenant),
            "kind": row.kind,
            "status": row.status,
            "received_at": row.received_at,
            "due": row.due,
            "verified_at": row.verified_at,
            "fulfilled_at": row.fulfilled_at,
            "steps": [
                {"step": s.step, "at": s.occurred_at, "note": s.note, "by": s.actor_label}
                for s in row.steps.all()
            ],
        }
        for row in rows
    ]


# The kinds of record an export holds, in the order the JSON and the CSV bundle list them.
KINDS = (
    "consents",
    "consent_states",
    "suppressions",
    "opt_outs",
    "unsubscribe_requests",
    "reports",
    "requests",
)


def export_of(request: DataSubjectRequest) -> dict:
    """Everything held about the request's address (see the module's docstring for where)."""
    digest = bytes(request.address_hash)
    suppressions = _suppression_rows(request, digest)
    return {
        "request": request.pk,
        "address": request.address,
        "tenant": _slug(request.tenant) if request.tenant_id else None,
        "generated_at": _now(),
        "consents": _consents(request, digest),
        "consent_states": _consent_states(request, digest),
        "suppressions": _suppressions(suppressions),
        "opt_outs": _opt_outs(request, digest),
        "unsubscribe_requests": _unsubscribe_requests(request, digest),
        "reports": _reports(request, digest, suppressions),
        "requests": _requests(request, digest),
    }


def make_available(request: DataSubjectRequest) -> None:
    """Fulfil a verified access request: a download link valid for DSR_EXPORT_DAYS days, mailed
    to the requester after commit. Only the link token's SHA-256 is kept. Does nothing for a
    request that is no longer verified (carried out already)."""
    token = secrets.token_urlsafe(32)
    language = translation.get_language() or settings.LANGUAGE_CODE
    with transaction.atomic():
        locked = DataSubjectRequest.objects.select_for_update().get(pk=request.pk)
        if locked.status not in (Status.VERIFIED, Status.IN_PROGRESS):
            return
        expires_at = _now() + datetime.timedelta(days=settings.DSR_EXPORT_DAYS)
        services._set(request, export_token_hash=_hash(token), export_expires_at=expires_at)
        services.fulfil(request, f"export mailed for download until {expires_at:%Y-%m-%d %H:%M}")
        transaction.on_commit(lambda: _mail_link(request, token, language))


def _mail_link(request: DataSubjectRequest, token: str, language: str) -> None:
    with translation.override(language):
        context = {"url": export_url(token), "expires_at": request.export_expires_at}
        subject = render_to_string("dsr/export_subject.txt", context).strip()
        body = render_to_string("dsr/export_mail.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [request.address])


def find_by_export_token(token: str) -> tuple[str, DataSubjectRequest | None]:
    """The request a download link points to: ("ready", request), ("expired", request) or
    ("unknown", None)."""
    if not token or len(token) > 100:
        return "unknown", None
    request = (
        DataSubjectRequest.objects.filter(export_token_hash=_hash(token))
        .select_related("tenant")
        .first()
    )
    if request is None or not is_releasable(request):
        return "unknown", None
    if request.export_expires_at is None or request.export_expires_at <= _now():
        return "expired", request
    return "ready", request
