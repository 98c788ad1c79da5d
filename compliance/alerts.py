"""Deadline alerts: compliance staff are mailed once each time an opt-out or a data-subject
request reaches a graver deadline state (due soon, past the 48-hour target, overdue), and never
twice for the same state.

A sweep reads the open rows whose state may have risen, locks those that did (skipping rows
another sweep holds, so two sweeps never mail the same rise), sends one mail listing them and
records their new states (`alert_state`, which only rises) in the same transaction. If the mail
cannot be sent nothing is recorded, and the next sweep tries again. A crash after sending but
before the commit can tell staff twice; telling them never would be worse. Only the rows being
told of are locked, and only while their one mail is sent.

Recipients: STAFF_ALERT_EMAILS and every active user with an address who holds the
permission `compliance.receive_deadline_alerts` (superusers hold every permission) and sees every
tenant: the mail lists every tenant's rows, so staff limited to tenants are not sent it. With nobody
to tell, a warning is logged and nothing is recorded: the first sweep after someone can receive
the mail tells them of everything that is still due or late.

The mail names each row by id, tenant, scope and times and gives its admin page. It never holds
an address: an opt-out keeps only the address's hash, and a request's address stays in the admin.
"""

from __future__ import annotations

import datetime
import enum
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Model, Q, QuerySet
from django.urls import reverse

from compliance import deadline_selectors, deadlines, staff_scope
from compliance.models import OptOutRequest

log = logging.getLogger(__name__)

# A sweep after a long outage may find thousands of rows: the mail lists this many, counts all.
MAX_LISTED = 200
PERMISSION = ("compliance", "receive_deadline_alerts")


def recipients() -> list[str]:
    """STAFF_ALERT_EMAILS, then the addresses of active users allowed to receive alerts,
    each address once."""
    app_label, codename = PERMISSION
    holds = Q(
        user_permissions__content_type__app_label=app_label,
        user_permissions__codename=codename,
    ) | Q(
        groups__permissions__content_type__app_label=app_label,
        groups__permissions__codename=codename,
    )
    users = (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .filter(Q(is_superuser=True) | holds)
        .exclude(pk__in=staff_scope.limited_user_ids())
        .values_list("email", flat=True)
        .distinct()
    )
    found: dict[str, str] = {}
    for address in [*settings.STAFF_ALERT_EMAILS, *sorted(users)]:
        found.setdefault(address.strip().lower(), address.strip())
    return [address for key, address in found.items() if key]


def admin_path(row: Model) -> str:
    meta = row._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[row.pk])


def at(moment: datetime.datetime | None, zone) -> str:
    """A time as staff of the tenant read it, with the zone's abbreviation."""
    if moment is None:
        return "-"
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}"


def subject_line(
    states: Sequence[enum.IntEnum], noun: str, plural: str, phrases: Mapping[enum.IntEnum, str]
) -> str:
    """`1 opt-out overdue, 3 past the 48-hour target`: the gravest first, as a mail client may
    cut a long subject. `phrases` maps each state to its words."""
    (gravest, count), *rest = sorted(Counter(states).items(), reverse=True)
    first = f"{count} {noun if count == 1 else plural} {phrases[gravest]}"
    return ", ".join([first, *(f"{n} {phrases[state]}" for state, n in rest)])


