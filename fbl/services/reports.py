"""Acting on reports and relay events: every write that a complaint, bounce or delivery causes.

Mail reports (ARF, DSN) act only when trusted: a feedback report when a DKIM signature of a
configured feedback-loop domain verifies (FBL_SENDER_DOMAINS), otherwise it waits for staff
review. Bounces act on their own: mailbox providers rarely sign them, and a bounce only ever
stops mail. Relay events come from our own relays, authenticated by an API key.

What each report means is `fbl.actions`; this module carries it out, in one transaction per
report, with the report (or relay event) as the suppression's evidence.
"""

from __future__ import annotations

import datetime
import functools
import logging
from collections import Counter
from dataclasses import dataclass, field

import dns.exception
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.db.models.functions import TruncDate
from django.utils import timezone

from compliance.errors import ServiceError
from compliance.models import OptOutRequest
from fbl import actions as table
from fbl import dkim, ours
from fbl.events import SourceEvent
from fbl.models import InboundMessage, RelayEvent, SoftBounce
from fbl.parse import parse
from fbl.provenance import Provenance, tied_to_our_mail
from fbl.report import ParsedReport, to_json
from fbl.services import mentions
from fbl.services.complaint_rates import count_for_rates
from suppression import rules
from suppression import services as suppression
from suppression.models import Origin
from suppression.scopes import Target

log = logging.getLogger(__name__)

Status = InboundMessage.Status


@dataclass
class Tally:
    """What acting on one report did, for its note and the caller's answer."""

    counts: Counter = field(default_factory=Counter)

    def add(self, what: str) -> None:
        self.counts[what] += 1

    @property
    def outcome(self) -> str:
        for word in ("suppressed", "counted", "recorded", "held_for_review", "no_recipient"):
            if self.counts[word]:
                return word
        return "nothing"

    def note(self) -> str:
        return ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in sorted(self.counts.items()))


# --- trust ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _resolver(nameservers: tuple[str, ...], timeout: float):
    return dkim.resolver_for(nameservers, timeout=timeout)


def check_trust(raw: bytes) -> tuple[str | None, str]:
    """(the trusted feedback-loop domain or None, every signature's result in words)."""
    try:
        resolver = _resolver(tuple(settings.DKIM_NAMESERVERS), settings.DKIM_DNS_TIMEOUT)
    except (ValueError, dns.exception.DNSException) as exc:  # misconfigured: nothing verifies
        log.error("DKIM keys cannot be looked up: %s", exc)
        return None, f"DKIM keys cannot be looked up: {exc}"
    signatures = dkim.verify(raw, resolver=resolver)
    results = "; ".join(
        f"d={s.domain} s={s.selector}: {s.result}" + (f" ({s.reason})" if s.reason else "")
        for s in signatures
    )
    return dkim.trusted_domain(signatures, settings.FBL_SENDER_DOMAINS), results or "unsigned"


# --- acting -----------------------------------------------------------------------------------


def _day(moment: datetime.datetime | None) -> datetime.date:
    return timezone.localdate(moment or timezone.now())


def _count(attribution: ours.Attribution, day, recipient, **counts) -> None:
    """Count towards the complaint rates. `recipient` is an address or a report's Recipient;
    a redacted one still names its domain, so its mailbox provider is known."""
    if recipient is not None and not isinstance(recipient, str):
        recipient = recipient.address or recipient.original_address
    count_for_rates(
        day=day,
        tenant=attribution.tenant,
        stream=attribution.stream,
        campaign=attribution.campaign,
        recipient=recipient or "",
        **counts,
    )


