"""Every write to a data-subject request: opening it, verifying it, extending, refusing, and
carrying it out once verified. Each change appends a step with who made it."""

from __future__ import annotations

import datetime
import hashlib
import secrets

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from compliance import audit, deadlines
from compliance.dsr.models import DataSubjectRequest, RequestStep
from compliance.errors import ServiceError
from compliance.models import OptOutRequest, Tenant
from suppression import addresses, rules
from suppression import services as suppression
from suppression.models import Origin
from suppression.scopes import Target

Kind = DataSubjectRequest.Kind
Status = DataSubjectRequest.Status
Step = RequestStep.Step


def _now() -> datetime.datetime:
    return timezone.now()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verify_url(token: str) -> str:
    return f"{settings.UNSUBSCRIBE_BASE_URL}/dsr/{token}"


def add_step(request: DataSubjectRequest, step: str, note: str = "") -> RequestStep:
    return RequestStep.objects.create(
        request=request,
        step=step,
        note=note,
        **RequestStep.actor_fields(audit.current_actor()),
    )


def _set(request: DataSubjectRequest, **fields) -> None:
    for name, value in fields.items():
        setattr(request, name, value)
    DataSubjectRequest.objects.filter(pk=request.pk).update(**fields)


def open_request(
    *, address: str, kind: str, tenant: Tenant | None, language: str = ""
) -> DataSubjectRequest:
    """Record a request and mail its verification link to the address (after commit). Raises
    ServiceError for an unknown kind or an invalid address."""
    if kind not in Kind.values:
        raise ServiceError(
            f"unknown kind {kind!r}: use one of {', '.join(Kind.values)}", code="unknown_kind"
        )
    try:
        normalised = addresses.normalise(address)
    except addresses.InvalidAddress as exc:
        raise ServiceError(
            f"invalid address {address!r}: {exc.reason}", code="invalid_address"
        ) from None
    now = _now()
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        request = DataSubjectRequest.objects.create(
            kind=kind,
            tenant=tenant,
            address=normalised,
            address_hash=addresses.address_hash(normalised, settings.ADDRESS_HASH_KEY.encode()),
            received_at=now,
            due=deadlines.dsr_due(now),
            verification_token_hash=_hash(token),
            verification_expires_at=now + datetime.timedelta(days=settings.DSR_VERIFICATION_DAYS),
        )
        add_step(request, Step.RECEIVED)
        add_step(request, Step.VERIFICATION_SENT)
        transaction.on_commit(lambda: _mail_verification(request, token, language))
    return request


