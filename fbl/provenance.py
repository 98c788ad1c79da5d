"""Who handed a report or event in, and how far what it says may reach: the tenant rule.

An operator may send for many tenants. What one tenant sends in must never change another
tenant's mail, and entries shared by every tenant ("never mail" facts) come only from sources the
operator trusts (DESIGN.md, Tenants). This module is the one place that decides:

| source                                   | acts for                 | hard bounce becomes  |
| ---------------------------------------- | ------------------------ | -------------------- |
| key bound to tenant T                    | T only (1)               | T's `global` entry   |
| key bound to T, marked operator-level    | T only (1)               | a shared entry       |
| unbound key, the operator's MTA pipe,    | the tenant the report    | a shared entry       |
| staff, the operator's ESP webhook secret | is attributed to (2)     |                      |

(1) A report whose token or sending identity names another tenant is acted on for T alone, and
    its attribution is dropped: T cannot reach another tenant's list or complaint rates. A
    relay or ESP event whose tags name another tenant is refused or skipped (`bind`).
(2) A complaint or opt-out that cannot be attributed is honoured for every tenant's commercial
    mail; only operator-level sources can make such a shared entry.

Feedback reports that arrive by mail or HTTP act only when a DKIM signature of a configured
feedback loop verifies; otherwise they wait for staff, whose acceptance is a staff source.

A report also cannot suppress the world: `tied_to_our_mail` says which recipients it ties to mail
we sent, and `fbl.services` acts on at most REPORT_UNTIED_RECIPIENT_LIMIT others per message.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from compliance.errors import PermissionDenied
from compliance.models import ApiKey, Tenant
from fbl.events import SourceEvent
from fbl.ours import Attribution
from fbl.report import Recipient
from suppression import rules
from suppression.scopes import Target

# Where a report's recipient came from, when that ties it to a message we sent: our token, our
# trace header, or our VERP return path (fbl.report.FoundBy).
_TIED_BY = frozenset({"token", "trace_header", "verp"})

# What an event (fbl/sources/) whose context names a tenant other than its poster's gets:
# refuse: the whole request is refused (403) and nothing of it is stored: the poster is our own
#         relay, and a misrouted record is a configuration error to be seen at once;
# skip:   the event is left out, counted as "other_tenant", and the request answered 200: a
#         poster that retries refused deliveries (an ESP) would post it forever.
OtherTenant = Literal["refuse", "skip"]


@dataclass(frozen=True)
class Provenance:
    """The source of a report or event: its tenant binding and whether the operator trusts it
    with entries shared by every tenant. A source is bound to a tenant, operator-level, or both
    (a relay of the operator's own that staff bound to one tenant)."""

    tenant: Tenant | None
    operator_level: bool
    label: str

    def __post_init__(self):
        if self.tenant is None and not self.operator_level:
            raise ValueError("a source bound to no tenant must be one the operator trusts")

    @classmethod
    def of_api_key(cls, api_key: ApiKey) -> Provenance:
        if api_key.tenant_id is None:
            return cls(tenant=None, operator_level=True, label=f"API key {api_key.name}")
        return cls(
            tenant=api_key.tenant,
            operator_level=api_key.operator_level,
            label=f"API key {api_key.name} (tenant {api_key.tenant.slug})",
        )

    @classmethod
    def of_message(cls, message) -> Provenance:
        """A stored inbound message's source: the tenant of the key that posted it, else the
        operator's own MTA or an unbound key."""
        if message.tenant_id is None:
            return OPERATOR
        return cls(
            tenant=message.tenant,
            operator_level=message.operator_level,
            label=f"tenant {message.tenant.slug}",
        )

    def attribution(self, found: Attribution) -> Attribution:
        """`found` when this source may act for its tenant; for a source bound to another
        tenant, an attribution to the source's own tenant with nothing else of `found`."""
        if self.tenant is None or found.tenant is None or found.tenant.pk == self.tenant.pk:
            if self.tenant is not None and found.tenant is None:
                return Attribution(tenant=self.tenant, campaign=found.campaign)
            return found
        return Attribution(tenant=self.tenant)

    def bind(self, event: SourceEvent, *, other_tenant: OtherTenant) -> SourceEvent | None:
        """The event as this source may say it: a source bound to tenant T reports for T only,
        so an event naming no tenant is T's, and one naming another tenant is refused
        (PermissionDenied) or skipped (None), as `other_tenant` says. An unbound source's
        events keep the tenant they name."""
        if self.tenant is None:
            return event
        slug = self.tenant.slug
        named = event.context.tenant
        if named and named != slug:
            if other_tenant == "skip":
                return None
            raise PermissionDenied(
                f"this API key is bound to tenant {slug!r}; a record names tenant {named!r}"
            )
        return replace(event, context=replace(event.context, tenant=slug))

    def target(self, verb: str, attribution: Attribution) -> Target:
        """Where the entry of a suppressing verb goes (the table above)."""
        tenant = self.tenant or attribution.tenant
        if verb in ("hard_bounce", "soft_bounce"):
            # A dead address is dead for everyone, but only a trusted source may say so for all.
            return Target(tenant=None if self.operator_level else tenant, scope=rules.GLOBAL)
        return Target(tenant=tenant, scope=rules.COMMERCIAL)


# The operator's own MTA (`ingest_mail`), an unbound key, staff acting in the admin.
OPERATOR = Provenance(tenant=None, operator_level=True, label="operator")


def tied_to_our_mail(
    address: str, recipient: Recipient | None, attribution: Attribution, ours: frozenset[str]
) -> bool:
    """Does the report tie this recipient to mail we sent? Our token, trace header or VERP
    return path names it (`ours`: fbl.ours.addresses_of_our_mail), or the reported message
    came from one of the tenant's sending identities, or our relay logged it."""
    if recipient is not None and recipient.found_by in _TIED_BY:
        return True
    if address.lower() in ours:
        return True
    return attribution.found_by in ("sender", "relay")