def _soft_bounce(
    address: str, status: str, moment, *, target: Target, origin: str, evidence: Model
) -> bool:
    """Record a transient failure; suppress once the address has had enough of them. At most
    one per address and day counts, so a message's retries count once. A tenant's soft bounces
    count towards its own threshold only. True if it suppressed."""
    _, digest = suppression.normalise_and_hash(address)
    day_start = timezone.localtime(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    history = SoftBounce.objects.filter(address_hash=digest, tenant=target.tenant)
    if not history.filter(occurred_at__gte=day_start, occurred_at__lt=day_start + _ONE_DAY):
        SoftBounce.objects.create(
            address_hash=digest, occurred_at=moment, status=status[:20], tenant=target.tenant
        )
    since = moment - datetime.timedelta(days=settings.SOFT_BOUNCE_WINDOW_DAYS)
    days = (
        history.filter(occurred_at__gt=since, occurred_at__lte=moment)
        .annotate(day=TruncDate("occurred_at"))
        .values("day")
        .distinct()
        .count()
    )
    if days < settings.SOFT_BOUNCE_THRESHOLD:
        return False
    suppression.suppress(
        target=target,
        address=address,
        reason=rules.SOFT_BOUNCE,
        origin=origin,
        evidence=evidence,
        evidence_note=f"{days} days with soft bounces in {settings.SOFT_BOUNCE_WINDOW_DAYS} days",
        expires_at=moment + datetime.timedelta(days=settings.SOFT_BOUNCE_SUPPRESS_DAYS),
    )
    return True


_ONE_DAY = datetime.timedelta(days=1)


_REASON = {
    "complaint": rules.COMPLAINT,
    "unsubscribe": rules.UNSUBSCRIBE,
    "hard_bounce": rules.HARD_BOUNCE,
}
# Verbs that suppress, at once or past the soft-bounce threshold: the ones a report may carry
# out only for recipients it ties to our mail, or for a few without that.
_LIMITED = frozenset({*_REASON, "soft_bounce"})


def carry_out(
    report: ParsedReport,
    attribution: ours.Attribution,
    *,
    provenance: Provenance,
    origin: str,
    evidence: Model,
    received_at: datetime.datetime,
    our_addresses: frozenset[str] = frozenset(),
    untied_limit: int | None = None,
) -> Tally:
    """Carry out the action table for one report, as far as its source reaches
    (fbl/provenance.py). Recipients it does not tie to our mail are acted on up to
    `untied_limit` (None: no limit); the rest are counted as "held_for_review". Call inside a
    transaction."""
    tally = Tally()
    attribution = provenance.attribution(attribution)
    day = _day(report.arrival_date or received_at)
    untied = 0
    for action in table.actions_for(report):
        if action.verb == "complaint":
            _count(attribution, day, action.recipient, complaints=1)
        elif action.verb in ("feedback", "unsubscribe"):
            _count(attribution, day, action.recipient, other_feedback=1)
        if action.address is None:
            tally.add("no_recipient")
            continue
        if action.verb in _LIMITED and not tied_to_our_mail(
            action.address, action.recipient, attribution, our_addresses
        ):
            if untied_limit is not None and untied >= untied_limit:
                tally.add("held_for_review")
                continue
            untied += 1
        try:
            if action.suppresses:
                outcome = suppression.suppress(
                    target=provenance.target(action.verb, attribution),
                    address=action.address,
                    reason=_REASON[action.verb],
                    origin=origin,
                    evidence=evidence,
                    evidence_note=_evidence_note(report, action),
                    created_at=received_at,
                    channel=OptOutRequest.Channel.COMPLAINT,
                )
                tally.add("suppressed" if outcome.changed else "already_suppressed")
            elif action.verb == "soft_bounce":
                status = (action.recipient.status if action.recipient else None) or ""
                suppressed = _soft_bounce(
                    action.address,
                    status,
                    received_at,
                    target=provenance.target("soft_bounce", attribution),
                    origin=origin,
                    evidence=evidence,
                )
                tally.add("suppressed" if suppressed else "recorded")
            else:
                tally.add("counted" if action.verb in ("complaint", "feedback") else "recorded")
        except ServiceError as exc:  # an address that cannot be normalised
            tally.add("invalid_address")
            log.info("report recipient not acted on: %s", exc)
    return tally


def _evidence_note(report: ParsedReport, action: table.Action) -> str:
    if report.kind == "arf":
        return f"{report.feedback_type} report from {report.user_agent or 'a feedback loop'}"
    recipient = action.recipient
    status = recipient.status if recipient else None
    diagnostic = (recipient.diagnostic if recipient else None) or ""
    return f"bounce {status or ''} {diagnostic}".strip()[:500]


# --- mail reports -------------------------------------------------------------------------------


def _act_on_message(
    message: InboundMessage, raw: bytes, report: ParsedReport, *, untied_limit: int | None
) -> Tally:
    attribution = ours.attribute_report(report)
    return carry_out(
        report,
        attribution,
        provenance=Provenance.of_message(message),
        origin=Origin.PROVIDER_REPORT,
        evidence=message,
        received_at=message.received_at,
        our_addresses=ours.addresses_of_our_mail(
            report,
            token_recipient=attribution.recipient,
            raw=raw,
            envelope_recipient=message.envelope_recipient,
        ),
        untied_limit=untied_limit,
    )


def _held_note(tally: Tally) -> str:
    return (
        f"{tally.counts['held_for_review']} recipient(s) not tied to mail we sent held for "
        f"staff review (at most {settings.REPORT_UNTIED_RECIPIENT_LIMIT} per message act "
        f"without review): {tally.note()}"
    )


def _fit(model: type[Model], name: str, value: str | None) -> str:
    """`value` cut to the column's max_length: a parsed value PostgreSQL refused would fail the
    whole report, and on every redelivery (the parsers bound these; this is the last guard)."""
    return (value or "")[: model._meta.get_field(name).max_length]


def act_on_report(message: InboundMessage) -> None:
    """Parse a stored report message, decide whether it is trusted, and act or queue it. The
    outcome is written to the message's row (the caller reloads it)."""
    raw = message.raw()
    report = parse(raw, hooks=ours.hooks())
    parsed = to_json(report)
    update = {
        "kind": _fit(InboundMessage, "kind", report.kind),
        "feedback_type": _fit(InboundMessage, "feedback_type", parsed["feedback_type"]),
        "parsed": parsed,
    }
    if report.kind == "autoreply":
        update.update(status=Status.IGNORED, note="auto-reply")
    elif report.kind == "unknown":
        update.update(status=Status.UNRECOGNISED, note="; ".join(parsed["problems"])[:2000])
    elif report.kind == "arf":
        domain, results = check_trust(raw)
        update.update(
            dkim_domain=_fit(InboundMessage, "dkim_domain", domain), dkim_results=results[:2000]
        )
        if domain is None:
            update.update(
                status=Status.PENDING_REVIEW,
                note="no DKIM signature of a configured feedback-loop domain verified "
                f"({results}): waiting for staff review",
            )
    if "status" not in update:
        with transaction.atomic():
            tally = _act_on_message(
                message, raw, report, untied_limit=settings.REPORT_UNTIED_RECIPIENT_LIMIT
            )
            if tally.counts["held_for_review"]:
                update.update(status=Status.PENDING_REVIEW, note=_held_note(tally))
            else:
                update.update(status=Status.PROCESSED, note=tally.note() or "nothing to act on")
            InboundMessage.objects.filter(pk=message.pk).update(**update)
    else:
        InboundMessage.objects.filter(pk=message.pk).update(**update)


def record_handled_mail(message: InboundMessage, *, kind: str, outcome: str, handler) -> None:
    """Note what a registered mail handler (fbl/plugins.py) did with a stored message."""
    if outcome in handler.done:
        status = Status.PROCESSED
    elif outcome in handler.ignored:
        status = Status.IGNORED
    else:
        status = Status.UNRECOGNISED
    InboundMessage.objects.filter(pk=message.pk).update(
        kind="autoreply" if status == Status.IGNORED else kind, status=status, note=outcome
    )


def accept(message: InboundMessage, *, user) -> InboundMessage:
    """Staff accept a report waiting for review: it acts on every recipient, within the reach
    of the source that sent it (fbl/provenance.py)."""
    if message.status != Status.PENDING_REVIEW:
        raise ServiceError(f"message {message.pk} is not waiting for review", code="not_pending")
    raw = message.raw()
    report = parse(raw, hooks=ours.hooks())
    with transaction.atomic():  # the admin request names the actor for the history
        tally = _act_on_message(message, raw, report, untied_limit=None)
        InboundMessage.objects.filter(pk=message.pk).update(
            status=Status.PROCESSED,
            note=f"accepted by {user}: {tally.note() or 'nothing to act on'}",
            reviewed_by=user,
            reviewed_at=timezone.now(),
        )
    message.refresh_from_db()
    return message


def reject(message: InboundMessage, *, user, note: str = "") -> InboundMessage:
    """Staff reject an untrusted report: it stays stored and acts on nothing."""
    if message.status != Status.PENDING_REVIEW:
        raise ServiceError(f"message {message.pk} is not waiting for review", code="not_pending")
    InboundMessage.objects.filter(pk=message.pk).update(
        status=Status.REJECTED,
        note=f"rejected by {user}" + (f": {note}" if note else ""),
        reviewed_by=user,
        reviewed_at=timezone.now(),
    )
    message.refresh_from_db()
    return message


# --- relay events -------------------------------------------------------------------------------


def record_relay_event(event: SourceEvent, *, provenance: Provenance) -> str:
    """Store one relay or ESP event and act on it, as far as its source reaches. Returns what
    happened: "duplicate", "counted" (a delivery or feedback counted), "suppressed", "recorded"
    (a soft bounce below the threshold, a policy block), "no_recipient" or "nothing"."""
    now = timezone.now()
    occurred = event.context.occurred_at or now
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: the duplicate's error stays inside it
                row = RelayEvent.objects.create(
                    source=_fit(RelayEvent, "source", event.source),
                    source_id=_fit(RelayEvent, "source_id", event.source_id),
                    tenant=provenance.tenant,
                    kind=_fit(RelayEvent, "kind", event.kind),
                    occurred_at=event.context.occurred_at,
                    record=event.record,
                )
                mentions.index_relay_event(row)
        except IntegrityError:
            return "duplicate"
        attribution = ours.attribute_context(event.context)
        if attribution.tenant is None and event.report is not None:
            # Untagged: our token in the captured headers of the original message may say.
            found = ours.attribute_report(event.report)
            if found.tenant is not None:
                attribution = found
        attribution = provenance.attribution(attribution)
        if event.kind == "delivery":
            _count(attribution, _day(occurred), event.recipient, deliveries=1)
            outcome = "counted"
        elif event.report is None:
            outcome = "nothing"
        else:
            outcome = carry_out(
                event.report,
                attribution,
                provenance=provenance,
                origin=Origin.RELAY,
                evidence=row,
                received_at=occurred,
                # A relay's own log names the recipient it tried; its records are one each.
                our_addresses=frozenset({(event.recipient or "").lower()}),
            ).outcome
        RelayEvent.objects.filter(pk=row.pk).update(outcome=_fit(RelayEvent, "outcome", outcome))
    return outcome
