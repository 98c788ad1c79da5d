"""Carrying out an erasure (GDPR Art. 17): the address leaves every table and stored message,
its keyed hash stays where a row must, and a global never-mail `erasure` entry keeps it blocked.

Each app that keeps the address registers its own steps (suppression/erasure_steps.py) from
its AppConfig.ready (this module imports none of them: dependencies point one way). A step works
in batches: each batch is one transaction that also records in `request.progress` when the step
is finished, so an erasure interrupted by a database outage stays in progress, never
half-applied within a batch, and the next run (the task's retry or the sweep) resumes at the
first unfinished step.

Nothing recorded says whether anything was found: an unknown address is fulfilled the same way.
"""

from __future__ import annotations

import json

from django.contrib.admin.models import LogEntry
from django.db import transaction

from compliance import audit
from compliance.dsr import services
from compliance.dsr.models import DataSubjectRequest, RequestStep
from compliance.models import AuditEvent
from suppression import erased
from suppression.erasure_steps import Subject, mentions_q, register, steps

# Rows a batch changes in one transaction: small enough to keep locks short.
BATCH = 500

NOTE = (
    "the address was erased from the suppression list and its history, imports, unsubscribe "
    "requests, stored reports and relay events, consent evidence, pending confirmations, the "
    "audit trail and data-subject requests; its keyed hash stays blocked for all mail by a "
    "global erasure entry"
)


def _done(request: DataSubjectRequest) -> list[str]:
    return list((request.progress or {}).get("done", []))


def _mark_done(request: DataSubjectRequest, name: str) -> None:
    done = _done(request)
    if name not in done:
        done.append(name)
    services._set(request, progress={**(request.progress or {}), "done": done})


def _start(request: DataSubjectRequest) -> bool:
    """VERIFIED → IN_PROGRESS once; False when the request is not ours to carry out."""
    with transaction.atomic():
        locked = DataSubjectRequest.objects.select_for_update().get(pk=request.pk)
        if locked.status == DataSubjectRequest.Status.VERIFIED:
            services._set(request, status=DataSubjectRequest.Status.IN_PROGRESS)
            services.add_step(request, RequestStep.Step.STARTED)
            return True
        request.progress = locked.progress
        return locked.status == DataSubjectRequest.Status.IN_PROGRESS


def erase_for(request: DataSubjectRequest, *, batch: int = BATCH) -> None:
    """Carry out a verified (or interrupted) erasure to the end. A DatabaseError leaves the
    request in progress with the steps finished so far, and propagates: run it again later."""
    if not _start(request):
        return
    subject = Subject(
        address=request.address, address_hash=bytes(request.address_hash), request=request
    )
    for step in steps():
        if step.name in _done(request):
            continue
        while True:
            with transaction.atomic():
                changed = step.run(subject, batch)
                if changed < batch:
                    _mark_done(request, step.name)
                    break
    with transaction.atomic():
        locked = DataSubjectRequest.objects.select_for_update().get(pk=request.pk)
        if locked.status != DataSubjectRequest.Status.IN_PROGRESS:
            return  # another run of the same request fulfilled it meanwhile
        services.fulfil(request, NOTE)
        audit.record_access(
            audit.ERASURE,
            subject.address_hash,
            tenant=request.tenant,
            detail={"request": request.pk},
        )


def _redact_json(value, address: str, placeholder: str):
    text = json.dumps(value, ensure_ascii=False)
    cleaned = erased.redact_text(text, address, placeholder)
    return value if cleaned == text else json.loads(cleaned)


@register("audit_trail", order=100)
def erase_from_audit_trail(subject: Subject, batch: int) -> int:
    """Entries naming the address (a staff edit of something that held it). The trail is small
    next to the lists, and its text is not indexed: it is searched."""
    if not subject.address:
        return 0
    address, placeholder = subject.address, subject.placeholder
    # Append-only: the default manager refuses updates; the trigger allows exactly this one.
    trail = AuditEvent._base_manager
    rows = list(
        trail.filter(mentions_q("object_repr", address) | mentions_q("changes", address)).order_by(
            "pk"
        )[:batch]
    )
    for row in rows:
        trail.filter(pk=row.pk).update(
            object_repr=erased.redact_text(row.object_repr, address, placeholder),
            changes=_redact_json(row.changes, address, placeholder),
        )
    entries = list(
        LogEntry.objects.filter(
            mentions_q("object_repr", address) | mentions_q("change_message", address)
        ).order_by("pk")[:batch]
    )
    for entry in entries:
        LogEntry.objects.filter(pk=entry.pk).update(
            object_repr=erased.redact_text(entry.object_repr, address, placeholder),
            change_message=erased.redact_text(entry.change_message, address, placeholder),
        )
    return max(len(rows), len(entries))


@register("data_subject_requests", order=1000)
def erase_from_requests(subject: Subject, batch: int) -> int:
    """Last: once the requests forget the address, a resumed erasure has only the hash. What
    remains is the minimal record: kind, dates, status and steps."""
    requests = DataSubjectRequest.objects.filter(address_hash=subject.address_hash)
    changed = requests.exclude(address=None).update(address=None)
    if subject.address:
        steps = RequestStep._base_manager.filter(request__in=requests).filter(
            mentions_q("note", subject.address)
        )
        for step in steps:
            RequestStep._base_manager.filter(pk=step.pk).update(
                note=erased.redact_text(step.note, subject.address, subject.placeholder)
            )
        for field in ("status_reason", "extension_reason"):
            for request in requests.filter(mentions_q(field, subject.address)):
                requests.filter(pk=request.pk).update(
                    **{
                        field: erased.redact_text(
                            getattr(request, field), subject.address, subject.placeholder
                        )
                    }
                )
    subject.request.address = None
    return min(changed, batch - 1)