def tell_staff(
    candidates: QuerySet,
    *,
    state_of: Callable[[Model], enum.IntEnum | None],
    describe: Callable[[Model, enum.IntEnum], list[str]],
    noun: str,
    plural: str,
    phrases: Mapping[enum.IntEnum, str],
    footer: Sequence[str] = (),
) -> int:
    """Mail staff about each row of `candidates` whose `state_of(row)` is graver than its
    `alert_state`, and record the new states. Returns how many rows the mail told of (0 when
    none rose or nobody can receive it). Raises what sending raises, having recorded nothing.
    `candidates` must not be sliced: the rows are filtered again under a lock."""
    risen = [row.pk for row in candidates if _rose(row, state_of(row))]
    if not risen:
        return 0
    to = recipients()
    if not to:
        log.warning(
            "%d %s reached a graver deadline state but nobody receives deadline alerts: set "
            "STAFF_ALERT_EMAILS or give a user the permission %r",
            len(risen),
            plural,
            ".".join(PERMISSION),
        )
        return 0
    manager = candidates.model._default_manager
    with transaction.atomic():
        # Skip rows another sweep holds: it is telling staff of them now.
        locked = candidates.filter(pk__in=risen).select_for_update(skip_locked=True, of=("self",))
        told = [(row, state) for row in locked if _rose(row, state := state_of(row))]
        if not told:
            return 0
        told.sort(key=lambda pair: -pair[1])
        for state in {state for _, state in told}:
            ids = [row.pk for row, s in told if s == state]
            manager.filter(pk__in=ids, alert_state__lt=state).update(alert_state=state)
        subject = subject_line([state for _, state in told], noun, plural, phrases)
        body = _body(told, describe, plural, footer)
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
    log.info("deadline alert sent to %d recipient(s): %s", len(to), subject)
    return len(told)


def _rose(row: Model, state: enum.IntEnum | None) -> bool:
    return state is not None and state > row.alert_state


def _body(told, describe, plural: str, footer: Sequence[str]) -> str:
    lines = [f"These {plural} reached a graver deadline state since staff were last told:", ""]
    for row, state in told[:MAX_LISTED]:
        lines += [*describe(row, state), ""]
    if len(told) > MAX_LISTED:
        lines += [f"... and {len(told) - MAX_LISTED} more: see the admin.", ""]
    lines += [*footer]
    return "\n".join(lines).rstrip() + "\n"


# --- opt-outs -----------------------------------------------------------------------------------


def describe_opt_out(opt_out: OptOutRequest, state: deadlines.OptOutState) -> list[str]:
    policy = deadline_selectors.policy_of(opt_out.tenant)
    zone = policy.zone
    tenant = f"{opt_out.tenant.name} ({opt_out.tenant.slug})" if opt_out.tenant else "shared"
    return [
        f"Opt-out #{opt_out.pk}: {state.label}",
        f"  tenant:          {tenant}",
        f"  scope:           {opt_out.scope_label}",
        f"  channel:         {opt_out.get_channel_display()}",
        f"  received:        {at(opt_out.received_at, zone)}",
        f"  {policy.target_hours}-hour target:  {at(opt_out.provider_due_at, zone)}",
        f"  CAN-SPAM due:    {at(opt_out.can_spam_due_at, zone)} "
        f"({policy.business_days} business days)",
        f"  admin:           {admin_path(opt_out)}",
    ]


OPT_OUT_PHRASES = {
    deadlines.OptOutState.TARGET_SOON: "near the 48-hour target",
    deadlines.OptOutState.TARGET_MISSED: "past the 48-hour target",
    deadlines.OptOutState.DUE_SOON: "near the CAN-SPAM deadline",
    deadlines.OptOutState.OVERDUE: "overdue",
}
OPT_OUT_FOOTER = (
    "An opt-out is open until every downstream system has acknowledged it. Gmail and Yahoo",
    "ask for 48 hours, CAN-SPAM allows 10 business days (16 CFR 316.5).",
    "Every open opt-out, the most urgent first: /admin/compliance/optoutrequest/?deadline=open",
)


def sweep_opt_outs(
    *, now: datetime.datetime | None = None, business_days: int | None = None
) -> int:
    """Tell staff of every open opt-out whose deadline state rose; returns how many."""
    now = now or deadlines._now()
    if business_days is None:
        business_days = deadline_selectors.warn_business_days()
    return tell_staff(
        deadline_selectors.alert_candidates(now, business_days),
        state_of=lambda row: deadline_selectors.state_of(row, now=now, business_days=business_days),
        describe=describe_opt_out,
        noun="opt-out",
        plural="opt-outs",
        phrases=OPT_OUT_PHRASES,
        footer=OPT_OUT_FOOTER,
    )
