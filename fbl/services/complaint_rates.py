"""Counting deliveries and feedback per day, and raising complaint-rate alerts.

The only writer of DailyCount, RateAlert and DeliveryBatch; the rates themselves are read by
`fbl.selectors`. `judge_complaint_rates(day)` records every rate over the warning line as a
RateAlert and tells staff once per day, grouping and level: the mail goes out once the alerts'
transaction commits
(STYLE.md: side effects with transaction.on_commit), never from inside it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from compliance.errors import ServiceError
from compliance.models import Stream, Tenant
from fbl import rates as rules
from fbl.models import DailyCount, DeliveryBatch, RateAlert
from fbl.providers import provider_of
from fbl.selectors import GROUPINGS, RateRow, label, rate_alert_recipients, rates, thresholds

__all__ = ["BatchResult", "add_delivery_counts", "count_for_rates", "judge_complaint_rates"]

log = logging.getLogger(__name__)

_CAMPAIGN_LENGTH = DailyCount._meta.get_field("campaign").max_length
_PROVIDER_LENGTH = DailyCount._meta.get_field("provider").max_length
_RATE_PLACES = Decimal(1).scaleb(-RateAlert._meta.get_field("rate").decimal_places)


# --- counting ----------------------------------------------------------------------------------


def _upsert_sql() -> str:
    quote = connection.ops.quote_name
    table = quote(DailyCount._meta.db_table)
    sums = ", ".join(
        f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}"
        for c in ("deliveries", "complaints", "other_feedback")
    )
    return (
        f"INSERT INTO {table} (day, tenant_id, stream_id, campaign, provider, deliveries,"
        " complaints, other_feedback) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (day, tenant_key, stream_key, campaign, provider)"
        f" DO UPDATE SET {sums}"
    )


def _add(rows: list[tuple]) -> None:
    """Add (day, tenant_id, stream_id, campaign, provider, deliveries, complaints, other) rows to
    the counts in one statement each. Rows go in key order, so two writers of overlapping
    batches lock rows in the same order and cannot deadlock."""
    if not rows:
        return
    rows = sorted(rows, key=lambda r: (r[0], r[1] or 0, r[2] or 0, r[3], r[4]))
    with connection.cursor() as cursor:
        cursor.executemany(_upsert_sql(), rows)


def _attribution(tenant: Tenant | None, stream: Stream | None) -> tuple[int | None, int | None]:
    if stream is None:
        return (tenant.pk if tenant is not None else None), None
    if tenant is not None and stream.tenant_id != tenant.pk:
        raise ValueError(f"stream {stream} does not belong to tenant {tenant.slug!r}")
    return stream.tenant_id, stream.pk


def count_for_rates(
    *,
    day: date,
    tenant: Tenant | None,
    stream: Stream | None,
    campaign: str,
    recipient: str,
    deliveries: int = 0,
    complaints: int = 0,
    other_feedback: int = 0,
) -> None:
    """Add deliveries and feedback to the day's counts of the tenant, stream, campaign ("" for
    none) and the mailbox provider of `recipient` (an address or a domain; only its provider is
    kept). `tenant` and `stream` may be None for mail nobody could attribute; a stream alone
    implies its tenant. `complaints` are abuse and fraud reports, `other_feedback` the rest.

    One atomic INSERT ... ON CONFLICT DO UPDATE that adds to the stored numbers: concurrent
    callers never lose a count."""
    numbers = (deliveries, complaints, other_feedback)
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in numbers):
        raise ValueError(f"counts must be whole numbers of at least 0, got {numbers}")
    if not any(numbers):
        return
    tenant_id, stream_id = _attribution(tenant, stream)
    provider = provider_of(recipient)[:_PROVIDER_LENGTH]
    _add([(day, tenant_id, stream_id, (campaign or "")[:_CAMPAIGN_LENGTH], provider, *numbers)])


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    deliveries: int
    duplicate: bool


def add_delivery_counts(
    *,
    tenant: Tenant,
    stream: Stream,
    day: date,
    campaign: str,
    batch_id: str,
    counts: Iterable[tuple[str, int]],
) -> BatchResult:
    """Add a relay's delivery totals, (recipient domain, delivered) pairs, to the day's counts.
    The same batch id posted again (for the same tenant) changes nothing; posted again with
    other numbers it is refused, since one of the two would be lost. Raises ServiceError."""
    counts = [(str(domain), delivered) for domain, delivered in counts]
    for domain, delivered in counts:
        if isinstance(delivered, bool) or not isinstance(delivered, int) or delivered < 0:
            raise ServiceError(
                f"the count for {domain!r} must be a whole number of at least 0",
                code="invalid_count",
            )
    if not batch_id:
        raise ServiceError("a batch_id is required", code="batch_id_required")
    if day > timezone.localdate() + timedelta(days=1):
        raise ServiceError(f"the day {day.isoformat()} is in the future", code="invalid_day")
    campaign = (campaign or "")[:_CAMPAIGN_LENGTH]
    tenant_id, stream_id = _attribution(tenant, stream)
    digest = hashlib.sha256(
        json.dumps(
            [day.isoformat(), stream_id, campaign, sorted(counts)], separators=(",", ":")
        ).encode()
    ).hexdigest()
    total = sum(delivered for _, delivered in counts)
    with transaction.atomic():
        try:
            with transaction.atomic():
                DeliveryBatch.objects.create(
                    tenant_id=tenant_id,
                    batch_id=batch_id,
                    day=day,
                    stream_id=stream_id,
                    campaign=campaign,
                    deliveries=total,
                    digest=digest,
                )
        except IntegrityError:
            earlier = DeliveryBatch.objects.get(tenant_id=tenant_id, batch_id=batch_id)
            if earlier.digest != digest:
                raise ServiceError(
                    f"batch {batch_id!r} was already posted with other counts; "
                    "post a new batch with a new batch_id",
                    code="batch_conflict",
                    status=409,
                ) from None
            return BatchResult(batch_id=batch_id, deliveries=earlier.deliveries, duplicate=True)
        _add(
            [
                (day, tenant_id, stream_id, campaign, provider_of(domain)[:_PROVIDER_LENGTH])
                + (delivered, 0, 0)
                for domain, delivered in counts
                if delivered
            ]
        )
    return BatchResult(batch_id=batch_id, deliveries=total, duplicate=False)


# --- alerting ----------------------------------------------------------------------------------


def _raise(grouping: str, row: RateRow, day: date) -> RateAlert | None:
    """Record the alert of one row; None when it (or a worse one) was already raised."""
    key = {
        "day": day,
        "grouping": grouping,
        "tenant": row.tenant if "tenant" in row.by else None,
        "stream": row.stream if "stream" in row.by else None,
        "campaign": (row.campaign or "") if "campaign" in row.by else "",
        "provider": (row.provider or "") if "provider" in row.by else "",
    }
    raised = set(RateAlert.objects.filter(**key).values_list("level", flat=True))
    if any(rules.SEVERITY[level] >= rules.SEVERITY[row.level] for level in raised):
        return None
    alert, created = RateAlert.objects.get_or_create(
        **key,
        level=row.level,
        defaults={
            "rate": row.rate.quantize(_RATE_PLACES, rounding=ROUND_HALF_UP),
            "deliveries": row.deliveries,
            "complaints": row.complaints,
        },
    )
    return alert if created else None


def _describe(alert: RateAlert) -> str:
    group = label(
        GROUPINGS[alert.grouping], alert.tenant, alert.stream, alert.campaign, alert.provider
    )
    return (
        f"{alert.get_level_display().upper():8} {rules.percent(alert.rate)} for "
        f"{alert.get_grouping_display().lower()} {group}: {alert.complaints} complaints in "
        f"{alert.deliveries} deliveries"
    )


def _notify(day: date) -> None:
    """Mark the day's alerts not yet sent as sent and mail them to staff, in one message, once
    that commits: a rolled-back check mails nobody. Two checks at once do not both send them
    (the second skips the rows the first has locked, then finds them marked)."""
    with transaction.atomic():
        pending_ids = list(
            RateAlert.objects.select_for_update(skip_locked=True)
            .filter(day=day, notified_at__isnull=True)
            .values_list("pk", flat=True)
        )
        if not pending_ids:
            return
        to = rate_alert_recipients()
        if not to:
            log.warning("complaint rate alerts for %s not sent: set COMPLAINT_RATE_RECIPIENTS", day)
            return
        pending = list(
            RateAlert.objects.filter(pk__in=pending_ids)
            .select_related("tenant", "stream")
            .order_by("level", "grouping", "pk")  # alerts first
        )
        judge = thresholds()
        alerts = sum(1 for a in pending if a.level == RateAlert.Level.ALERT)
        warnings = len(pending) - alerts
        counted = [f"{alerts} over {rules.percent(judge.alert)}"] if alerts else []
        counted += [f"{warnings} over {rules.percent(judge.warning)}"] if warnings else []
        subject = f"Complaint rates on {day.isoformat()}: {', '.join(counted)}"
        body = "\n".join(
            [
                f"Complaint rates over the line on {day.isoformat()} (UTC):",
                "",
                *(_describe(a) for a in pending),
                "",
                "Gmail and Yahoo expect a complaint rate under 0.1% that never reaches 0.3%.",
                f"Warning line {rules.percent(judge.warning)}, alert line "
                f"{rules.percent(judge.alert)}; fewer than {judge.minimum_deliveries} "
                "deliveries are not judged.",
                "Every rate of the last 30 days: Complaint rates in the admin.",
            ]
        )
        sent_at = timezone.now()
        RateAlert.objects.filter(pk__in=pending_ids).update(notified_at=sent_at)
        transaction.on_commit(
            functools.partial(
                _send_alert_mail,
                subject=subject,
                body=body,
                to=to,
                alert_ids=pending_ids,
                sent_at=sent_at,
            )
        )


def _send_alert_mail(
    *, subject: str, body: str, to: list[str], alert_ids: list[int], sent_at: datetime
) -> None:
    """Send the alerts' mail (after their transaction committed). A failed send marks them
    unsent again, so the next check retries them, and is raised to the caller."""
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
    except Exception:
        RateAlert.objects.filter(pk__in=alert_ids, notified_at=sent_at).update(notified_at=None)
        raise


def judge_complaint_rates(day: date) -> list[RateAlert]:
    """Judge the day's rates per tenant, stream, campaign and provider of a tenant; record each
    one over the warning line as a RateAlert and mail staff about new ones. Returns the alerts
    this call raised (an alert already raised for the same day, group and level, or a worse
    level, is not raised again)."""
    raised = []
    for grouping, by in GROUPINGS.items():
        for row in rates(day, day, by):
            if row.level not in (RateAlert.Level.WARNING, RateAlert.Level.ALERT):
                continue
            if grouping == RateAlert.Grouping.CAMPAIGN and not row.campaign:
                continue  # mail of no campaign is judged by its tenant and stream
            alert = _raise(grouping, row, day)
            if alert is not None:
                raised.append(alert)
    _notify(day)
    return raised
