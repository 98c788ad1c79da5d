"""Double opt-in: a sign-up becomes a grant only when its recipient clicks the link mailed to them.

The link (`/confirm/<token>`) carries 256 random bits; only their SHA-256 is stored, so the table
cannot be used to confirm anything. A GET shows a button and changes nothing (link scanners
fetch it); the POST records the grant with the sign-up's evidence plus the confirmation's time
and IP. Unconfirmed requests expire. A cap on confirmation mails per address and day keeps the
API from being used to mail-bomb someone.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import secrets
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from compliance.consent import rules, services
from compliance.consent.models import PendingConfirmation
from compliance.errors import ServiceError

log = logging.getLogger(__name__)


def _now() -> datetime.datetime:
    return timezone.now()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def confirm_url(token: str) -> str:
    return f"{settings.UNSUBSCRIBE_BASE_URL}/confirm/{token}"


class TooManyConfirmations(ServiceError):
    status = 429
    code = "too_many_confirmations"


class ConfirmationMailFailed(ServiceError):
    status = 503
    code = "confirmation_mail_failed"


def start(items: list[services.Prepared], *, language: str = "") -> list[PendingConfirmation]:
    """Keep the sign-ups and mail their confirmation links (after the transaction commits).
    Raises TooManyConfirmations past CONSENT_CONFIRMATIONS_PER_DAY mails to an address, and
    ConfirmationMailFailed when a mail cannot be sent."""
    with transaction.atomic():
        started = [_keep(item, language) for item in items]
        if started:
            transaction.on_commit(lambda: _mail_all(started))
    return [pending for pending, _ in started]


def _keep(item: services.Prepared, language: str) -> tuple[PendingConfirmation, str]:
    now = _now()
    cap = settings.CONSENT_CONFIRMATIONS_PER_DAY
    sent_today = PendingConfirmation.objects.filter(
        address_hash=item.address_hash, requested_at__gte=now - datetime.timedelta(days=1)
    ).count()
    if sent_today >= cap:
        raise TooManyConfirmations(
            f"{item.address} already got {cap} confirmation mails in the last 24 hours; "
            "try again later"
        )
    token = secrets.token_urlsafe(32)
    text = services.text_for(item.tenant, item.evidence["wording"])
    evidence = {k: v for k, v in item.evidence.items() if k != "wording"}
    if isinstance(evidence.get("collected_at"), datetime.datetime):
        evidence["collected_at"] = evidence["collected_at"].isoformat()
    pending = PendingConfirmation.objects.create(
        token_hash=_hash(token),
        tenant=item.tenant,
        stream=item.stream,
        topic=item.topic,
        address=item.address,
        address_hash=item.address_hash,
        basis=item.basis,
        jurisdiction=item.jurisdiction,
        evidence=evidence,
        text=text,
        language=language if language in dict(settings.LANGUAGES) else "",
        requested_at=now,
        expires_at=now + datetime.timedelta(days=settings.CONSENT_CONFIRMATION_DAYS),
    )
    return pending, token


def _mail_all(started: list[tuple[PendingConfirmation, str]]) -> None:
    """Mail each link (one on_commit callback for all, since a failing callback skips the ones
    after it). A mail that cannot be sent drops its sign-up and those after it: nobody holds
    their links, and they must not count against the cap when the client sends them again."""
    for done, (pending, token) in enumerate(started):
        try:
            _mail(pending, token)
        except Exception as exc:
            unsent = [p.pk for p, _ in started[done:]]
            PendingConfirmation.objects.filter(pk__in=unsent).delete()
            log.exception("confirmation mail to double opt-in #%s failed", pending.pk)
            raise ConfirmationMailFailed(
                f"the confirmation mail to {pending.address} could not be sent "
                f"({type(exc).__name__}); it and the double opt-ins after it in this request "
                "were not kept (everything before it was): send them again"
            ) from exc


def _mail(pending: PendingConfirmation, token: str) -> None:
    with translation.override(pending.language or settings.LANGUAGE_CODE):
        context = {
            "url": confirm_url(token),
            "tenant": pending.tenant.name,
            "purpose": _purpose_name(pending),
            "expires_at": pending.expires_at,
        }
        subject = render_to_string("consent/confirm_subject.txt", context).strip()
        body = render_to_string("consent/confirm_mail.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [pending.address])


def _purpose_name(pending: PendingConfirmation) -> str:
    if pending.topic_id:
        return f"{pending.stream.name}: {pending.topic.name}"
    return pending.stream.name


@dataclass(frozen=True)
class Lookup:
    """What a confirmation link points at. `state` is "pending", "confirmed", "expired" or
    "unknown" (a malformed, tampered or forgotten token)."""

    state: str
    pending: PendingConfirmation | None = None

    @property
    def purpose_name(self) -> str:
        return _purpose_name(self.pending) if self.pending else ""


def look_up(token: str) -> Lookup:
    if not token or len(token) > 100:
        return Lookup("unknown")
    pending = (
        PendingConfirmation.objects.select_related("tenant", "stream", "topic")
        .filter(token_hash=_hash(token))
        .first()
    )
    if pending is None:
        return Lookup("unknown")
    if pending.status == PendingConfirmation.Status.PENDING and pending.expires_at <= _now():
        return Lookup("expired", pending)
    return Lookup(pending.status, pending)


def confirm(token: str, *, ip: str | None, user_agent: str = "") -> Lookup:
    """Record the grant for a pending sign-up, once. A second click finds it confirmed and
    records nothing; an expired or unknown one records nothing."""
    with transaction.atomic():
        found = look_up(token)
        if found.state != "pending":
            return found
        pending = PendingConfirmation.objects.select_for_update().get(pk=found.pending.pk)
        if pending.status != PendingConfirmation.Status.PENDING:
            return Lookup(pending.status, pending)
        now = _now()
        evidence = dict(pending.evidence)
        collected = evidence.get("collected_at")
        item = services.Prepared(
            tenant=pending.tenant,
            stream=pending.stream,
            topic=pending.topic,
            address=pending.address,
            address_hash=bytes(pending.address_hash),
            action=rules.GRANTED,
            basis=pending.basis,
            method=rules.DOUBLE_OPT_IN,
            jurisdiction=pending.jurisdiction,
            # Consent exists from the click: the sign-up alone did not give it.
            occurred_at=now,
            evidence={
                **evidence,
                "collected_at": collected,
                "wording": pending.text.body if pending.text_id else "",
                "confirmed_at": now,
                "confirmed_ip": ip,
            },
            cause=f"double opt-in #{pending.pk}",
        )
        if not item.evidence.get("user_agent") and user_agent:
            item = replace(item, evidence={**item.evidence, "user_agent": user_agent[:500]})
        (record,) = services.record_prepared([item])
        PendingConfirmation.objects.filter(pk=pending.pk).update(
            status=PendingConfirmation.Status.CONFIRMED, record=record
        )
        pending.status, pending.record = PendingConfirmation.Status.CONFIRMED, record
    return Lookup("confirmed_now", pending)


def expire() -> int:
    """Mark sign-ups past their time as expired; returns how many."""
    return PendingConfirmation.objects.filter(
        status=PendingConfirmation.Status.PENDING, expires_at__lte=_now()
    ).update(status=PendingConfirmation.Status.EXPIRED)
