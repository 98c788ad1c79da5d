"""Due times for opt-outs recorded before opt-outs carried them (migration 0015), and again for
open opt-outs after a tenant's time zone or deadlines changed (`manage.py backfill_deadlines
--recompute`).

Set-based, so ten million old rows take minutes, not hours: every opt-out of one tenant received
on one local day (in the tenant's zone) shares its CAN-SPAM due time, so each (tenant, day) is
one UPDATE, and the 48-hour target is `received_at` plus the tenant's hours in the same
statement. Plain ORM expressions, so it runs on SQLite and PostgreSQL alike.

The functions take the model classes, so a migration can pass its historical models (which
have no `opt_out_policy`: the policy is built from the tenant's fields here).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.db.models import F, Q
from django.db.models.functions import TruncDate

from compliance import deadlines


def pending(OptOutRequest, *, recompute: bool = False):
    """The opt-outs `backfill` fills: those without due times, and with `recompute` every open
    one (not yet propagated) too."""
    rows = Q(can_spam_due_at__isnull=True)
    if recompute:
        rows |= Q(propagated_at__isnull=True)
    return OptOutRequest.objects.filter(rows).order_by()


def _policy(tenant) -> deadlines.OptOutPolicy:
    if tenant is None:
        return deadlines.OptOutPolicy()
    return deadlines.OptOutPolicy(
        time_zone=tenant.time_zone,
        business_days=tenant.can_spam_business_days,
        target_hours=tenant.provider_target_hours,
    )


def backfill(
    OptOutRequest,
    Tenant,
    *,
    progress: Callable[[int], object] | None = None,
    recompute: bool = False,
) -> int:
    """Fill the due times of `pending` opt-outs; returns how many rows were filled.
    `progress(count)` is called after each (tenant, day) with the rows it filled.

    An opt-out recorded before this change is also marked propagated when it was applied:
    nothing was downstream then, so its clock stopped there."""
    OptOutRequest.objects.filter(
        can_spam_due_at__isnull=True, propagated_at__isnull=True, applied_at__isnull=False
    ).update(propagated_at=F("applied_at"))
    rows = pending(OptOutRequest, recompute=recompute)
    tenant_ids = set(rows.values_list("tenant_id", flat=True).distinct())
    tenants = {t.pk: t for t in Tenant.objects.filter(pk__in=tenant_ids - {None})}
    done = 0
    for tenant_id in sorted(tenant_ids, key=lambda pk: (pk is not None, pk or 0)):
        policy = _policy(tenants.get(tenant_id))
        of_tenant = rows.filter(tenant_id=tenant_id)
        for day in _local_days(of_tenant, policy):
            filled = _on_day(of_tenant, day, policy).update(
                provider_due_at=F("received_at") + datetime.timedelta(hours=policy.target_hours),
                can_spam_due_at=deadlines.opt_out_due_on(day, policy),
            )
            done += filled
            if progress is not None:
                progress(filled)
    return done


def _local_days(rows, policy: deadlines.OptOutPolicy) -> list[datetime.date]:
    """The days the rows were received on, in the policy's time zone."""
    days = rows.annotate(day=TruncDate("received_at", tzinfo=policy.zone))
    return list(days.values_list("day", flat=True).distinct().order_by("day"))


def _on_day(rows, day: datetime.date, policy: deadlines.OptOutPolicy):
    """The rows received on local `day`: a range on `received_at` (a day either side, so the
    index on it serves whatever the zone's offset), then the exact local date."""
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=policy.zone)
    near = rows.filter(
        received_at__gte=start - datetime.timedelta(days=1),
        received_at__lt=start + datetime.timedelta(days=2),
    )
    return near.annotate(day=TruncDate("received_at", tzinfo=policy.zone)).filter(day=day)
