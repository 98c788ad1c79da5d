"""The consent ledger's part of an erasure (compliance.dsr.erasure): a record keeps when, what
and the wording shown (Art. 7(1) proof stays), and loses the address, IP, user agent, page and
confirming IP (the only change the ledger's trigger allows). A pending double opt-in loses its
address and the sign-up evidence it kept."""

from __future__ import annotations

from django.db.models import Q

from compliance.consent.models import ConsentRecord, PendingConfirmation
from suppression import erasure_steps as erasure


@erasure.register("consent_records", order=80)
def erase_consent_evidence(subject: erasure.Subject, batch: int) -> int:
    personal = (
        Q(address__isnull=False)
        | Q(ip__isnull=False)
        | ~Q(user_agent="")
        | ~Q(page_url="")
        | Q(confirmed_ip__isnull=False)
    )
    # The ledger's default manager refuses updates; this is the one change allowed.
    ledger = ConsentRecord._base_manager
    ids = list(
        ledger.filter(Q(address_hash=subject.address_hash) & personal)
        .order_by("pk")
        .values_list("pk", flat=True)[:batch]
    )
    ledger.filter(pk__in=ids).update(
        address=None, ip=None, user_agent="", page_url="", confirmed_ip=None
    )
    return len(ids)


@erasure.register("consent_confirmations", order=90)
def erase_pending_confirmations(subject: erasure.Subject, batch: int) -> int:
    personal = Q(address__isnull=False) | ~Q(evidence={})
    ids = list(
        PendingConfirmation.objects.filter(Q(address_hash=subject.address_hash) & personal)
        .order_by("pk")
        .values_list("pk", flat=True)[:batch]
    )
    PendingConfirmation.objects.filter(pk__in=ids).update(address=None, evidence={})
    return len(ids)