def _mail_verification(request: DataSubjectRequest, token: str, language: str) -> None:
    from django.utils import translation

    with translation.override(language or settings.LANGUAGE_CODE):
        context = {
            "url": verify_url(token),
            "kind": request.get_kind_display(),
            "expires_at": request.verification_expires_at,
        }
        subject = render_to_string("dsr/verify_subject.txt", context).strip()
        body = render_to_string("dsr/verify_mail.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [request.address])


def find_by_token(token: str) -> DataSubjectRequest | None:
    if not token or len(token) > 100:
        return None
    return DataSubjectRequest.objects.filter(verification_token_hash=_hash(token)).first()


def _verify(request: DataSubjectRequest, note: str) -> bool:
    """Mark verified once; returns False when it was not awaiting verification."""
    locked = DataSubjectRequest.objects.select_for_update().get(pk=request.pk)
    if locked.status != Status.AWAITING_VERIFICATION:
        return False
    if locked.verification_expires_at <= _now():
        return False
    _set(request, status=Status.VERIFIED, verified_at=_now())
    add_step(request, Step.VERIFIED, note)
    transaction.on_commit(lambda: _schedule(request.pk))
    return True


def verify_by_link(token: str) -> tuple[str, DataSubjectRequest | None]:
    """The requester pressed the button. Returns the outcome ("verified", "already", "expired"
    or "unknown") and the request."""
    with transaction.atomic():
        request = find_by_token(token)
        if request is None:
            return "unknown", None
        if (
            request.status == Status.AWAITING_VERIFICATION
            and request.verification_expires_at <= _now()
        ):
            return "expired", request
        if not _verify(request, "the requester confirmed by the mailed link"):
            return "already", request
    return "verified", request


def verify_by_staff(request: DataSubjectRequest, *, user, note: str) -> None:
    if not note.strip():
        raise ServiceError("say how the requester showed control of the address", code="no_note")
    with transaction.atomic():
        if not _verify(request, note.strip()):
            raise ServiceError("this request is not awaiting verification", code="not_awaiting")
        if request.handled_by_id is None:
            _set(request, handled_by=user)


def extend(request: DataSubjectRequest, *, months: int, reason: str) -> None:
    """Art. 12(3): up to two more months, with the reason recorded (and told the requester)."""
    if not reason.strip():
        raise ServiceError("an extension needs its reason", code="no_reason")
    total = request.extended_by_months + months
    if months < 1 or total > deadlines.MAX_DSR_EXTENSION_MONTHS:
        raise ServiceError(
            f"a request can be extended by at most {deadlines.MAX_DSR_EXTENSION_MONTHS} months "
            "in all",
            code="too_long",
        )
    with transaction.atomic():
        _set(
            request,
            extended_by_months=total,
            extension_reason=reason.strip(),
            due=deadlines.dsr_due(request.received_at, extended_by=total),
            alert_state=deadlines.RequestState.ON_TIME,  # a new due day: staff are told anew
        )
        add_step(request, Step.EXTENDED, f"{months} month(s): {reason.strip()}")


def refuse(request: DataSubjectRequest, *, reason: str) -> None:
    if not reason.strip():
        raise ServiceError("a refusal needs its reason", code="no_reason")
    if not request.is_open:
        raise ServiceError("this request is closed", code="closed")
    with transaction.atomic():
        _set(request, status=Status.REFUSED, status_reason=reason.strip())
        add_step(request, Step.REFUSED, reason.strip())


def expire_unverified() -> int:
    """Requests nobody verified in time are closed; returns how many."""
    expired = 0
    for request in DataSubjectRequest.objects.filter(
        status=Status.AWAITING_VERIFICATION, verification_expires_at__lte=_now()
    ):
        with transaction.atomic():
            _set(request, status=Status.EXPIRED)
            add_step(request, Step.EXPIRED)
        expired += 1
    return expired


def _schedule(request_id: int) -> None:
    from compliance.dsr import tasks

    tasks.carry_out.delay(request_id)


def fulfil(request: DataSubjectRequest, note: str = "") -> None:
    with transaction.atomic():
        _set(request, status=Status.FULFILLED, fulfilled_at=_now())
        add_step(request, Step.FULFILLED, note)


def tenants_of(request: DataSubjectRequest) -> list[Tenant]:
    return [request.tenant] if request.tenant_id else list(Tenant.objects.order_by("pk"))


def object_to_marketing(request: DataSubjectRequest) -> None:
    """Art. 21(3): no more direct marketing, for good: an `objection` entry (protected: no API
    key can lift it) over all commercial mail of each tenant, whose opt-out also withdraws every
    commercial consent. Does nothing for a request no longer verified (carried out already: a
    redelivered task, or the sweep and the task at once)."""
    with transaction.atomic():
        locked = DataSubjectRequest.objects.select_for_update().get(pk=request.pk)
        if locked.status not in (Status.VERIFIED, Status.IN_PROGRESS):
            return
        for tenant in tenants_of(request):
            suppression.suppress(
                target=Target(tenant, rules.COMMERCIAL),
                address=request.address,
                reason=rules.OBJECTION,
                origin=Origin.STAFF,
                evidence=request,
                evidence_note=f"data-subject request #{request.pk}",
                channel=OptOutRequest.Channel.OBJECTION,
            )
        fulfil(request, "all commercial mail stopped and commercial consent withdrawn")


def carry_out(request: DataSubjectRequest) -> None:
    """Do what a verified request asks. Rectification and restriction are for staff: they stay
    verified until staff record what was done."""
    if request.status not in (Status.VERIFIED, Status.IN_PROGRESS):
        return
    if request.kind == Kind.OBJECTION:
        object_to_marketing(request)
    elif request.kind == Kind.ERASURE:
        from compliance.dsr import erasure

        erasure.erase_for(request)
    elif request.kind == Kind.ACCESS:
        from compliance.dsr import access

        access.make_available(request)
